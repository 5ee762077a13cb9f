"""Benchmark: the telemetry tap's cost on the loop thread, and the loop's p99 with the collector up vs down.

    python tests/bench/bench_telemetry.py [--json PATH] [--quick]

1. Per-frame cost on the calling thread of ``TelemetryTap.on_frame`` for 32 features (16 channels × mean/std, the
   default profile): native sketch update, latency sketch, counters, flags, and the window hand-off every
   ``window_s`` — for a model without a classification output, and again with top-1 counting over 10 classes.
   Timed in blocks of frames with ``perf_counter_ns``; the baseline in the same run is a
   no-op tap call (the floor any tap pays) and the same features sketched with the NumPy twin
   (``edge.kernels.reference.SketchAccumulator``).
2. A simulated loop (about 200 µs of NumPy work per frame, then ``on_frame``) on the monotonic clock with
   ``window_s`` = 20 ms, so the publisher encodes, spools and sends all the time, in alternating phases with a real
   ROUTER collector on loopback (up) and with nobody listening (down: the spool grows, the publisher retries).
   Frame times (work + tap) are pooled per condition.

Figures (``--json``): ``loop_thread_us_per_frame`` (median, µs; target ≤ 2), ``loop_thread_p99_us``,
``twin_sketch_us_per_frame``, ``noop_tap_us_per_frame``, ``loop_thread_with_top1_us_per_frame``,
``native_vs_twin_speedup_ratio`` (> 1 is better), ``loop_p99_up_us``, ``loop_p99_down_us`` and
``loop_p99_down_up_time_ratio`` (p99 down / p99 up; < 1 is better; target ≤ 1.05).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import _report
import numpy as np

from edge.contracts import FrameContext
from edge.kernels import reference
from edge.telemetry import tap_from_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fake collector lives there

from fake_collector import CollectorPeer

CHANNELS = 16  # 32 features


class NoopTap:
    def on_frame(self, ctx: FrameContext) -> None:
        pass


def _ctx(rng: np.random.Generator, classes: int = 10) -> FrameContext:
    ctx = FrameContext(CHANNELS)
    ctx.outputs = (rng.random((1, classes)).astype(np.float32),)
    ctx.stats[0] = rng.uniform(0, 255, CHANNELS)
    ctx.stats[1] = rng.uniform(0, 100, CHANNELS)
    ctx.stage_us[:] = rng.uniform(10, 3000, ctx.stage_us.shape[0])
    ctx.model_version = "bench@1"
    return ctx


def _blocks(call, ctx: FrameContext, blocks: int, per_block: int, period_ns: int) -> np.ndarray:
    """µs per frame of each block of ``per_block`` frames (the clock advances ``period_ns`` per frame)."""
    out = np.empty(blocks)
    tick = ctx.tick_ns
    for b in range(blocks):
        t0 = time.perf_counter_ns()
        for _ in range(per_block):
            tick += period_ns
            ctx.tick_ns = tick
            call(ctx)
        out[b] = (time.perf_counter_ns() - t0) / per_block / 1e3
    return out


def bench_cost(tmp: Path, quick: bool) -> tuple[list[tuple[str, np.ndarray]], dict[str, float]]:
    rng = np.random.default_rng(1)
    ctx = _ctx(rng, classes=1)  # a regression-style output: no top-1 class counting
    ctx_cls = _ctx(rng, classes=10)
    blocks, per_block = (200, 500) if quick else (1000, 1000)
    peer = CollectorPeer()
    common = {"endpoint": peer.endpoint, "window_s": 0.1, "fsync": "never"}
    tap = tap_from_config({**common, "spool_dir": "cost"}, device_id="bench", base_dir=tmp)
    tap_cls = tap_from_config({**common, "spool_dir": "cost-cls"}, device_id="bench-cls", base_dir=tmp)
    try:
        tap.bind(ctx, None)
        tap_cls.bind(ctx_cls, None)
        twin_x = np.zeros(2 * CHANNELS)
        edges = np.tile(np.linspace(0, 255, 17), (2 * CHANNELS, 1))
        counts = np.zeros((2 * CHANNELS, 19), np.int64)
        moments = np.zeros((2 * CHANNELS, 5))
        twin = reference.SketchAccumulator(edges, counts, moments)
        flat = twin_x.reshape(2, CHANNELS)

        def twin_frame(c: FrameContext) -> None:
            np.copyto(flat, c.stats)
            twin.update(twin_x)

        noop = NoopTap()
        rows = []
        for name, call, c in (("no-op tap call", noop.on_frame, ctx), ("tap.on_frame (native)", tap.on_frame, ctx),
                              ("NumPy twin sketch", twin_frame, ctx),
                              ("tap.on_frame + top-1 of 10 classes", tap_cls.on_frame, ctx_cls)):  # fmt: skip
            _blocks(call, c, max(blocks // 10, 5), per_block, 100_000)  # warm-up; a window every 1000 frames
            rows.append((name, _blocks(call, c, blocks, per_block, 100_000)))
        drops = tap.drops + tap_cls.drops
    finally:
        tap.close()
        tap_cls.close()
        peer.close()
    figures = {
        "noop_tap_us_per_frame": float(np.median(rows[0][1])),
        "loop_thread_us_per_frame": float(np.median(rows[1][1])),
        "loop_thread_p99_us": float(np.percentile(rows[1][1], 99)),
        "twin_sketch_us_per_frame": float(np.median(rows[2][1])),
        "loop_thread_with_top1_us_per_frame": float(np.median(rows[3][1])),
        "native_vs_twin_speedup_ratio": float(np.median(rows[2][1]) / np.median(rows[1][1])),
        "windows_dropped_in_cost_run": float(drops),
    }
    return rows, figures


def _simulated_loop(tap, ctx: FrameContext, frames: int, work: np.ndarray, out: np.ndarray) -> np.ndarray:
    times = np.empty(frames)
    for i in range(frames):
        t0 = time.perf_counter_ns()
        ctx.tick_ns = time.monotonic_ns()
        np.multiply(work, 1.0001, out=out)  # stands in for preprocessing + inference (~200 µs)
        np.sin(out, out=out)
        tap.on_frame(ctx)
        times[i] = (time.perf_counter_ns() - t0) / 1e3
        ctx.seq += 1
    return times


def bench_outage(tmp: Path, quick: bool) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    rng = np.random.default_rng(2)
    phases, frames = (4, 1500) if quick else (10, 4000)
    work = rng.random(12_000)
    out = np.empty_like(work)
    results: dict[str, list[np.ndarray]] = {"up": [], "down": []}
    peer = CollectorPeer()
    common = {"window_s": 0.02, "fsync": "interval", "ack_timeout_s": 0.5, "backoff_max_s": 0.5}
    up = tap_from_config({"endpoint": peer.endpoint, "spool_dir": "up", **common}, device_id="up", base_dir=tmp)
    dead = f"ipc://{tmp}/nobody.sock"
    down = tap_from_config({"endpoint": dead, "spool_dir": "down", **common}, device_id="down", base_dir=tmp)
    try:
        ctx_up, ctx_down = _ctx(rng), _ctx(rng)
        up.bind(ctx_up, None)
        down.bind(ctx_down, None)
        _simulated_loop(up, ctx_up, frames // 5, work, out)
        _simulated_loop(down, ctx_down, frames // 5, work, out)
        for p in range(phases):
            order = (("up", up, ctx_up), ("down", down, ctx_down))
            for name, tap, ctx in order if p % 2 == 0 else order[::-1]:
                results[name].append(_simulated_loop(tap, ctx, frames, work, out))
        spooled = down.publisher.spool.pending
        acked = up.publisher.acked
    finally:
        up.close()
        down.close()
        peer.close()
    pooled = {k: np.concatenate(v) for k, v in results.items()}
    p99 = {k: float(np.percentile(v, 99)) for k, v in pooled.items()}
    figures = {
        "loop_p99_up_us": p99["up"],
        "loop_p99_down_us": p99["down"],
        "loop_p99_down_up_time_ratio": p99["down"] / p99["up"],
        "down_windows_spooled": float(spooled),
        "up_windows_acked": float(acked),
    }
    return pooled, figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer frames; finishes in well under a minute")
    args = ap.parse_args()
    machine = _report.start()
    logging.getLogger("edge.telemetry").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        rows, figures = bench_cost(Path(d), args.quick)
        pooled, outage = bench_outage(Path(d), args.quick)
    figures |= outage
    base = float(np.median(rows[0][1]))
    print(f"{'loop-thread cost, 32 features':34}{'median µs':>11}{'p99 µs':>10}{'ratio':>9}")
    for name, v in rows:
        med = float(np.median(v))
        print(f"{name:34}{med:11.3f}{np.percentile(v, 99):10.3f}{med / base:9.2f}x  (vs no-op)")
    print(f"\n{'simulated loop frame time':34}{'median µs':>11}{'p99 µs':>10}{'ratio':>9}")
    for name in ("up", "down"):
        v = pooled[name]
        print(f"{'collector ' + name:34}{np.median(v):11.1f}{np.percentile(v, 99):10.1f}"
              f"{np.percentile(v, 99) / figures['loop_p99_up_us']:9.3f}  (p99 / p99 up)")  # fmt: skip
    print(
        f"\nloop_thread_us_per_frame = {figures['loop_thread_us_per_frame']:.3f} µs (target ≤ 2); "
        f"loop_p99_down_up_time_ratio = {figures['loop_p99_down_up_time_ratio']:.3f} (target ≤ 1.05); "
        f"down: {outage['down_windows_spooled']:.0f} windows spooled, up: {outage['up_windows_acked']:.0f} acked"
    )
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
