"""[loop] stats_thread: a camera frame's drift statistics on a second thread while the loop thread resizes it.

The statistics must be the same bytes as the one-thread path's, errors must reach the loop thread, and the thread must
stop with the loop (the no_leaked_threads fixture checks every test here)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from conftest import FRAME_SHAPE

from edge import kernels
from edge.errors import ShapeError
from edge.loop.config import parse_config
from edge.loop.settings import Inputs
from edge.loop.stats_thread import FrameStatsThread


def test_the_thread_computes_what_frame_stats_computes(frames) -> None:
    cmap = np.array([2, 1, 0], np.int32)
    helper = FrameStatsThread()
    try:
        for frame in frames:
            expected, got = np.empty((2, 3)), np.full((2, 3), np.nan)
            kernels.frame_stats(frame, cmap, expected)
            helper.start(frame, cmap, got)
            helper.wait()
            np.testing.assert_array_equal(got, expected)
        assert helper.frames == len(frames)
    finally:
        helper.close()


def test_an_error_reaches_the_caller_and_the_thread_goes_on(frames) -> None:
    cmap = np.array([0, 1, 2], np.int32)
    helper = FrameStatsThread()
    try:
        helper.start(frames[0], cmap, np.empty((2, 2)))  # the wrong stats shape
        with pytest.raises(ShapeError, match=r"stats: expected float64 array of shape \(2, 3\)"):
            helper.wait()
        with pytest.raises(RuntimeError, match="in progress"):
            helper.start(frames[1], cmap, np.empty((2, 3)))
            helper.start(frames[1], cmap, np.empty((2, 3)))
        helper.wait()
        assert helper.frames == 1
    finally:
        helper.close()
    with pytest.raises(RuntimeError, match="after close"):
        helper.start(frames[0], cmap, np.empty((2, 3)))


@pytest.mark.parametrize("bgr", [False, True])
def test_a_loop_with_the_stats_thread_records_the_same_frames(v1_model, harness, frames, bgr) -> None:
    """Two lockstep loops on the same frames, one with the thread: the same stats (bytes), flags and actions."""
    order = "BGR" if bgr else "RGB"
    one = harness(v1_model, inputs=Inputs(frame_order=order))
    two = harness(v1_model, inputs=Inputs(frame_order=order, stats_thread=True))
    assert one.loop.stats_thread is None and two.loop.stats_thread is not None
    for frame in frames:
        one.push_step(frame)
        two.push_step(frame)
    n = len(frames)
    assert one.tap.n == two.tap.n == n and two.loop.stats_thread.frames == n
    np.testing.assert_array_equal(two.tap.stats[:n], one.tap.stats[:n])
    np.testing.assert_array_equal(two.tap.flags[:n], one.tap.flags[:n])
    np.testing.assert_array_equal(two.tap.action[:n], one.tap.action[:n])
    assert not np.isnan(two.tap.stats[:n]).any() and two.tap.stats[:n, 1].min() > 0


def test_a_wrong_frame_is_a_fault_with_or_without_the_thread(v1_model, harness, frames) -> None:
    """A frame of the wrong shape fails in the loop thread's kernel call; the thread's frame is waited for, so the
    next good frame runs normally."""
    h = harness(v1_model, inputs=Inputs(stats_thread=True))
    h.push_step(frames[0])
    wrong = np.zeros((FRAME_SHAPE[0], FRAME_SHAPE[1] + 1, 3), np.uint8)
    with pytest.raises(ShapeError):
        h.loop.stage.preprocess(wrong, h.loop.ctx.stats, h.loop.stats_thread)
    h.push_step(frames[1])
    assert (
        h.tap.n == 2 and h.loop.stats_thread.frames == 3
    )  # the wrong frame's statistics ran too (its shape is fine for them)


def test_device_toml_turns_it_on(tmp_path) -> None:
    doc = tomllib.loads(
        '[loop]\nrate_hz = 30\nstats_thread = true\n[model]\npackage = "m.onnx"\n[sensors.camera]\n'
        'shape = [48, 64, 3]\n[policy]\nkind = "classification"\nactions = ["a", "b"]\n'
    )
    assert parse_config(doc, tmp_path / "device.toml").loop.stats_thread is True
