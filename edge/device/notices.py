"""What ``edge run`` tells its operator about its sensors and fallbacks, without flooding the log.

* :func:`sensor_origin` says where a sensor's frames come from (the ZeroMQ endpoint, the file, the camera device,
  the ROS 2 topic); :func:`waiting_lines` is the one line per sensor that ``edge run`` prints before its loop starts
  (``edge run: waiting for sensor 'camera' on zmq connect tcp://127.0.0.1:5555``).
* :class:`FallbackLog` is the service's decision log (it replaces :class:`~edge.loop.sinks.LogSink` there): one
  decision in ``every`` at INFO as before, and fallback decisions at WARNING **at most once per** ``interval_s``
  of loop time (the decisions' ``tick_ns``, so a lockstep clock makes it deterministic), each warning counting the
  fallbacks folded into it. While the primary sensor has delivered nothing yet, the warning says so and names where
  it waits (``still waiting for sensor 'camera' on zmq connect ...: 150 fallback decisions (SAFE_STOP) so far``);
  the first frame is logged once at INFO with the time it took.

:meth:`FallbackLog.deliver` runs on the loop thread: between warnings it only compares two integers and counts.
"""

from __future__ import annotations

import logging

from edge.contracts import HEALTH_NAMES
from edge.errors import ConfigError
from edge.loop.config import DeviceConfig, SensorConfig
from edge.loop.decision import Decision
from edge.loop.sensors import SensorSlot

__all__ = ["FallbackLog", "sensor_origin", "waiting_lines"]

log = logging.getLogger("edge.loop")


def sensor_origin(s: SensorConfig) -> str:
    """Where sensor ``s``'s frames come from, in words (its endpoint, path or topic)."""
    if s.source == "zmq":
        return f"zmq {'bind' if s.bind else 'connect'} {s.endpoint}"
    if s.source == "ros2" and s.ros2 is not None:
        domain = "ROS_DOMAIN_ID or 0" if s.ros2.domain_id is None else s.ros2.domain_id
        return f"ROS 2 topic {s.ros2.topic} ({s.ros2.type}, DDS domain {domain})"
    if s.source == "push":
        return "pushes from the Python API (SensorSlot.push)"
    path = s.options.get("path")
    if s.source == "video":
        return f"video {path} ({s.options.get('rate', 'native')} rate{', looping' if s.options.get('loop') else ''})"
    if s.source in ("camera", "v4l2"):
        return f"camera {path}"
    if s.source == "mcap":
        return f"MCAP recording {path}"
    return f"{s.source} {path}"


def waiting_lines(cfg: DeviceConfig) -> list[str]:
    """``edge run``'s lines before its loop starts: one per sensor, the primary first."""
    ordered = sorted(cfg.sensors, key=lambda s: not s.primary)
    return [
        f"edge run: waiting for {'primary ' if s.primary else ''}sensor {s.name!r} on {sensor_origin(s)}"
        for s in ordered
    ]


class FallbackLog:
    """A decision sink: INFO one decision in ``every`` (0: none), WARNING fallbacks at most once per
    ``interval_s`` (s, loop time) with the count folded in; ``primary``: the primary sensor's slot and ``origin``
    (:func:`sensor_origin`), for the waiting and first-frame messages. ``warnings``/``folded``: counts."""

    def __init__(
        self,
        every: int,
        primary: SensorSlot,
        origin: str,
        *,
        interval_s: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if every < 0:
            raise ConfigError(f"sinks.log_every: expected an integer >= 0, got {every!r}")
        if not interval_s > 0:
            raise ConfigError(f"fallback log interval: expected > 0 s, got {interval_s!r}")
        self.every, self.primary, self.origin = every, primary, origin
        self.interval_ns = int(interval_s * 1e9)
        self.log = logger or log
        self.warnings = 0  # fallback warnings written
        self.folded = 0  # fallbacks since the last warning (not written)
        self._last_warning_ns: int | None = None
        self._first_tick_ns: int | None = None
        self._seen_frame = False

    def deliver(self, d: Decision) -> None:
        if self._first_tick_ns is None:
            self._first_tick_ns = d.tick_ns
        if not self._seen_frame and self.primary.seq > 0:
            self._seen_frame = True
            waited_ms = (d.tick_ns - self._first_tick_ns) / 1e6
            self.log.info("first frame of sensor %r after %.0f ms (%s)", self.primary.name, waited_ms, self.origin)
        if d.fallback:
            last = self._last_warning_ns
            if last is not None and d.tick_ns - last < self.interval_ns:
                self.folded += 1
                return
            self._warn(d)
        elif self.every and d.seq % self.every == 0:
            self.log.info(
                "decision %d: %s %s conf %.3f",
                d.seq,
                d.label or d.command.tolist(),
                HEALTH_NAMES[d.health],
                d.confidence,
            )

    def _warn(self, d: Decision) -> None:
        folded, self.folded = self.folded, 0
        self._last_warning_ns = d.tick_ns
        self.warnings += 1
        health = HEALTH_NAMES[d.health]
        since = f"; {folded} more fallbacks since the last warning" if folded else ""
        every = f" (fallback warnings at most every {self.interval_ns / 1e9:g} s)" if self.warnings == 1 else ""
        if not self._seen_frame:
            self.log.warning(
                "still waiting for sensor %r on %s: decision %d is a %s fallback%s%s",
                self.primary.name,
                self.origin,
                d.seq,
                health,
                since,
                every,
            )
        else:
            self.log.warning(
                "decision %d: %s fallback %s (flags %#x)%s%s", d.seq, health, d.label, d.flags, since, every
            )

    def close(self) -> None:
        if self.folded:
            self.log.warning("%d more fallbacks since the last warning", self.folded)
            self.folded = 0
