"""The video source through a real SensorSlot: frames, order, timestamps from the stream's pts, looping, seeded
drops, image folders; a missing or corrupt input is a ConfigError naming it; the camera's option mapping and its
missing-device error (no camera on CI)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest
from io_media import FRAMES, H, W, index_of, pattern

from edge.errors import ConfigError, SensorFault
from edge.io.camera import CameraSource, v4l2_options
from edge.io.source import SensorSource
from edge.io.video import VideoSource
from edge.loop.clock import MonotonicClock
from edge.loop.sensors import SensorSlot

TIMEOUT_S = 20.0


def consume(src: VideoSource, slot: SensorSlot, n: int) -> list[tuple[int, int]]:
    """Act as the loop: read each new value of ``slot`` until ``n`` were read or the source ended; returns
    (frame index, capture_ns) per value read."""
    got: list[tuple[int, int]] = []
    seen = 0
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < n and time.monotonic() < deadline:
        if slot.seq == seen:
            if not src.running and slot.seq == seen:
                break
            time.sleep(0.0002)
            continue
        seen = slot.seq
        value = slot.latest()
        got.append((index_of(value), slot.capture_ns))
    return got


@pytest.mark.parametrize("kind", ["h264_mp4", "mpeg4_avi", "ffv1_mkv"])
def test_every_frame_in_order_as_fast_as_the_loop_reads(videos: dict[str, Path], kind: str) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, videos[kind], rate="as_fast_as_loop")
    assert isinstance(src, SensorSource)
    ended = []
    src.on_end = lambda: ended.append(True)
    src.start()
    try:
        got = consume(src, slot, FRAMES + 5)
        assert src.wait(TIMEOUT_S)
    finally:
        src.close()
    assert [i for i, _ in got] == list(range(FRAMES))
    caps = [c for _, c in got]
    assert caps == sorted(set(caps))
    assert src.stats.delivered == FRAMES and src.stats.dropped == 0 and src.stats.errors == 0
    assert src.media_ns == (FRAMES - 1) * 10_000_000  # 100 fps: the stream's own time of the last frame
    assert ended == [True]


def test_lossless_frames_arrive_exact_and_scaled_to_the_slot(videos: dict[str, Path]) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, videos["ffv1_mkv"], rate="as_fast_as_loop")
    src.start()
    try:
        assert consume(src, slot, 1)[0][0] == 0
        first = slot.value.copy()
    finally:
        src.close()
    assert np.abs(first.astype(int) - pattern(0)).max() <= 2  # FFV1 yuv444p: lossless up to RGB↔YUV rounding
    small = SensorSlot("camera", (H // 2, W // 2, 3))
    src = VideoSource(small, videos["ffv1_mkv"], rate="as_fast_as_loop", channel_order="BGR")
    src.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while small.seq == 0 and time.monotonic() < deadline:
            time.sleep(0.0002)
        row = small.latest()[H // 3]
    finally:
        src.close()
    assert row.shape == (W // 2, 3)
    assert row[0, 2] < 30 and row[-1, 2] > 220  # BGR: the red ramp (left dark, right bright) is channel 2


def test_native_rate_stamps_are_the_stream_pts_on_the_loop_clock(videos: dict[str, Path]) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    clock = MonotonicClock()
    before = clock.now_ns()
    src = VideoSource(slot, videos["mpeg4_avi"], clock=clock)
    src.start()
    try:
        got = consume(src, slot, FRAMES)
        assert src.wait(TIMEOUT_S)
        after = clock.now_ns()
    finally:
        src.close()
    assert src.stats.delivered == FRAMES
    t0 = got[0][1] - got[0][0] * 10_000_000
    assert before <= t0 <= after
    for i, cap in got:  # whatever frames the reader saw: stamped exactly t0 + pts (100 fps → 10 ms)
        assert cap == t0 + i * 10_000_000
    assert after - before >= (FRAMES - 1) * 10_000_000  # played at its own rate, not faster


def test_loop_starts_over_with_increasing_stamps(videos: dict[str, Path]) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, videos["h264_mp4"], rate="as_fast_as_loop", loop=True)
    src.start()
    try:
        got = consume(src, slot, 2 * FRAMES + 10)
    finally:
        src.close()
    assert [i for i, _ in got] == [*range(FRAMES), *range(FRAMES), *range(10)]
    caps = [c for _, c in got]
    assert caps == sorted(set(caps))
    assert src.loops >= 2


def test_seeded_drops_are_counted_and_repeatable(videos: dict[str, Path]) -> None:
    rng = random.Random(7)
    kept = [i for i in range(FRAMES) if rng.random() >= 0.3]
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, videos["ffv1_mkv"], rate="as_fast_as_loop", drop_probability=0.3, seed=7)
    src.start()
    try:
        got = consume(src, slot, FRAMES)
        assert src.wait(TIMEOUT_S)
    finally:
        src.close()
    assert [i for i, _ in got] == kept
    assert src.stats.dropped == FRAMES - len(kept) > 0
    assert src.stats.delivered == len(kept)


def test_image_folder_sorted_at_its_fps(videos: dict[str, Path]) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, videos["images"], fps=200.0)
    src.start()
    try:
        got = consume(src, slot, 12)
        assert src.wait(TIMEOUT_S)
    finally:
        src.close()
    assert src.stats.delivered == 12
    t0 = got[0][1] - got[0][0] * 5_000_000
    assert [c for _, c in got] == [t0 + i * 5_000_000 for i, _ in got]
    assert [i for i, _ in got] == sorted(i for i, _ in got)


def test_missing_corrupt_and_empty_inputs_name_the_input(tmp_path: Path, videos: dict[str, Path]) -> None:
    slot = SensorSlot("front", (H, W, 3))
    with pytest.raises(ConfigError, match=r"video source 'front' \(.*nope.mp4\).*not found"):
        VideoSource(slot, tmp_path / "nope.mp4").start()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video at all" * 100)
    src = VideoSource(slot, junk)
    with pytest.raises(ConfigError, match=r"junk.mp4.*expected a readable video file"):
        src.start()
    src.close()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="expected PNG/JPEG images in the folder, found none"):
        VideoSource(slot, tmp_path / "empty").start()
    with pytest.raises(ConfigError, match=r"expected a uint8 \(H, W, 3\) sensor shape"):
        VideoSource(SensorSlot("speed", (1,), "float32"), videos["ffv1_mkv"])
    with pytest.raises(ConfigError, match="drop_probability: expected a number in"):
        VideoSource(slot, videos["ffv1_mkv"], drop_probability=1.5)


def test_a_truncated_file_is_counted_not_raised_into_the_loop(tmp_path: Path, videos: dict[str, Path]) -> None:
    data = videos["mpeg4_avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    slot = SensorSlot("camera", (H, W, 3))
    src = VideoSource(slot, cut, rate="as_fast_as_loop")
    src.start()
    try:
        got = consume(src, slot, FRAMES)
        assert src.wait(TIMEOUT_S)
    finally:
        src.close()
    assert 0 < len(got) < FRAMES
    assert [i for i, _ in got] == list(range(len(got)))


def test_camera_options_map_to_ffmpeg_v4l2() -> None:
    assert v4l2_options((640, 480), 30, "mjpeg") == {
        "video_size": "640x480",
        "framerate": "30",
        "input_format": "mjpeg",
    }
    assert v4l2_options() == {}
    assert v4l2_options(fps=7.5) == {"framerate": "7.5"}
    with pytest.raises(ConfigError, match="resolution"):
        v4l2_options((0, 480))


def test_missing_or_non_camera_device_is_a_sensor_fault(tmp_path: Path) -> None:
    slot = SensorSlot("front", (H, W, 3))
    cam = CameraSource(slot, "/dev/video97", resolution=(640, 480), fps=30)
    with pytest.raises(SensorFault, match=r"camera source 'front' \(/dev/video97\).*not found"):
        cam.start()
    cam.close()
    not_a_camera = tmp_path / "video0"
    not_a_camera.write_bytes(b"")
    cam = CameraSource(slot, not_a_camera, pixel_format="yuyv422")
    with pytest.raises(SensorFault, match=r"expected a free V4L2 camera with \{'input_format': 'yuyv422'\}"):
        cam.start()
    cam.close()
