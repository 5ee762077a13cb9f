"""The sensor-to-decision loop (scheduler, sensors, pipeline, fallback, hot-swap, shadow) and its contracts."""

from __future__ import annotations

from edge.loop.clock import Clock, LockstepClock, MonotonicClock
from edge.loop.frame import FrameContext, FrameTap, Health

__all__ = ["Clock", "FrameContext", "FrameTap", "Health", "LockstepClock", "MonotonicClock"]
