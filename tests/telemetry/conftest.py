"""Fixtures: a real test collector (ROUTER on loopback), taps with their spool under tmp_path, a frame driver on a
LockstepClock, and a guard that fails a test which leaves a telemetry thread running."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_collector import CollectorPeer, wait_for

from edge.contracts import FrameContext
from edge.loop.clock import LockstepClock
from edge.telemetry import TelemetryTap, tap_from_config

OUR_THREADS = ("edge-telemetry", "collector-peer", "Thread-")  # ThreadAuthenticator threads are unnamed


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline_left = [t for t in threading.enumerate() if t not in before and t.name.startswith(OUR_THREADS)]
    for t in deadline_left:
        t.join(5.0)
    leaked = [t.name for t in deadline_left if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def collector() -> Iterator[CollectorPeer]:
    peer = CollectorPeer()
    yield peer
    peer.close(timeout_s=5.0)


@pytest.fixture
def make_tap(tmp_path: Path) -> Iterator[Callable[..., TelemetryTap]]:
    """``make_tap(endpoint, **telemetry_keys)``: a started tap; closed (bounded) at teardown."""
    taps: list[TelemetryTap] = []

    def make(endpoint: str, *, device_id: str = "dev-1", **keys: Any) -> TelemetryTap:
        table = {
            "spool_dir": f"spool-{device_id}",
            "endpoint": endpoint,
            "window_s": 0.1,
            "fsync": "never",
            "heartbeat_s": 0.5,
            **keys,
        }
        tap = tap_from_config(table, device_id=device_id, base_dir=tmp_path)
        taps.append(tap)
        return tap

    yield make
    for tap in taps:
        tap.close(timeout_s=0.2)
        tap.publisher._thread.join(5.0)
        assert not tap.publisher.alive, "publisher thread did not stop"


class FrameDriver:
    """Fills one FrameContext like the loop does, on a LockstepClock (10 ms per frame by default)."""

    def __init__(self, rng: np.random.Generator, channels: int = 3, classes: int = 10, period_ns: int = 10_000_000):
        self.rng = rng
        self.clock = LockstepClock()
        self.ctx = FrameContext(channels)
        self.ctx.outputs = (np.zeros((1, classes), np.float32),)
        self.ctx.model_version = "classifier@1.0.0"
        self.period_ns = period_ns
        self.frame = np.zeros((8, 8, channels), np.uint8)

    def fill(self) -> None:
        ctx = self.ctx
        ctx.tick_ns = self.clock.now_ns()
        ctx.capture_ns = ctx.tick_ns
        ctx.stats[0] = self.rng.uniform(0, 255, ctx.stats.shape[1])
        ctx.stats[1] = self.rng.uniform(0, 100, ctx.stats.shape[1])
        ctx.stage_us[:] = self.rng.uniform(1, 5000, ctx.stage_us.shape[0])
        ctx.outputs[0][...] = self.rng.random(ctx.outputs[0].shape)
        ctx.confidence = float(self.rng.random())
        self.frame[...] = self.rng.integers(0, 256, self.frame.shape)
        ctx.frame = self.frame

    def run(self, tap: TelemetryTap, frames: int, *, pace: bool = True, on_frame: Callable | None = None) -> None:
        """``frames`` frames; with ``pace`` each window boundary waits until the publisher has spooled every
        closed window (so the test never overruns the hand-off queue on a busy machine)."""
        for _ in range(frames):
            self.fill()
            if on_frame is not None:
                on_frame(self.ctx)
            before = tap.drops
            tap.on_frame(self.ctx)
            assert tap.drops == before or not pace, "a window was dropped although the driver paces"
            if pace and tap._ring is not None:
                ring = tap._ring
                wait_for(lambda r=ring: all(s != 2 for s in r.state), 10.0, "the publisher to take closed windows")
            self.ctx.seq += 1
            self.clock.advance(self.period_ns)


@pytest.fixture
def driver(rng: np.random.Generator) -> FrameDriver:
    return FrameDriver(rng)


@pytest.fixture
def make_driver() -> type[FrameDriver]:
    return FrameDriver
