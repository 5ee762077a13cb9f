"""The tap on the loop thread: windows aligned on the lockstep clock with exactly the histograms, moments, latency
bins, class counts and counters of their frames (checked against plain-Python binning); a full hand-off queue drops
and counts; events and captures; and no allocation per frame (tracemalloc over thousands of frames)."""

from __future__ import annotations

import bisect
import math
import tracemalloc
import zlib

import numpy as np
from fake_collector import wait_for

from edge.contracts import DEADLINE_MISS, FALLBACK, STALE_SENSOR, Health

WINDOW_NS = 100_000_000  # window_s = 0.1 in make_tap
MEAN_EDGES = [255.0 * i / 16 for i in range(17)]  # the default profile, as PROTOCOL.md states it
STD_EDGES = [128.0 * i / 16 for i in range(17)]
LAT_EDGES = [10 ** (i / 4) for i in range(25)]  # 1 µs .. 1 s, 4 bins per decade


def bins(values: list[float], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) + 2)
    for v in values:
        counts[len(edges) + 1 if math.isnan(v) else bisect.bisect_right(edges, v)] += 1
    return counts


def test_windows_carry_exactly_their_frames(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint)
    tap.bind(driver.ctx, None)
    seen: list[tuple[int, np.ndarray, np.ndarray, int, int]] = []

    def record(ctx) -> None:
        if ctx.seq in (3, 4, 15):
            ctx.deadline_misses += 1
            ctx.flags = DEADLINE_MISS | STALE_SENSOR
        else:
            ctx.flags = 0
        if ctx.seq == 17:
            ctx.fallbacks += 1
            ctx.flags = FALLBACK
            ctx.health = Health.DEGRADED
        elif ctx.seq == 20:
            ctx.health = Health.OK
        seen.append((ctx.tick_ns, ctx.stats.copy(), ctx.stage_us.copy(), int(ctx.outputs[0].argmax()), ctx.flags))

    driver.run(tap, 35, on_frame=record)
    wait_for(lambda: len(collector.of_kind("window")) == 3, what="3 windows")
    windows = collector.of_kind("window")
    assert [w.seq for w in windows] == [1, 2, 3]
    for k, w in enumerate(windows):
        b = w.body
        assert (b["start_ns"], b["end_ns"]) == (k * WINDOW_NS, (k + 1) * WINDOW_NS)
        frames = [s for s in seen if k * WINDOW_NS <= s[0] < (k + 1) * WINDOW_NS]
        assert b["counters"]["frames"] == len(frames) == 10
        for c in range(3):
            means = [float(f[1][0, c]) for f in frames]
            assert b["features"][f"pixel_mean_c{c}"]["c"] == bins(means, MEAN_EDGES)
            assert b["features"][f"pixel_std_c{c}"]["c"] == bins([float(f[1][1, c]) for f in frames], STD_EDGES)
            count, mean, m2, lo, hi = b["features"][f"pixel_mean_c{c}"]["m"]
            assert count == 10 and lo == min(means) and hi == max(means)
            assert math.isclose(mean, sum(means) / 10, rel_tol=1e-12)
            assert math.isclose(m2, sum((v - sum(means) / 10) ** 2 for v in means), rel_tol=1e-9)
        assert b["latency"]["total"]["c"] == bins([float(f[2][5]) for f in frames], LAT_EDGES)
        assert b["predictions"] == [sum(1 for f in frames if f[3] == cls) for cls in range(10)]
    assert [w.body["counters"]["deadline_misses"] for w in windows] == [2, 1, 0]
    assert [w.body["counters"]["stale_sensor"] for w in windows] == [2, 1, 0]
    assert [w.body["counters"]["fallbacks"] for w in windows] == [0, 1, 0]
    assert [w.body["counters"]["health_max"] for w in windows] == [0, 1, 0]
    hello = collector.hellos[0].body
    assert hello["model"] == "classifier@1.0.0" and hello["window_s"] == 0.1
    assert [f["name"] for f in hello["features"]][:2] == ["pixel_mean_c0", "pixel_mean_c1"]
    assert hello["features"][0]["edges"] == MEAN_EDGES
    tap.close()
    # close hands over the partial 4th window (frames 30..34), ending just after the last frame
    wait_for(lambda: len(collector.of_kind("window")) == 4, what="the partial window")
    last = collector.of_kind("window")[-1].body
    assert last["counters"]["frames"] == 5 and last["end_ns"] == 34 * 10_000_000 + 1


def test_same_seed_same_windows(make_tap, collector, make_driver) -> None:
    bodies = []
    for device in ("dev-a", "dev-b"):
        d = make_driver(np.random.default_rng(7))
        tap = make_tap(collector.endpoint, device_id=device)
        tap.bind(d.ctx, None)
        d.run(tap, 50)
        tap.close()
        wait_for(lambda dev=device: sum(1 for r in collector.of_kind("window") if r.device == dev) == 5)
        bodies.append([r.body for r in collector.of_kind("window") if r.device == device])
    strip = [[{k: v for k, v in b.items() if k != "counters"} for b in run] for run in bodies]
    assert strip[0] == strip[1]


