"""Bounded device tracks: a ring that grows as windows arrive sums exactly what a full-size ring does; an engine that
keeps at most ``max_tracks`` device tracks, rebuilding an evicted one from its last windows, scores exactly as an
unbounded one; a real collector with ``max_tracks=2`` and five devices over ZeroMQ (and a restart on its store)
serves the drift an unbounded one does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device

from edge.cli import build_parser
from edge.collector.engine import DriftEngine
from edge.collector.rolling import RollingSums
from edge.collector.server import CollectorServer, CollectorSettings
from edge.drift.profile import save_profile
from edge.telemetry.protocol import Record, encode_record

HORIZONS = (3, 8)
DEVICES, ROUNDS = 5, 24


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def test_a_growing_ring_sums_the_last_windows_of_each_horizon(rng: np.random.Generator) -> None:
    horizons = (1, 4, 13)
    for start in (1, 2, 5, 13, 40):
        roll = RollingSums(horizons, (3, 2), start=start)
        windows: list[np.ndarray] = []
        while len(windows) < 60:
            k = int(rng.integers(1, 9))
            block = rng.integers(0, 50, (k, 3, 2)).astype(np.float64)
            before = {h: roll.sums[h].copy() for h in horizons}
            deltas = roll.push_block(block)
            windows.extend(block)
            assert roll.ring.shape[0] <= max(horizons)
            for h in horizons:
                expected = np.sum(windows[-h:], axis=0)
                np.testing.assert_array_equal(roll.sums[h], expected, err_msg=f"start {start}, h {h}")
                np.testing.assert_array_equal(before[h] + deltas[h], expected)
        assert roll.ring.shape[0] == max(horizons)  # grown to the longest horizon, no further


def test_a_new_track_holds_a_few_windows_not_the_longest_horizon() -> None:
    roll = RollingSums((10, 600), (32, 18))
    roll.push_block(np.ones((1, 32, 18)))
    assert roll.ring.shape[0] == 2 and roll.capacity == 600


def bodies(rng: np.random.Generator) -> list[tuple[str, dict]]:
    """``ROUNDS`` windows from each of ``DEVICES`` devices in a seeded, irregular order (``dev-4`` drifts)."""
    order = rng.permutation(np.repeat(np.arange(DEVICES), ROUNDS))
    return [(f"dev-{d}", streams.window_body(rng, shift=0.6 if d == 4 else 0.0, latency_us=1000.0 * (d + 1)))
            for d in order]  # fmt: skip


def test_an_engine_with_evicted_tracks_scores_as_an_unbounded_one(rng: np.random.Generator) -> None:
    ref = streams.reference(rng)
    unbounded, bounded = DriftEngine(HORIZONS), DriftEngine(HORIZONS, max_tracks=2)
    for engine in (unbounded, bounded):
        engine.set_reference(ref)
        for d in range(DEVICES):
            engine.observe_hello(f"dev-{d}", streams.HELLO)
    sent: dict[str, list[dict]] = {}
    reloads = 0
    for t, (device, body) in enumerate(bodies(rng)):
        if bounded.needs_reload(device, streams.MODEL):  # what the scoring thread does from the store
            reloads += 1
            for old in sent[device][-max(HORIZONS) :]:
                assert bounded.observe_window(device, old, t, score=False, into_fleet=False) == []
        sent.setdefault(device, []).append(body)
        want, got = unbounded.observe_window(device, body, t), bounded.observe_window(device, body, t)
        assert [(e.scope, e.horizon) for e in got] == [(e.scope, e.horizon) for e in want]
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(b.samples, a.samples)
            for metric, values in a.scores.items():
                np.testing.assert_allclose(b.scores[metric], values, rtol=0, atol=1e-9, err_msg=metric)
            assert b.ops.keys() == a.ops.keys()
            np.testing.assert_allclose([b.ops[k] for k in a.ops], list(a.ops.values()), rtol=0, atol=1e-9)
        assert bounded.tracks <= 2
    assert reloads > 20 and bounded.tracks_evicted >= reloads
    assert bounded.devices(streams.MODEL) == unbounded.devices(streams.MODEL) == {f"dev-{d}" for d in range(DEVICES)}


def test_max_tracks_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 2.0, None):
        with pytest.raises(Exception, match="max_tracks"):
            DriftEngine(HORIZONS, max_tracks=bad)  # type: ignore[arg-type]
    parser = build_parser("collector")
    assert parser.parse_args(["collector", "--max-tracks", "3"]).max_tracks == 3
    assert parser.parse_args(["collector"]).max_tracks is None  # the engine's default
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["collector", "--max-tracks", "0"])
    assert exc.value.code == 2


def frames(rng: np.random.Generator) -> list[list[bytes]]:
    """Rounds of window frames: each round a seeded subset of the devices, so that tracks are evicted and come
    back at irregular distances."""
    seq = dict.fromkeys(range(DEVICES), 0)
    rounds = []
    for k in range(1, ROUNDS + 1):
        senders = sorted(rng.choice(DEVICES, size=int(rng.integers(1, DEVICES + 1)), replace=False))
        out = []
        for d in senders:
            seq[d] += 1
            body = streams.window_body(rng, shift=0.7 if d == 4 and k > 10 else 0.0)
            out.append((d, encode_record(Record("window", f"dev-{d}", f"dev-{d}-boot", seq[d], k * 10**9, k, body))))
        rounds.append(out)
    return rounds


def run(server: CollectorServer, ctx: zmq.Context, hello: dict, rounds: list[list[tuple[int, bytes]]]) -> None:
    """Every device says hello, then the rounds are sent, each acked and scored before the next: tracks go and
    come back between scoring batches."""
    devices = [Device(ctx, server.endpoint, f"dev-{d}") for d in range(DEVICES)]
    try:
        for dev in devices:
            dev.send_records(dev.record("hello", hello))
            assert dev.reply() is not None
        for batch in rounds:
            for d, frame in batch:
                devices[d].send(frame)
            for d, _ in batch:
                reply = devices[d].reply()
                assert reply is not None and not reply.rejected, reply
            assert server.drain(30.0)
    finally:
        for dev in devices:
            dev.close()


def latest(server: CollectorServer) -> dict:
    """The last point of the series that do not depend on how windows were batched: every device's primary
    horizon and the fleet's horizons."""
    keys = [(f"dev-{d}", HORIZONS[0]) for d in range(DEVICES)] + [("fleet", h) for h in HORIZONS]
    return {key: server.series.latest(key[0], streams.MODEL, key[1]) for key in keys}


