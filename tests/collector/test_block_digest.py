"""The block digest (the scoring thread's reader, native without the GIL) against what the engine reads of a decoded
body: feature counts, counters, the confidence moments, latency and prediction counts; what it declines; the native
reader against its msgpack twin; and the engine scoring digests exactly like decoded bodies."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import collector_streams as streams
import msgpack
import numpy as np
import pytest

from edge import kernels
from edge.collector.engine import DriftEngine, ModelReference
from edge.errors import ConfigError, ShapeError
from edge.telemetry.protocol import Record

MODEL = streams.MODEL
N_FEATURES = 6
REF_PREDICTIONS = np.array([40, 0, 30, 20, 10])


def _block(backend: str) -> Callable[..., int]:
    try:
        return kernels.implementation(backend)["window_digest_block"]
    except ImportError as exc:
        if os.environ.get("EDGE_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"native frame readers not built: {exc}")


def _reference(rng: np.random.Generator) -> ModelReference:
    ref = streams.reference(rng, n_features=N_FEATURES, budget_us=4000.0)
    conf = dataclasses.replace(ref.features[1], kind="confidence")
    return dataclasses.replace(ref, features=(ref.features[0], conf, *ref.features[2:]), predictions=REF_PREDICTIONS)


def _engine(rng: np.random.Generator) -> DriftEngine:
    engine = DriftEngine(horizons=(4, 9))
    engine.set_reference(_reference(rng))
    engine.observe_hello("d", streams.HELLO)
    return engine


def _body(rng: np.random.Generator, k: int) -> dict[str, Any]:
    """Windows that vary what the engine reads: predictions of the reference's length or not, the latency stage
    present, of another length or absent, features in another order and unknown ones, counters missing."""
    body = streams.window_body(rng, n_features=N_FEATURES, frames=int(rng.integers(1, 3000)), shift=rng.normal(),
                               misses=int(rng.integers(0, 9)), fallbacks=k % 4)  # fmt: skip
    body["predictions"] = rng.multinomial(50, [0.3, 0.1, 0.3, 0.2, 0.1]).tolist() if k % 3 else [1, 2, 3]
    if k % 5 == 1:
        body["latency"] = {"preprocess": body["latency"]["total"]}  # not the engine's stage
    elif k % 5 == 2:
        body["latency"]["total"]["c"] = [1, 2, 3]  # not the hello's edges
    elif k % 5 == 3:
        body["latency"]["model"] = {"c": [5, 5], "m": [0, 0, 0, 0, 0]}
    if k % 4 == 1:
        body["features"] = dict(reversed(body["features"].items()))
    if k % 6 == 2:
        body["features"]["unknown"] = {"c": [1, 2, 3], "m": [1.0, 0.5, 0.0, 0.5, 0.5]}
    if k % 7 == 3:
        del body["counters"]["fallbacks"]
    if k % 8 == 5:
        body["features"][streams.names(N_FEATURES)[1]]["m"][0] = 0.0  # no confidence values in this window
    return body


def _frame(body: dict[str, Any], seq: int = 1) -> bytes:
    return msgpack.packb(Record("window", "d", "b", seq, seq, 0, body).to_map(), use_bin_type=True)


def _digest(block: Callable[..., int], engine: DriftEngine, items: list[Any]) -> tuple[Any, Any, Any, int]:
    layout = engine.digest_layout("d", MODEL)
    assert layout is not None
    names, _, width, _, _, n_lat, n_pred = layout
    live = np.full((len(items), len(names), width), np.nan)
    extra = np.full((len(items), 7 + n_lat + n_pred), np.nan)
    ok = np.full(len(items), 7, np.uint8)
    n = block(items, MODEL, *layout, live, extra, ok)
    return live, extra, ok, n


def _expected_extra(body: dict[str, Any], n_lat: int, n_pred: int) -> np.ndarray:
    """What the engine reads of a decoded body besides the counts, written out by hand."""
    c = body["counters"]
    row = [c.get("frames", 0), c.get("deadline_misses", 0), c.get("fallbacks", 0), 0.0, 0.0]
    m = body["features"][streams.names(N_FEATURES)[1]]["m"]
    if m[0] > 0:
        row[3:5] = [m[0], m[0] * m[1]]
    lat = body["latency"].get("total", {}).get("c", [])
    row += [1.0, *lat] if len(lat) == n_lat else [0.0] * (n_lat + 1)
    preds = body["predictions"]
    row += [1.0, *preds] if len(preds) == n_pred else [0.0] * (n_pred + 1)
    return np.array(row, dtype=np.float64)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_block_digest_reads_what_the_engine_reads(backend: str, rng: np.random.Generator) -> None:
    block = _block(backend)
    engine = _engine(rng)
    bodies = [_body(rng, k) for k in range(40)]
    live, extra, ok, n = _digest(block, engine, [_frame(b, k + 1) for k, b in enumerate(bodies)])
    assert n == 40 and ok.tolist() == [1] * 40
    packed = engine._refs[MODEL]
    n_lat, n_pred = streams.LAT_EDGES.size + 2, REF_PREDICTIONS.size
    for i, body in enumerate(bodies):
        np.testing.assert_array_equal(live[i], packed.pack(MODEL, body["features"]))  # the engine's own packing
        np.testing.assert_array_equal(extra[i], _expected_extra(body, n_lat, n_pred))
    assert {int(f) for f in extra[:, 5]} == {0, 1} and {int(f) for f in extra[:, 6 + n_lat]} == {0, 1}


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_block_digest_declines_what_it_cannot_read_and_reads_the_rest(backend: str, rng: np.random.Generator) -> None:
    block = _block(backend)
    engine = _engine(rng)
    names = streams.names(N_FEATURES)
    good = _body(rng, 0)
    no_stage_counts = {**good, "latency": {"total": {"m": [0, 0, 0, 0, 0]}}}
    short = {**good, "features": {k: v for k, v in good["features"].items() if k != names[3]}}
    wrong = {**good, "features": {**good["features"], names[0]: {"c": [1, 2, 3], "m": [0, 0, 0, 0, 0]}}}
    no_moments = {**good, "features": {**good["features"], names[1]: {"c": good["features"][names[1]]["c"]}}}
    items: list[Any] = [
        _frame(good),
        _frame({**good, "model": "other@1"}),
        _frame(short),
        _frame(wrong),
        _frame(no_moments),  # the confidence feature without moments
        _frame(no_stage_counts),  # the engine's latency stage without counts
        _frame({k: v for k, v in good.items() if k != "counters"}),
        b"\x93\x01\x02",  # not a record map
        _frame(good)[:-3],  # truncated
        bytearray(_frame(good)),  # not bytes
        _frame(good, 2),
    ]
    live, extra, ok, n = _digest(block, engine, items)
    assert ok.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] and n == 2
    np.testing.assert_array_equal(live[0], live[-1])
    np.testing.assert_array_equal(extra[0], extra[-1])


def _map(pairs: list[tuple[str, bytes]]) -> bytes:
    """A msgpack map (at most 15 entries) of already packed values, keys in order, repeats allowed."""
    return bytes([0x80 | len(pairs)]) + b"".join(msgpack.packb(k) + v for k, v in pairs)


def test_native_block_digest_declines_a_repeated_key(rng: np.random.Generator) -> None:
    """A dict keeps the last of a repeated key; the native reader leaves such a frame to the whole decode."""
    block = _block("native")
    engine = _engine(rng)
    good = _body(rng, 0)
    feats = list(good["features"].items())
    body = {k: msgpack.packb(v) for k, v in good.items() if k != "features"}
    twice = _map([(k, msgpack.packb(v)) for k, v in [*feats, feats[2]]])  # a feature twice
    stage = _map([("total", msgpack.packb(good["latency"]["total"]))] * 2)  # the latency stage twice
    for features, latency in ((twice, body["latency"]), (msgpack.packb(good["features"]), stage)):
        frame = _map([("v", msgpack.packb(1)), ("body", _map([*{**body, "latency": latency}.items(),
                                                                ("features", features)]))])  # fmt: skip
        assert msgpack.unpackb(frame)["body"]["model"] == MODEL
        *_, ok, n = _digest(block, engine, [frame])
        assert n == 0 and ok[0] == 0


def test_native_and_twin_agree_on_many_windows(rng: np.random.Generator) -> None:
    native, twin = _block("native"), _block("numpy")
    engine = _engine(rng)
    items = [_frame(_body(rng, k), k + 1) for k in range(300)]
    a, b = _digest(native, engine, items), _digest(twin, engine, items)
    assert a[3] == b[3] == 300
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_a_layout_that_does_not_describe_the_arrays_is_a_value_error(backend: str, rng: np.random.Generator) -> None:
    """Both backends check the call with edge._kernel_checks.digest_block: the same error type and message."""
    block = _block(backend)
    engine = _engine(rng)
    names, lengths, width, moments_row, stage, n_lat, n_pred = engine.digest_layout("d", MODEL)
    items = [_frame(_body(rng, 0))]
    live, extra, ok = np.empty((1, len(names), width)), np.empty((1, 7 + n_lat + n_pred)), np.empty(1, np.uint8)
    with pytest.raises(ShapeError, match="expected counts"):
        block(items, MODEL, names, lengths, width, moments_row, stage, n_lat, n_pred, live[:, :-1], extra, ok)
    with pytest.raises(ShapeError, match="expected counts"):
        block(items, MODEL, names, lengths, width, moments_row, stage, n_lat, -1, live, extra, ok)  # extra too wide
    with pytest.raises(ConfigError, match="expected names"):
        block(items, MODEL, names, (width + 1, *lengths[1:]), width, moments_row, stage, n_lat, n_pred, live, extra, ok)
    read_only = live.copy()
    read_only.flags.writeable = False
    for bad, message in [
        (live.astype(np.float32), r"counts: expected 3-D float64 array, got float32"),
        (read_only, "counts: expected a writable array"),
        (np.empty((1, len(names), 2 * width))[:, :, ::2], "counts: expected a C-contiguous array"),
    ]:
        with pytest.raises(ShapeError, match=message):
            block(items, MODEL, names, lengths, width, moments_row, stage, n_lat, n_pred, bad, extra, ok)
    with pytest.raises(ShapeError, match="ok: expected 1-D uint8 array, got bool"):
        block(items, MODEL, names, lengths, width, moments_row, stage, n_lat, n_pred, live, extra, ok.astype(bool))
    assert block(items, MODEL, names, lengths, width, moments_row, stage, n_lat, n_pred, live, extra, ok) == 1


def test_engine_scores_digests_exactly_like_decoded_bodies(rng: np.random.Generator) -> None:
    """The scoring thread's path (block digest, ``observe_digests``) against the engine's own (decoded bodies,
    one window at a time), with the active backend."""
    fast, slow = _engine(np.random.default_rng(3)), _engine(np.random.default_rng(3))
    seq = 0
    for size in (1, 5, 12, 2, 9):
        bodies = [_body(rng, seq + i) for i in range(size)]
        items = [_frame(b, seq + i + 1) for i, b in enumerate(bodies)]
        live, extra, _, n = _digest(kernels.window_digest_block, fast, items)
        assert n == size
        got = fast.observe_digests("d", MODEL, seq + size, live, extra)
        for i, frame in enumerate(items):
            expected = slow.observe_window("d", msgpack.unpackb(frame)["body"], seq + i + 1, score=i == size - 1)
        seq += size
        assert [(e.scope, e.horizon, e.windows, e.t_ns) for e in got] == [
            (e.scope, e.horizon, e.windows, e.t_ns) for e in expected
        ]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g.samples, e.samples)
            for metric in e.scores:
                np.testing.assert_array_equal(g.scores[metric], e.scores[metric])
            assert g.ops.keys() == e.ops.keys() and {"p99_latency_us", "confidence_mean"} <= g.ops.keys()
            assert "chi2_p" not in g.ops  # the device's first window had no predictions of the reference's length
            for key, value in e.ops.items():  # the confidence sums are floats: equal to rounding
                assert g.ops[key] == pytest.approx(value, rel=1e-12, nan_ok=True)


def test_hostile_frames_never_crash_the_native_reader_and_the_twin_reads_the_same(
    rng: np.random.Generator,
) -> None:
    """Only stored (validated) frames reach it, but random bytes, truncations, byte flips and deep nesting must
    not crash it; a frame it digests is one its twin digests to the same values."""
    from test_fuzz import corpus

    native, twin = _block("native"), _block("numpy")
    engine = _engine(rng)
    items = corpus(rng, _frame(_body(rng, 0)), 3000)
    a, b = _digest(native, engine, items), _digest(twin, engine, items)
    read = a[2] == 1
    assert read.sum() <= b[2].sum() and (b[2][read] == 1).all()
    np.testing.assert_array_equal(a[0][read], b[0][read])
    np.testing.assert_array_equal(a[1][read], b[1][read])
    assert 0 < read.sum() < len(items)  # byte flips in unread values leave some frames readable
