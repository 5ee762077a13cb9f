"""Benchmark: robot I/O — the video source, the MCAP recorder's loop-thread cost, replay speed.

    python tests/bench/bench_io.py [--json PATH] [--quick]

* ``video_source_frame_us`` (median µs per 640×480 frame): the video source's per-frame work off the loop thread —
  decode (H.264 made here with PyAV), conversion to the slot's RGB layout, the copy into the ``SensorSlot`` — against
  a bare PyAV loop decoding and converting the same file (``decode`` + ``to_ndarray("rgb24")``) in the same run:
  ``video_source_vs_bare_time_ratio`` (< 1 is better; target ≤ 1.1). Alternating passes, median per pass.
* ``record_loop_thread_us_per_frame`` (median µs): ``RecordingTap.on_frame`` with a new 640×480 frame every call
  (the frame copy into the ring dominates: ~0.9 MB), and ``record_loop_thread_us_per_reused_frame`` when the loop
  reuses a frame (decision and timings only), the writer thread running meanwhile.
* ``replay_frames_per_s``: a recorded lockstep run replayed through ``ReplayDriver`` (read, decode the JSON/base64
  image, push, ``Loop.step`` with a small U8S8 CNN).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import _report
import av
import numpy as np

from edge.contracts import FrameContext
from edge.io.record import RecordingTap
from edge.io.replay import Recording, ReplayDriver
from edge.io.video import VideoSource
from edge.loop.clock import LockstepClock
from edge.loop.decision import Decision
from edge.loop.policy import ClassificationPolicy
from edge.loop.runner import Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.models.manage import pack_model
from edge.tooling.model_builders import u8s8_cnn_onnx

FRAME = (480, 640, 3)


def make_video(path: Path, frames: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, FRAME, dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt, s.time_base = FRAME[1], FRAME[0], "yuv420p", Fraction(1, 30)
        s.options = {"preset": "ultrafast"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.roll(base, i * 4, axis=1), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    return path


def bench_video(path: Path, passes: int) -> dict[str, float]:
    def bare() -> int:
        n = 0
        with av.open(str(path)) as c:
            c.streams.video[0].thread_type = "AUTO"
            for frame in c.decode(video=0):
                frame.to_ndarray(format="rgb24")
                n += 1
        return n

    slot = SensorSlot("camera", FRAME)

    def source() -> int:
        src = VideoSource(slot, path, rate="as_fast_as_loop")
        src._open()
        n = 0
        try:
            for media_ns, frame in src._frames():  # the thread's per-frame work, without pacing
                src._offer(frame, media_ns + 1)
                n += 1
        finally:
            src._release()
        return n

    times: dict[str, list[float]] = {"bare": [], "source": []}
    for _ in range(passes):
        for name, fn in (("bare", bare), ("source", source)):
            t = time.perf_counter()
            n = fn()
            times[name].append((time.perf_counter() - t) / n * 1e6)
    b, s = float(np.median(times["bare"])), float(np.median(times["source"]))
    return {"video_bare_decode_frame_us": b, "video_source_frame_us": s, "video_source_vs_bare_time_ratio": s / b}


def bench_record(d: Path, frames: int) -> dict[str, float]:
    tap = RecordingTap(d / "bench.mcap", "camera", FRAME, queue_frames=64)
    ctx = FrameContext(3)
    ctx.decision = Decision(0, stage_us=ctx.stage_us)
    tap.bind(ctx, None)
    imgs = [np.random.default_rng(i).integers(0, 256, FRAME, dtype=np.uint8) for i in range(2)]
    new, reused = [], []
    try:
        for i in range(frames):
            ctx.seq, ctx.tick_ns, ctx.capture_ns = i, i * 33_000_000, i * 33_000_000
            ctx.frame = imgs[i % 2]
            t = time.perf_counter_ns()
            tap.on_frame(ctx)
            new.append((time.perf_counter_ns() - t) / 1e3)
            ctx.seq, ctx.tick_ns = i, ctx.tick_ns + 1  # the same frame again: decision and timings only
            t = time.perf_counter_ns()
            tap.on_frame(ctx)
            reused.append((time.perf_counter_ns() - t) / 1e3)
            time.sleep(0.002)  # a 2 ms frame period gives the writer thread its share
    finally:
        tap.close(10)
    return {
        "record_loop_thread_us_per_frame": float(np.median(new)),
        "record_loop_thread_p99_us": float(np.percentile(new, 99)),
        "record_loop_thread_us_per_reused_frame": float(np.median(reused)),
        "record_drops": float(tap.drops),
    }


def bench_replay(d: Path, frames: int) -> dict[str, float]:
    pkg = pack_model(u8s8_cnn_onnx(d / "cnn.onnx"), d / "cnn.tgz", name="cnn", version="1.0")
    actions = [f"a{i}" for i in range(10)]

    def loop(clock: LockstepClock, taps=()) -> Loop:
        return Loop(pkg, ClassificationPolicy(actions), [SensorSlot("camera", FRAME)], clock=clock,
                    timing=Timing(rate_hz=30), taps=list(taps))  # fmt: skip

    clock = LockstepClock()
    tap = RecordingTap(d / "rec.mcap", "camera", FRAME, queue_frames=frames + 1)
    live = loop(clock, [tap])
    rng = np.random.default_rng(1)
    for _ in range(frames):
        live.slot("camera").push(rng.integers(0, 256, FRAME, dtype=np.uint8), clock.now_ns())
        live.step()
    live.close()
    clock = LockstepClock()
    replay = loop(clock)
    t = time.perf_counter()
    n = len(ReplayDriver(replay, clock, Recording(d / "rec.mcap", "camera")).run())
    dt = time.perf_counter() - t
    replay.close()
    return {"replay_frames_per_s": n / dt}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer frames and passes (under a minute)")
    args = ap.parse_args()
    machine = _report.start()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        video = make_video(d / "bench.mp4", 60 if args.quick else 300)
        figures = bench_video(video, 3 if args.quick else 7)
        figures |= bench_record(d, 300 if args.quick else 2000)
        figures |= bench_replay(d, 60 if args.quick else 300)
    print(f"{'video, 640×480 H.264':40}{'median µs/frame':>16}")
    print(f"{'  bare PyAV decode + rgb24':40}{figures['video_bare_decode_frame_us']:16.1f}")
    print(f"{'  video source (decode + rgb24 + slot)':40}{figures['video_source_frame_us']:16.1f}"
          f"   ratio {figures['video_source_vs_bare_time_ratio']:.3f} (target ≤ 1.1)")  # fmt: skip
    print(f"{'recorder on_frame, new 640×480 frame':40}{figures['record_loop_thread_us_per_frame']:16.2f}"
          f"   p99 {figures['record_loop_thread_p99_us']:.2f}")  # fmt: skip
    print(f"{'recorder on_frame, reused frame':40}{figures['record_loop_thread_us_per_reused_frame']:16.2f}")
    print(f"{'recorder drops':40}{figures['record_drops']:16.0f}")
    print(f"{'replay (lockstep, small CNN)':40}{figures['replay_frames_per_s']:16.1f} frames/s")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
