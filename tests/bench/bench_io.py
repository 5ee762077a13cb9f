"""Benchmark: robot I/O — the video source, the MCAP recorder's loop-thread cost, replay speed.

    python tests/bench/bench_io.py [--json PATH] [--quick]

* ``video_source_frame_us`` (median µs per 640×480 frame): the video source's per-frame work off the loop thread —
  decode (H.264 made here with PyAV), conversion to the slot's RGB layout, the copy into the ``SensorSlot`` — against
  a bare PyAV loop decoding and converting the same file (``decode`` + ``to_ndarray("rgb24")``) in the same run:
  ``video_source_vs_bare_time_ratio`` (< 1 is better; target ≤ 1.1). Alternating passes, median per pass. The
  source converts with ``threads=1`` (see ``edge.io.video``); ``video_bare_threads1_frame_us`` is the bare loop
  with the same setting, and ``video_source_vs_bare_threads1_time_ratio`` the source's cost against that one.
* ``record_loop_thread_us_per_frame`` (median µs): ``RecordingTap.on_frame`` with a new 640×480 frame every call,
  the image handed over by the source's thread (``RecordingTap.tee``, what the ``edge.io`` sources do), so the loop
  thread copies no image; ``record_loop_thread_us_per_frame_no_tee`` is the same without a tee (ZeroMQ and pushed
  sensors: the loop thread copies the ~0.9 MB image); ``record_loop_thread_us_per_reused_frame`` when the loop
  reuses a frame (decision and timings only). Each 5 ms period calls it twice: first with the previous frame again
  (the first call after the sleep: its time includes the cold caches any loop-thread code meets after the sleep,
  ~10-20 µs here whatever it does), then with a new frame (the recorder's own work). The writer runs meanwhile;
  calls that dropped (full ring) are left out.
* ``replay_frames_per_s``: a recorded lockstep run replayed through ``ReplayDriver`` (read, decode the JSON/base64
  image, push, ``Loop.step`` with a small U8S8 CNN).
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
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
    def bare(**convert) -> int:
        n = 0
        with av.open(str(path)) as c:
            c.streams.video[0].thread_type = "AUTO"
            for frame in c.decode(video=0):
                frame.to_ndarray(format="rgb24", **convert)
                n += 1
        return n

    def bare_threads1() -> int:
        return bare(threads=1)

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

    times: dict[str, list[float]] = {"bare": [], "source": [], "bare1": []}
    for _ in range(passes):
        for name, fn in (("bare", bare), ("source", source), ("bare1", bare_threads1)):
            t = time.perf_counter()
            n = fn()
            times[name].append((time.perf_counter() - t) / n * 1e6)
    b, s, b1 = (float(np.median(times[k])) for k in ("bare", "source", "bare1"))
    return {
        "video_bare_decode_frame_us": b,
        "video_source_frame_us": s,
        "video_source_vs_bare_time_ratio": s / b,
        "video_bare_threads1_frame_us": b1,
        "video_source_vs_bare_threads1_time_ratio": s / b1,
    }


def _record_pass(d: Path, frames: int, tee: bool) -> tuple[list[float], list[float], RecordingTap]:
    """Median-ready per-call times of ``on_frame`` (µs) for new and reused frames; calls that dropped (full ring:
    no copy) are left out. With ``tee``, a source thread hands each image over before the loop's call, as the
    edge.io sources do."""
    tap = RecordingTap(d / f"bench-{tee}.mcap", "camera", FRAME, queue_frames=64)
    if tee:
        tap.use_tee()
    ctx = FrameContext(3)
    ctx.decision = Decision(0, stage_us=ctx.stage_us)
    tap.bind(ctx, None)
    imgs = [np.random.default_rng(i).integers(0, 256, FRAME, dtype=np.uint8) for i in range(2)]
    todo: queue.Queue[int | None] = queue.Queue()
    done: queue.Queue[int] = queue.Queue()

    def source() -> None:  # the camera's thread: its copy for the recorder
        while (i := todo.get()) is not None:
            tap.tee(imgs[i % 2], i * 33_000_000)
            done.put(i)

    thread = threading.Thread(target=source, daemon=True)
    thread.start()
    new, reused = [], []
    if tee:
        todo.put(0)
    try:
        for i in range(frames):
            if tee:  # handed over during the previous frame period
                done.get(timeout=10)
            # first, the previous frame again (decision and timings only): the first call after the period's sleep
            ctx.seq, ctx.tick_ns = 2 * i, i * 33_000_000 + 1
            drops = tap.drops
            t = time.perf_counter_ns()
            tap.on_frame(ctx)
            dt = (time.perf_counter_ns() - t) / 1e3
            if tap.drops == drops and i:
                reused.append(dt)
            ctx.seq, ctx.tick_ns, ctx.capture_ns, ctx.frame = 2 * i + 1, i * 33_000_000 + 2, i * 33_000_000, imgs[i % 2]
            drops = tap.drops
            t = time.perf_counter_ns()
            tap.on_frame(ctx)
            dt = (time.perf_counter_ns() - t) / 1e3
            if tap.drops == drops:
                new.append(dt)
            if tee:
                todo.put(i + 1)  # the camera's next image arrives during this frame period
            time.sleep(0.005)  # a 5 ms frame period gives the writer thread its share
    finally:
        todo.put(None)
        thread.join(10)
        tap.close(60)
    return new, reused, tap


def bench_record(d: Path, frames: int) -> dict[str, float]:
    new, reused, tap = _record_pass(d, frames, tee=True)
    copied, _reused, _tap = _record_pass(d, frames, tee=False)
    return {
        "record_loop_thread_us_per_frame": float(np.median(new)),
        "record_loop_thread_p99_us": float(np.percentile(new, 99)),
        "record_loop_thread_us_per_frame_no_tee": float(np.median(copied)),
        "record_loop_thread_us_per_reused_frame": float(np.median(reused)),
        "record_drops": float(tap.drops),
        "record_frames_timed": float(len(new)),
        "record_images_lost": float(tap.images_lost),
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
    tap.close(120)  # the whole recording written and finished (the default bound is 2 s)
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
    print(f"{'  bare, to_ndarray threads=1':40}{figures['video_bare_threads1_frame_us']:16.1f}"
          f"   source/this {figures['video_source_vs_bare_threads1_time_ratio']:.3f}")  # fmt: skip
    print(f"{'recorder on_frame, new frame, tee':40}{figures['record_loop_thread_us_per_frame']:16.2f}"
          f"   p99 {figures['record_loop_thread_p99_us']:.2f} (target ≤ 5)")  # fmt: skip
    print(f"{'recorder on_frame, new frame, no tee':40}{figures['record_loop_thread_us_per_frame_no_tee']:16.2f}")
    print(f"{'recorder on_frame, reused, 1st after sleep':40}{figures['record_loop_thread_us_per_reused_frame']:16.2f}")
    print(
        f"{'recorder drops, images lost (tee)':40}{figures['record_drops']:16.0f}{figures['record_images_lost']:8.0f}"
    )
    print(f"{'replay (lockstep, small CNN)':40}{figures['replay_frames_per_s']:16.1f} frames/s")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
