"""Robot I/O adapters: sensor sources that fill :class:`~edge.loop.sensors.SensorSlot`s on their own threads, and
sinks/taps that take the loop's output to robots and recordings.

The loop does not know which adapter fed a slot: every source only calls ``slot.push(value, capture_ns)``.
Sources share the small interface in :mod:`edge.io.source`. This package sits above ``loop`` (it uses its
``SensorSlot`` and the contracts); the device service (``edge.device``) composes them from ``device.toml``.
"""

from edge.io.source import SensorSource, SourceStats, SourceThread

__all__ = ["SensorSource", "SourceStats", "SourceThread"]
