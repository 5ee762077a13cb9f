"""Fixtures for the robot I/O tests: videos and image folders made in the test (io_media), a small generated model
package, and a guard that fails a test leaving a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from io_media import make_image_folder, make_video


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``h264_mp4`` (libx264 in MP4), ``mpeg4_avi`` (MPEG-4 part 2 in AVI), ``ffv1_mkv`` (lossless FFV1 in MKV),
    64 frames at 100 fps each; ``images``: a folder of 12 PNG/JPEG frames."""
    d = tmp_path_factory.mktemp("videos")
    return {
        "h264_mp4": make_video(d / "clip.mp4", "libx264"),
        "mpeg4_avi": make_video(d / "clip.avi", "mpeg4"),
        "ffv1_mkv": make_video(d / "clip.mkv", "ffv1", pix_fmt="yuv444p"),
        "images": make_image_folder(d / "images"),
    }


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (after a grace period)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


@pytest.fixture(scope="session")
def model_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated classifier package (U8S8 CNN, 10 classes, 32×32 input; edge.tooling.model_builders)."""
    from edge.models.manage import pack_model
    from edge.tooling.model_builders import u8s8_cnn_onnx

    d = tmp_path_factory.mktemp("io_model")
    return pack_model(u8s8_cnn_onnx(d / "cnn.onnx", seed=0), d / "cnn.tgz", name="cnn", version="1.0")
