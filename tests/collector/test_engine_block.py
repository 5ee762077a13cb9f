"""Block merge: k windows pushed into the rolling horizons at once leave exactly what k single pushes leave (the
sums of the last h windows, computed here from the history), and ``observe_windows`` scores like window by window,
with windows that skip the latency or prediction sums and blocks longer than the longest horizon."""

from __future__ import annotations

import dataclasses

import collector_streams as streams
import numpy as np
import pytest

from edge.collector.engine import FLEET, DriftEngine, ModelReference
from edge.collector.rolling import RollingSums
from edge.drift import metrics

N_CLASSES = 5


def test_push_block_leaves_the_sums_of_the_last_windows(rng: np.random.Generator) -> None:
    horizons = (3, 7)
    roll = RollingSums(horizons, (2, 4))
    history: list[np.ndarray] = []
    fleet = {h: np.zeros((2, 4)) for h in horizons}
    for k in [1, 2, 5, 7, 1, 9, 20, 3, 6, 1, 1, 8]:  # blocks shorter and longer than the ring (7), wrapping it
        block = rng.integers(0, 1000, (k, 2, 4)).astype(np.float64)
        deltas = roll.push_block(block)
        history.extend(block)
        for h in horizons:
            fleet[h] += deltas[h]
            expected = np.sum(history[-h:], axis=0)
            np.testing.assert_array_equal(roll.sums[h], expected)
            np.testing.assert_array_equal(fleet[h], expected)  # the deltas add up to the sums (the fleet's)
    assert roll.n == len(history)
    order = [(roll.n - 7 + i) % 7 for i in range(7)]  # the ring holds the last 7 windows, oldest at n % 7
    np.testing.assert_array_equal(roll.ring[order], np.array(history[-7:]))


def _reference(rng: np.random.Generator) -> ModelReference:
    ref = streams.reference(rng, budget_us=4000.0)
    conf = dataclasses.replace(ref.features[0], kind="confidence")
    return dataclasses.replace(ref, features=(conf, *ref.features[1:]), predictions=np.array([50, 0, 30, 15, 5]))


def _body(rng: np.random.Generator, k: int, shift: float) -> dict:
    body = streams.window_body(rng, shift=shift, misses=int(rng.integers(0, 5)), fallbacks=k % 3)
    if k % 4 == 1:
        body["predictions"] = [1, 2]  # another length than the reference's: not in the chi-square sums
    else:
        body["predictions"] = rng.multinomial(100, [0.4, 0.1, 0.3, 0.1, 0.1]).tolist()
    if k % 5 == 2:
        body["latency"] = {}  # no latency sketch: not in the latency sums
    return body


def test_observe_windows_scores_like_window_by_window(rng: np.random.Generator) -> None:
    ref = _reference(rng)
    one, block = DriftEngine(horizons=(4, 9)), DriftEngine(horizons=(4, 9))
    for engine in (one, block):
        engine.set_reference(ref)
        for dev in ("a", "b"):
            engine.observe_hello(dev, streams.HELLO)
    layout = block.counts_layout(ref.model)
    assert layout is not None
    names, _, width, confidence = layout
    assert confidence == names[0]
    sent: dict[str, list[dict]] = {"a": [], "b": []}
    k = 0
    for size in [1, 3, 12, 2, 5, 1, 10]:
        for dev, shift in (("a", 0.0), ("b", 0.1 * k)):
            bodies = [_body(rng, k + i, shift) for i in range(size)]
            sent[dev] += bodies
            for i, body in enumerate(bodies):
                expected = one.observe_window(dev, body, k + i, score=i == size - 1)
            live = np.stack([one._refs[ref.model].pack(ref.model, b["features"]) for b in bodies])
            assert live.shape[1:] == (len(names), width)
            got = block.observe_windows(dev, bodies, k + size - 1, live)
            assert [(e.scope, e.horizon, e.windows, e.t_ns) for e in got] == [
                (e.scope, e.horizon, e.windows, e.t_ns) for e in expected
            ]
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_array_equal(g.samples, e.samples)
                for metric in ("psi", "js", "ks", "wasserstein"):
                    np.testing.assert_array_equal(g.scores[metric], e.scores[metric])
                assert g.ops.keys() == e.ops.keys() and "chi2_p" in g.ops and "p99_latency_us" in g.ops
                for key, value in e.ops.items():  # the confidence sums are floats: equal to rounding
                    assert g.ops[key] == pytest.approx(value, rel=1e-12)
        k += size
    assert block.windows_scored == one.windows_scored == 2 * k
    # the stacked scoring of the four scopes equals drift_rows on each scope's counts, summed here from the bodies
    packed = block._refs[ref.model]
    for ev in got:
        devs = ["b"] if ev.scope == "b" else ["a", "b"]
        assert ev.scope in ("b", FLEET)
        counts = sum(packed.pack(ref.model, b["features"]) for d in devs for b in sent[d][-ev.horizon :])
        direct = metrics.drift_rows(counts, packed.counts, packed.positions, packed.std)
        for metric, values in direct.items():
            np.testing.assert_array_equal(ev.scores[metric], values)
        frames = sum(b["counters"]["frames"] for d in devs for b in sent[d][-ev.horizon :])
        misses = sum(b["counters"]["deadline_misses"] for d in devs for b in sent[d][-ev.horizon :])
        assert ev.ops["deadline_miss_rate"] == misses / frames


def test_observe_windows_without_a_reference_is_skipped(rng: np.random.Generator) -> None:
    engine = DriftEngine(horizons=(3,))
    bodies = [streams.window_body(rng) for _ in range(4)]
    assert engine.observe_windows("d", bodies, 4, np.zeros((4, 4, 19))) == []
    assert engine.windows_skipped == 4 and engine.windows_scored == 0


def test_a_device_whose_first_window_lacks_latency_and_predictions_never_sums_them(rng: np.random.Generator) -> None:
    """Window by window, a device's track sums latency / prediction counts only when its first window has them;
    a block that starts with such a window keeps that (the later windows of the block have them)."""
    ref = _reference(rng)
    one, block = DriftEngine(horizons=(3,)), DriftEngine(horizons=(3,))
    for engine in (one, block):
        engine.set_reference(ref)
        engine.observe_hello("c", streams.HELLO)
    bodies = [_body(rng, k, 0.0) for k in (0, 3, 4, 6)]
    bodies[0] = {**bodies[0], "latency": {}, "predictions": [1, 2]}
    for i, body in enumerate(bodies):
        expected = one.observe_window("c", body, i, score_fleet=False, score=i == 3)
    live = np.stack([one._refs[ref.model].pack(ref.model, b["features"]) for b in bodies])
    (got,) = block.observe_windows("c", bodies, 3, live, score_fleet=False)
    assert "chi2_p" not in got.ops and "p99_latency_us" not in got.ops
    assert got.ops == pytest.approx(expected[0].ops, rel=1e-12)
    np.testing.assert_array_equal(got.scores["psi"], expected[0].scores["psi"])
