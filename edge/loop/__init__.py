"""The sensor-to-decision loop (scheduler, sensors, pipeline, fallback, hot-swap, shadow) and its clocks.

The clocks import eagerly; the loop's own classes load on first use. The frame record and its flag bits, which the
loop writes and telemetry reads, live below both in :mod:`edge.contracts`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from edge.loop.clock import Clock, LockstepClock, MonotonicClock

_LAZY = {
    "Loop": "edge.loop.runner",
    "Decision": "edge.loop.decision",
    "SensorSlot": "edge.loop.sensors",
    "SensorSync": "edge.loop.sensors",
    "ClassificationPolicy": "edge.loop.policy",
    "RegressionPolicy": "edge.loop.policy",
    "CallablePolicy": "edge.loop.policy",
    "FallbackConfig": "edge.loop.health",
    "CallableSink": "edge.loop.sinks",
    "ZmqDecisionSink": "edge.loop.sinks",
    "LogSink": "edge.loop.sinks",
    "ZmqSensorSource": "edge.loop.zmq_source",
    "PreprocessSpec": "edge.loop.pipeline",
    "Timing": "edge.loop.settings",
    "Inputs": "edge.loop.settings",
    "SwapSettings": "edge.loop.swap",
}

__all__ = ["Clock", "LockstepClock", "MonotonicClock", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edge.loop' has no attribute {name!r}")