def test_a_collector_keeping_two_tracks_serves_the_drift_of_an_unbounded_one(
    tmp_path: Path, store_url: str, ctx: zmq.Context, rng: np.random.Generator
) -> None:
    """Stopped halfway and started again on its store (the restart replays more devices than it keeps)."""
    prof = streams.profile(rng)
    (tmp_path / "profiles").mkdir()
    save_profile(prof, tmp_path / "profiles" / "p.json")
    hello = streams.hello_body(prof)
    rounds = frames(rng)

    def settings(db: str, max_tracks: int) -> CollectorSettings:
        return CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=None, profiles=tmp_path / "profiles",
                                 horizons=HORIZONS, max_tracks=max_tracks)  # fmt: skip

    def every_series(server: CollectorServer) -> dict:  # each device's primary horizon: a point per window
        return {d: server.series.series(f"dev-{d}", streams.MODEL, "psi") for d in range(DEVICES)}

    with CollectorServer(settings(f"sqlite:///{tmp_path}/unbounded.db", 4096)) as unbounded:
        run(unbounded, ctx, hello, rounds)
        expected = latest(unbounded)
        history = every_series(unbounded)
        assert unbounded.counters["tracks_evicted"] == unbounded.counters["tracks_reloaded"] == 0
        assert unbounded.series.evicted == 0

    half = ROUNDS // 2
    with CollectorServer(settings(store_url, 2)) as first:
        run(first, ctx, hello, rounds[:half])
        assert first.counters["tracks_reloaded"] > 0 and first.engine.tracks <= 2
    with CollectorServer(settings(store_url, 2)) as bounded:
        assert bounded.drain(30.0) and bounded.engine.tracks <= 2  # five devices replayed, two tracks kept
        assert len(bounded.engine.devices(streams.MODEL)) == DEVICES
        run(bounded, ctx, hello, rounds[half:])
        assert bounded.counters["tracks_reloaded"] > 0 and bounded.counters["tracks_evicted"] > 0
        assert bounded.engine.tracks <= 2 and bounded.counters["engine_errors"] == 0
        # the drift series too: two tracks' rings (one per horizon) and the fleet's in memory, the rest read from
        # the store, the same history
        assert bounded.series.rings <= 2 * len(HORIZONS) + len(HORIZONS) and bounded.series.evicted > 0
        assert len(bounded.series.scopes()) == DEVICES + 1
        got_history = every_series(bounded)
        for d in range(DEVICES):
            assert got_history[d]["t_ns"] == history[d]["t_ns"], d
            np.testing.assert_allclose(got_history[d]["values"], history[d]["values"], rtol=0, atol=1e-9)
        for scope, model in bounded.series.scopes():  # every series as the store has it
            for h in HORIZONS:
                stored = bounded.store.series_of(scope, model, h, 600)
                served = bounded.series.series(scope, model, "psi", h)
                assert served["t_ns"] == [t for t, _ in stored], (scope, h)
                assert served["values"] == [p["scores"]["psi"] for _, p in stored], (scope, h)
        got = latest(bounded)
    for key, want in expected.items():
        have = got[key]
        assert want is not None and have is not None, key
        assert (have.t_ns, have.samples) == (want.t_ns, want.samples), key
        for metric, values in want.scores.items():
            np.testing.assert_allclose(have.scores[metric], values, rtol=0, atol=1e-9, err_msg=f"{key} {metric}")
        np.testing.assert_allclose([have.ops[k] for k in want.ops], list(want.ops.values()), rtol=0, atol=1e-9)
