"""DriftEngine: rolling horizons are exact sums of the last windows, scores equal the metrics on those sums, and
the operational signals equal hand computations."""

from __future__ import annotations

import collector_streams as streams
import numpy as np
import pytest

from edge.collector.engine import FLEET, DriftEngine
from edge.drift import metrics
from edge.errors import ProtocolError


def feature_counts(body: dict, name: str) -> np.ndarray:
    return np.asarray(body["features"][name]["c"], dtype=np.float64)


def test_device_and_fleet_horizons_are_sums_of_the_last_windows(rng: np.random.Generator) -> None:
    ref = streams.reference(rng)
    engine = DriftEngine(horizons=(3, 5))
    engine.set_reference(ref)
    bodies: dict[str, list[dict]] = {"a": [], "b": []}
    for k in range(8):
        for dev, shift in (("a", 0.0), ("b", 0.3 * k)):
            body = streams.window_body(rng, shift=shift)
            bodies[dev].append(body)
            evals = engine.observe_window(dev, body, t_ns=k)
    # the last call was device b: evaluations (b, h=3), (fleet, h=3), (b, h=5), (fleet, h=5)
    assert [(e.scope, e.horizon) for e in evals] == [("b", 3), (FLEET, 3), ("b", 5), (FLEET, 5)]
    for ev in evals:
        for i, f in enumerate(ref.features):
            devs = ["b"] if ev.scope == "b" else ["a", "b"]
            live = sum(feature_counts(b, f.name) for d in devs for b in bodies[d][-ev.horizon :])
            assert ev.samples[i] == live.sum()
            assert ev.scores["psi"][i] == pytest.approx(metrics.psi(live, f.counts), rel=1e-12, abs=1e-15)
            assert ev.scores["js"][i] == pytest.approx(metrics.js_distance(live, f.counts), rel=1e-12, abs=1e-15)
            assert ev.scores["ks"][i] == pytest.approx(metrics.ks_statistic(live, f.counts), rel=1e-12, abs=1e-15)
            w = metrics.wasserstein_normalized(live, f.counts, f.edges, f.std)
            assert ev.scores["wasserstein"][i] == pytest.approx(w, rel=1e-12, abs=1e-15)


def test_operational_signals(rng: np.random.Generator) -> None:
    engine = DriftEngine(horizons=(2,))
    engine.set_reference(streams.reference(rng, budget_us=4000.0))
    engine.observe_hello("d", streams.HELLO)
    engine.observe_window("d", streams.window_body(rng, frames=100, misses=2, fallbacks=1, latency_us=3000), 1)
    evals = engine.observe_window("d", streams.window_body(rng, frames=300, misses=10, fallbacks=0, latency_us=7000), 2)
    ops = evals[0].ops
    assert ops["deadline_miss_rate"] == pytest.approx(12 / 400)
    assert ops["fallback_rate"] == pytest.approx(1 / 400)
    # 100 values in [1000, 5000) and 300 in [5000, 10000): rank 0.99 * 400 = 396 -> 5000 + 5000 * 296 / 300
    assert ops["p99_latency_us"] == pytest.approx(5000 + 5000 * 296 / 300)
    assert ops["p99_latency_ratio"] == pytest.approx((5000 + 5000 * 296 / 300) / 4000.0)


def test_unknown_model_is_skipped_and_mismatched_bins_are_a_protocol_error(rng: np.random.Generator) -> None:
    engine = DriftEngine()
    body = streams.window_body(rng)
    assert engine.observe_window("d", body, 0) == [] and engine.windows_skipped == 1
    engine.set_reference(streams.reference(rng))
    body["features"]["f01"]["c"] = body["features"]["f01"]["c"][:-1]
    with pytest.raises(ProtocolError, match=r"f01.c: expected 11 counts, got 10"):
        engine.observe_window("d", body, 0)