def test_full_hand_off_queue_drops_and_counts(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint, queue_size=2)
    tap.bind(driver.ctx, None)
    ring = tap._ring
    ring.state[1] = 2  # the publisher has not released the next slot yet (as if it were slow)
    driver.run(tap, 25, pace=False)  # closes 2 windows: both dropped, no free slot
    assert tap.drops == 2
    ring.state[1] = 0
    driver.run(tap, 10, pace=False)  # the 3rd window closes and goes through, reporting the drops
    wait_for(lambda: len(collector.of_kind("window")) == 1)
    assert collector.of_kind("window")[0].body["counters"]["telemetry_drops"] == 2


def test_events_become_records(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint)
    tap.bind(driver.ctx, None)
    driver.run(tap, 3)
    tap.on_event("health", {"from": "OK", "to": "SAFE_STOP", "reasons": ("stale camera",), "obj": object()})
    tap.on_event("swap", {"model": "classifier@2.0.0", "latency_ms": np.float64(1.5)})
    wait_for(lambda: len(collector.of_kind("event")) == 2)
    health, swap = collector.of_kind("event")
    assert health.body["name"] == "health" and health.body["fields"]["reasons"] == ["stale camera"]
    assert health.body["fields"]["obj"].startswith("<object object")
    assert swap.body["fields"] == {"model": "classifier@2.0.0", "latency_ms": 1.5}


def test_low_confidence_capture_is_rate_limited_and_compressed(make_tap, collector, driver) -> None:
    tap = make_tap(
        collector.endpoint,
        capture={"enabled": True, "confidence_below": 0.2, "min_interval_s": 0.05, "pool": 2, "max_bytes": 4096},
    )
    tap.bind(driver.ctx, None)
    frames = {}

    def keep(ctx) -> None:
        wait_for(lambda: all(s == 0 for s in tap.captures._state), what="the publisher to take the captures")
        ctx.confidence = 0.1 if ctx.seq % 2 == 0 else 0.9
        frames[ctx.seq] = ctx.frame.copy()

    driver.run(tap, 20, on_frame=keep)  # 200 ms: low confidence every 20 ms, at most one capture per 50 ms
    wait_for(lambda: len(collector.of_kind("capture")) == 4, what="4 captures")
    caps = collector.of_kind("capture")
    assert [c.body["frame_seq"] for c in caps] == [0, 6, 12, 18]
    for c in caps:
        assert c.body["reason"] == "low_confidence" and c.body["shape"] == [8, 8, 3]
        raw = zlib.decompress(c.body["data"])
        assert raw == frames[c.body["frame_seq"]].tobytes()


def test_loop_thread_allocates_nothing_per_frame(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint, capture={"enabled": True, "confidence_below": 0.01, "min_interval_s": 1.0})
    tap.bind(driver.ctx, None)
    ctx = driver.ctx
    driver.fill()
    for _ in range(300):  # warm up: first windows, first captures, interned ints
        tap.on_frame(ctx)
        driver.clock.advance(driver.period_ns)
        ctx.tick_ns = driver.clock.now_ns()
    files = ("*/edge/telemetry/tap.py", "*/edge/telemetry/window.py", "*/edge/telemetry/capture.py")
    tracemalloc.start(5)
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(5000):  # 50 windows closed and handed over on the way
            tap.on_frame(ctx)
            driver.clock.advance(driver.period_ns)
            ctx.tick_ns = driver.clock.now_ns()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    filters = [tracemalloc.Filter(True, f) for f in files]
    growth = sum(s.size_diff for s in after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno"))
    assert growth < 1024, f"the loop-thread path grew by {growth} bytes over 5000 frames"


def test_model_swap_closes_the_window_and_sends_a_new_hello(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint)
    tap.bind(driver.ctx, None)
    driver.run(tap, 15)  # window 0 closed, 5 frames into window 1
    driver.ctx.model_version = "classifier@2.0.0"
    tap.bind(driver.ctx, None)  # between frames: the loop swapped models
    driver.run(tap, 10)  # frames 15..24: window 1's rest (new model), window 2 begins at frame 20
    wait_for(lambda: len(collector.of_kind("window")) == 3 and len(collector.hellos) == 2, what="3 windows, 2 hellos")
    w = [r.body for r in collector.of_kind("window")]
    assert [b["model"] for b in w] == ["classifier@1.0.0", "classifier@1.0.0", "classifier@2.0.0"]
    assert [b["counters"]["frames"] for b in w] == [10, 5, 5]
    last_old_tick = 14 * 10_000_000
    assert (w[1]["start_ns"], w[1]["end_ns"]) == (WINDOW_NS, last_old_tick + 1)
    assert (w[2]["start_ns"], w[2]["end_ns"]) == (last_old_tick + 1, 2 * WINDOW_NS)
    assert [h.body["model"] for h in collector.hellos] == ["classifier@1.0.0", "classifier@2.0.0"]
