"""The loop thread allocates nothing per frame in steady state (tracemalloc over thousands of frames)."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from conftest import FRAME_SHAPE

from edge import kernels
from edge.loop.clock import LockstepClock
from edge.loop.health import FallbackConfig
from edge.loop.policy import ClassificationPolicy, RegressionPolicy
from edge.loop.runner import Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.loop.sinks import CallableSink
from edge.models import load_model

pytestmark = pytest.mark.skipif(
    kernels.BACKEND != "native",
    reason="the NumPy twins (EDGE_PUREPYTHON=1) allocate temporaries by nature; the claim is for the native kernels",
)

WARMUP, FIRST, MORE = 500, 1000, 3000
# Transient objects inside one frame, freed before it ends: the shared kernel argument checks
# (edge/_kernel_checks.py) build a few array views per call. Bounded, and it must not grow with the frame count.
TRANSIENT_BYTES = 8192
# Net jitter that is no allocation per frame: CPython's free lists (tuples, floats) refilling and ints changing size
# at a digit boundary. A leak of even one byte per frame would show as >= 3000 B over MORE frames.
JITTER_BYTES = 256


class Counter:
    """A tap and a sink that only count (a long-lived int is no per-frame allocation of the loop's)."""

    def __init__(self) -> None:
        self.frames = 0
        self.decisions = 0
        self.binds = 0

    def bind(self, ctx, model) -> None:
        self.binds += 1

    def on_frame(self, ctx) -> None:
        self.frames += 1

    def on_event(self, kind, fields) -> None:
        pass

    def close(self) -> None:
        pass

    def deliver(self, d) -> None:
        self.decisions += 1


def _measure(step) -> tuple[int, int, int, int]:
    """(net growth over FIRST frames, peak above start in them, net growth over MORE frames, peak in those)."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(WARMUP):
            step()
        c0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(FIRST):
            step()
        c1, p1 = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(MORE):
            step()
        c2, p2 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    return c1 - c0, p1 - c0, c2 - c1, p2 - c1


def _check(net1: int, peak1: int, net2: int, peak2: int) -> None:
    assert net1 <= JITTER_BYTES and net2 <= JITTER_BYTES, f"kept {net1} B over {FIRST} frames, {net2} B over {MORE}"
    assert peak1 <= TRANSIENT_BYTES, f"transient peak {peak1} B within a frame"
    assert peak2 <= peak1 + JITTER_BYTES, f"the transient peak grew from {peak1} B to {peak2} B with more frames"


def test_classification_frames_allocate_nothing(loop_models, frames) -> None:
    model = load_model(loop_models["v1_pkg"], threads=1)
    clock = LockstepClock()
    camera = SensorSlot("camera", FRAME_SHAPE, stale_ns=25_000_000, frozen_frames=50)
    counter = Counter()
    loop = Loop(
        model,
        ClassificationPolicy([f"a{i}" for i in range(10)]),
        [camera, SensorSlot("speed", (2,), np.float32, lo=-1.0, hi=40.0)],
        clock=clock,
        timing=Timing(rate_hz=100, stage_budgets_us={"preprocess": 5_000.0, "infer": 8_000.0, "total": 9_000.0}),
        fallback=FallbackConfig(safe_action="a0"),
        sinks=[CallableSink(counter.deliver)],
        taps=[counter],
    )
    speed = loop.slot("speed")
    speed_value = np.array([3.0, 0.5], np.float32)
    i = [0]

    def step() -> None:
        k = i[0] = (i[0] + 1) % len(frames)
        t = loop.schedule.next_ns
        camera.push(frames[k], t)
        speed.push(speed_value, t)
        loop.step()

    with loop:
        net1, peak1, net2, peak2 = _measure(step)
        assert counter.frames == WARMUP + FIRST + MORE and loop.ctx.fallbacks == 0 and loop.overruns == 0
    _check(net1, peak1, net2, peak2)


def test_regression_and_fallback_frames_allocate_nothing(loop_models) -> None:
    model = load_model(loop_models["regress"], threads=1)
    clock = LockstepClock()
    camera = SensorSlot("camera", (8, 8, 3), stale_ns=15_000_000)
    loop = Loop(
        model,
        RegressionPolicy(2, lo=-1.0, hi=1.0, max_rate=5.0, rate_hz=100),
        [camera],
        clock=clock,
        timing=Timing(rate_hz=100),
        fallback=FallbackConfig(hold_frames=2, recover_frames=2),
    )
    frame = np.full((8, 8, 3), 200, np.uint8)
    i = [0]

    def step() -> None:  # no capture for 2 frames in 5: the second is stale → hold, then recover
        i[0] += 1
        if i[0] % 5 < 3:
            camera.push(frame, loop.schedule.next_ns)
        loop.step()

    with loop:
        net1, peak1, net2, peak2 = _measure(step)
        assert loop.ctx.fallbacks == (WARMUP + FIRST + MORE) // 5
    _check(net1, peak1, net2, peak2)
