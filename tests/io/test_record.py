"""The MCAP recorder (a FrameTap: bounded ring on the loop thread, drops counted, a writer thread, rotation) read
back with the mcap reader; replay of a recording through the same Loop in lockstep gives the recorded decisions;
the mcap source plays a recording into a slot."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from io_media import H, W, device_toml, index_of, pattern
from mcap.reader import make_reader

from edge.contracts import STAGES, FrameContext
from edge.device.service import build_service
from edge.errors import ConfigError
from edge.io.record import RecordingTap, segments
from edge.io.replay import McapSource, Recording, ReplayDriver, compare_decisions
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config
from edge.loop.decision import Decision
from edge.loop.sensors import SensorSlot

PERIOD_NS = 10_000_000


def frame_context(command_size: int = 2) -> FrameContext:
    ctx = FrameContext(3)
    ctx.decision = Decision(command_size, stage_us=ctx.stage_us)
    ctx.model_version = "cnn@1.0"
    return ctx


def feed(tap: RecordingTap, ctx: FrameContext, frames: list[np.ndarray], n: int, start: int = 0) -> None:
    """``n`` frames; a new capture every other frame (the loop at twice the camera's rate)."""
    for i in range(start, start + n):
        ctx.seq, ctx.tick_ns = i, (i + 1) * PERIOD_NS
        ctx.frame = frames[(i // 2) % len(frames)]
        ctx.capture_ns = (i // 2 + 1) * 2 * PERIOD_NS - PERIOD_NS // 2
        ctx.decision.action, ctx.decision.label = i % 10, f"a{i % 10}"
        ctx.decision.command[:] = (i, -i)[: ctx.decision.command.size]
        ctx.stage_us[:] = np.arange(len(STAGES)) + i
        tap.on_frame(ctx)


def read_all(path: Path) -> dict[str, list[tuple[str, int, dict]]]:
    """topic → [(schema name, log time, message)] over every file of the recording."""
    out: dict[str, list[tuple[str, int, dict]]] = {}
    for file in segments(path):
        with file.open("rb") as f:
            for schema, channel, m in make_reader(f).iter_messages(log_time_order=False):
                assert channel.message_encoding == "json" and schema.encoding == "jsonschema"
                out.setdefault(channel.topic, []).append((schema.name, m.log_time, json.loads(m.data)))
    return out


def test_recording_reads_back_with_foxglove_schemas(tmp_path: Path) -> None:
    frames = [pattern(i) for i in range(8)]
    tap = RecordingTap(tmp_path / "run.mcap", "camera", (H, W, 3), command_size=2, queue_frames=512)
    ctx = frame_context()
    tap.bind(ctx, None)
    feed(tap, ctx, frames, 40)
    tap.on_event("health", {"from": "OK", "to": "DEGRADED", "reasons": ["stale"]})
    tap.close()
    assert tap.drops == 0 and tap.recorded == 40 and tap.errors == 0
    got = read_all(tmp_path / "run.mcap")
    images = got["/edge/camera/image"]
    assert len(images) == 20 and {s for s, _, _ in images} == {"foxglove.RawImage"}
    import base64

    for k, (_s, log_time, m) in enumerate(images):
        assert (m["width"], m["height"], m["encoding"], m["step"]) == (W, H, "rgb8", W * 3)
        raw = np.frombuffer(base64.b64decode(m["data"]), np.uint8).reshape(H, W, 3)
        assert np.array_equal(raw, frames[k % 8]) and log_time == (2 * k + 1) * PERIOD_NS
        cap = m["timestamp"]["sec"] * 1_000_000_000 + m["timestamp"]["nsec"]
        assert cap == (k + 1) * 2 * PERIOD_NS - PERIOD_NS // 2
    decisions = [m for _s, _t, m in got["/edge/decision"]]
    assert [d["seq"] for d in decisions] == list(range(40))
    assert (
        decisions[7]["label"] == "a7" and decisions[7]["command"] == [7.0, -7.0] and decisions[7]["model"] == "cnn@1.0"
    )
    timings = [m for s, _t, m in got["/edge/timing"] if s == "edge.StageTimings"]
    assert timings[3]["total"] == 3 + len(STAGES) - 1 and len(timings) == 40
    (event,) = [m for _s, _t, m in got["/edge/health"]]
    assert event["kind"] == "health" and event["fields"]["to"] == "DEGRADED"


def test_a_full_ring_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    tap = RecordingTap(tmp_path / "run.mcap", "camera", (H, W, 3), queue_frames=4)
    ctx = frame_context(0)
    tap.bind(ctx, None)
    release, writing = threading.Event(), threading.Event()
    write = tap._writer.write

    def slow_write(*args):
        writing.set()
        release.wait(10)
        write(*args)

    tap._writer.write = slow_write
    feed(tap, ctx, [pattern(0)], 1)
    assert writing.wait(10)  # the writer holds entry 0
    feed(tap, ctx, [pattern(0)], 9, start=1)
    assert tap.drops == 6  # entries 0..3 handed over, frames 4..9 dropped; on_frame never waited
    release.set()
    tap.close()
    assert tap.recorded == 4


def test_files_rotate_at_max_bytes_and_the_newest_are_kept(tmp_path: Path) -> None:
    tap = RecordingTap(tmp_path / "run.mcap", "camera", (H, W, 3), max_bytes=100_000, keep=2, queue_frames=512)
    ctx = frame_context(0)
    tap.bind(ctx, None)
    feed(tap, ctx, [pattern(i) for i in range(8)], 200)  # 100 images of ~12 kB: several files
    tap.close()
    files = segments(tmp_path / "run.mcap")
    assert len(tap.files) == 2 and files == tap.files and files[0].name.startswith("run-")
    assert all(f.stat().st_size < 100_000 + 256 * 1024 + 20_000 for f in files)
    seqs = [m["seq"] for _s, _t, m in read_all(tmp_path / "run.mcap")["/edge/decision"]]
    assert seqs == list(range(seqs[0], 200)) and seqs[0] > 0  # the oldest file was deleted


def test_on_frame_allocates_nothing_in_steady_state(tmp_path: Path) -> None:
    tap = RecordingTap(tmp_path / "run.mcap", "camera", (H, W, 3), command_size=2, queue_frames=8)
    ctx = frame_context()
    tap.bind(ctx, None)
    frames = [pattern(i) for i in range(4)]
    try:
        feed(tap, ctx, frames, 300)  # warm up
        tracemalloc.start(5)
        try:
            before = tracemalloc.take_snapshot()
            feed(tap, ctx, frames, 5000, start=300)  # the writer keeps up or drops: either way, nothing allocated
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    finally:
        tap.close()
    only = [tracemalloc.Filter(True, "*/edge/io/record.py")]
    diff = after.filter_traces(only).compare_to(before.filter_traces(only), "lineno")
    # the on_frame lines only (the writer thread's json/base64 work is traced too, and is not the loop's)
    on_frame_lines = range(*_lines_of(RecordingTap.on_frame))
    growth = sum(s.size_diff for s in diff if s.traceback[0].lineno in on_frame_lines)
    assert growth < 1024, f"on_frame grew by {growth} bytes over 5000 frames"
    assert tap.recorded + tap.drops == 5300


def _lines_of(fn) -> tuple[int, int]:
    import inspect

    src, first = inspect.getsourcelines(fn)
    return first, first + len(src)


def test_bad_recordings_and_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"recording .*absent.mcap: expected an MCAP file"):
        Recording(tmp_path / "absent.mcap", "camera")
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 50)
    with pytest.raises(ConfigError, match=r"bad.mcap: expected a readable MCAP file"):
        list(Recording(bad, "camera").frames())
    with pytest.raises(ConfigError, match=r"expected a \(H, W, 3\) primary sensor"):
        RecordingTap(tmp_path / "x.mcap", "speed", (1,))
    with pytest.raises(ConfigError, match="expected a file in an existing folder"):
        RecordingTap(tmp_path / "no" / "x.mcap", "camera", (H, W, 3))


RECORD = '\n[record]\npath = "rec.mcap"\nqueue_frames = 128\n'  # every frame kept, however slow the writer


def _recorded_run(tmp_path: Path, package: Path) -> tuple[Path, list[dict]]:
    """A lockstep loop from device.toml with [record], fed by pushes: new frames, reused frames and a gap that
    makes the sensor stale (fallback, safe stop, recovery)."""
    cfg_path = tmp_path / "device.toml"
    cfg_path.write_text(device_toml(package, 'source = "push"\nstale_ms = 25', extra=RECORD))
    clock = LockstepClock(1_000_000_000)
    service = build_service(load_config(cfg_path), clock=clock)
    live = []
    try:
        loop, slot = service.loop, service.loop.slot("camera")
        for i in range(60):
            if i % 3 != 2 and not 20 <= i < 30:  # every third frame reuses; frames 20..29: nothing new (stale)
                slot.push(pattern(i), clock.now_ns())
            live.append(loop.step().snapshot())
    finally:
        service.close()
    return tmp_path / "rec.mcap", live


def test_replay_in_lockstep_gives_the_recorded_decisions(tmp_path: Path, model_package: Path) -> None:
    rec, live = _recorded_run(tmp_path, model_package)
    recorded = Recording(rec, "camera").decisions()
    keys = ("seq", "tick_ns", "action", "label", "command", "health", "flags", "fallback")
    assert [{k: d[k] for k in keys} for d in recorded] == [{k: d[k] for k in keys} for d in live]
    assert {d["health"] for d in recorded} >= {"OK", "SAFE_STOP"} and len({d["label"] for d in recorded}) > 1
    cfg_path = tmp_path / "replay.toml"
    cfg_path.write_text(device_toml(model_package, 'source = "push"\nstale_ms = 25'))
    clock = LockstepClock()
    service = build_service(load_config(cfg_path), clock=clock)
    try:
        replayed = ReplayDriver(service.loop, clock, Recording(rec, "camera")).run()
    finally:
        service.close()
    assert [{k: d[k] for k in keys} for d in replayed] == [{k: d[k] for k in keys} for d in recorded]
    diff = compare_decisions(recorded, replayed)
    assert (diff.frames, diff.agreement, diff.first_difference) == (60, 1.0, -1)
    conf = [(d["confidence"], r["confidence"]) for d, r in zip(replayed, recorded, strict=True)]
    assert all((r is None and np.isnan(d)) or d == r for d, r in conf), conf


def test_mcap_source_plays_the_recorded_frames_into_a_slot(tmp_path: Path, model_package: Path) -> None:
    rec, _live = _recorded_run(tmp_path, model_package)
    expected = [index_of(f) for _t, _c, f in Recording(rec, "camera").frames() if f is not None]
    slot = SensorSlot("camera", (H, W, 3))
    src = McapSource(slot, rec, rate="as_fast_as_loop")
    src.start()
    got, seen = [], 0
    deadline = time.monotonic() + 20
    try:
        while len(got) < len(expected) and time.monotonic() < deadline:
            if slot.seq == seen:
                time.sleep(0.0002)
                continue
            seen = slot.seq
            got.append(index_of(slot.latest()))
        assert src.wait(20)
    finally:
        src.close()
    assert got == expected and src.stats.delivered == len(expected)
    with pytest.raises(ConfigError, match=r"expected images of shape \(24, 32, 3\)"):
        McapSource(SensorSlot("camera", (24, 32, 3)), rec).start()


def test_compare_decisions_reports_agreement_and_command_differences() -> None:
    rec = [{"seq": i, "action": -1, "fallback": False, "health": "OK", "command": [0.1 * i]} for i in range(4)]
    rep = [{**d, "command": [d["command"][0] + (0.3 if d["seq"] == 2 else 0.0)]} for d in rec]
    rep[3] = {**rep[3], "fallback": True}
    diff = compare_decisions(rec, rep, tolerance=0.01)
    assert diff.frames == 4 and diff.agreement == 0.5 and diff.first_difference == 2
    assert diff.max_command_diff == pytest.approx(0.3) and diff.rms_command_diff == pytest.approx(0.15)


def test_with_a_tee_images_come_from_the_source_thread_and_lost_ones_are_counted(tmp_path: Path) -> None:
    tap = RecordingTap(tmp_path / "run.mcap", "camera", (H, W, 3), queue_frames=64)
    tap.use_tee()
    ctx = frame_context(0)
    tap.bind(ctx, None)
    views = [np.zeros((H, W, 3), np.uint8) for _ in range(2)]  # what the loop sees: not the teed images
    for i in range(10):
        cap = 1000 + i
        if i != 4:  # image 4 reached the slot but not the tee (as if overwritten before the writer took it)
            tap.tee(pattern(i), cap)
        ctx.seq, ctx.tick_ns, ctx.capture_ns, ctx.frame = i, (i + 1) * PERIOD_NS, cap, views[i % 2]
        tap.on_frame(ctx)
    tap.close()
    images = read_all(tmp_path / "run.mcap")["/edge/camera/image"]
    import base64

    got = [index_of(np.frombuffer(base64.b64decode(m["data"]), np.uint8).reshape(H, W, 3)) for _s, _t, m in images]
    assert got == [0, 1, 2, 3, 5, 6, 7, 8, 9] and tap.images_lost == 1 and tap.recorded == 10
