"""ROS 2 decision and health sinks: the loop's decisions as ``geometry_msgs/Twist`` and a JSON ``std_msgs/String``,
its health as ``diagnostic_msgs/DiagnosticArray``, published over DDS from a thread of their own.

The loop thread only calls :meth:`Ros2DecisionSink.deliver`, which copies the decision's fields into a
preallocated ring of ``queue`` records and wakes the publisher thread: no allocation, no lock the publisher holds
for long, no DDS call. A full ring drops the decision and counts it in :attr:`Ros2DecisionSink.dropped`.
The publisher thread writes, with ROS 2's default QoS for commands (reliable, keep last 10, volatile):

* ``cmd_topic`` (default ``/cmd_vel``), regression policies only — ``geometry_msgs/Twist``:
  ``angular.z = command[steering_index] * steering_scale`` (default index 0, scale 1: the lane model's
  ``steering_rad`` as is; for a differential-drive base set the scale that turns it into a yaw rate in rad/s, for
  an Ackermann base, yaw rate = v·tan(δ)/wheelbase),
  ``linear.x = command[speed_index] * speed_scale`` when the model outputs a speed (``speed_index`` >= 0), else the
  constant ``cruise_speed`` (m/s, default 0). Every other field is 0. In SAFE_STOP ``linear.x`` is 0 whatever the
  command (the steering is the configured ``[fallback] safe_command``), so a robot stops.
* ``decision_topic`` (default ``/edge/decision``; ``""``: off), every policy — ``std_msgs/String`` holding one JSON
  object: ``seq``, ``tick_ns`` (loop clock ns), ``action`` (index, -1: none), ``label``, ``command`` (list),
  ``confidence`` (null: none), ``health`` ("OK" | "DEGRADED" | "SAFE_STOP"), ``fallback``, ``flags`` (frame flag
  bits). This is the documented message for classification policies (a label is not a Twist). For detection
  policies it also holds ``detections``: a list, best score first, of ``{"class": int, "label": str, "score":
  float, "box": [x1, y1, x2, y2]}`` with the box in camera-frame pixels (at most the policy's ``max_detections``).
* ``diagnostics_topic`` (default ``/diagnostics``), at ``diagnostics_hz`` (default 1 Hz) —
  ``diagnostic_msgs/DiagnosticArray`` with one status: name ``edge: <name>``, level OK / WARN (DEGRADED) / ERROR
  (SAFE_STOP) / STALE (no decision yet), message the health and its reasons, key-values ``seq``, ``health``,
  ``flags``, ``reasons``, ``fallbacks``, ``published``, ``dropped``, ``errors``. Standard ROS 2 tools
  (``rqt_robot_monitor``, the diagnostic aggregator) read it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from cyclonedds.pub import DataWriter

from edge.contracts import HEALTH_NAMES, Health
from edge.errors import ConfigError
from edge.io.ros2_dds import command_qos, participant, ros2_topic
from edge.io.ros2_msgs import DiagnosticArray, DiagnosticStatus, Header, KeyValue, String, Time, Twist
from edge.loop.decision import Decision
from edge.loop.health import reasons as fault_reasons

__all__ = ["Ros2DecisionSink", "Ros2SinkSettings"]

log = logging.getLogger("edge.io")
_LEVELS = {"OK": DiagnosticStatus.OK, "DEGRADED": DiagnosticStatus.WARN, "SAFE_STOP": DiagnosticStatus.ERROR}


@dataclass(frozen=True)
class Ros2SinkSettings:
    """``[sinks.ros2]`` in device.toml (see the module docstring for the topics and the Twist mapping)."""

    domain_id: int | None = None
    cmd_topic: str = "/cmd_vel"
    decision_topic: str = "/edge/decision"
    diagnostics_topic: str = "/diagnostics"
    diagnostics_hz: float = 1.0
    steering_index: int = 0
    steering_scale: float = 1.0
    speed_index: int = -1
    speed_scale: float = 1.0
    cruise_speed: float = 0.0
    queue: int = 64


class _Ring:
    """``n`` preallocated decision records (written by the loop thread, read by the publisher thread)."""

    def __init__(self, n: int, command_size: int, detections: int = 0) -> None:
        self.n = n
        self.det_count = np.zeros(n, np.int64)
        self.det_boxes = np.zeros((n, detections, 4), np.float32)
        self.det_scores = np.zeros((n, detections), np.float32)
        self.det_classes = np.zeros((n, detections), np.int32)
        self.ints = np.zeros((n, 6), np.int64)  # seq, tick_ns, action, health, flags, fallback
        self.confidence = np.zeros(n, np.float64)
        self.command = np.zeros((n, command_size), np.float64)
        self.labels: list[str] = [""] * n


class Ros2DecisionSink:
    """Publishes decisions and health to ROS 2 (``kind``: the policy kind, "regression" | "classification" |
    "detection"; ``command_size``: the regression command's length; ``detections``/``labels``: a detection policy's
    ``max_detections`` and class names; ``name``: the model name in diagnostics; ``config``: Cyclone DDS XML,
    ``None`` for ``CYCLONEDDS_URI``). Starts its publisher thread at construction."""

    def __init__(
        self,
        kind: str,
        command_size: int,
        settings: Ros2SinkSettings | None = None,
        *,
        name: str = "loop",
        hardware_id: str = "",
        config: str | None = None,
        detections: int = 0,
        labels: tuple[str, ...] = (),
    ) -> None:
        s = settings or Ros2SinkSettings()
        if kind not in ("regression", "classification", "detection"):
            raise ConfigError(
                f"sinks.ros2: expected policy kind 'regression', 'classification' or 'detection', got {kind!r}"
            )
        if kind == "regression":
            for key in ("steering_index", "speed_index"):
                idx = getattr(s, key)
                if idx >= command_size or (key == "steering_index" and idx < 0):
                    raise ConfigError(
                        f"sinks.ros2.{key}: expected an index into the {command_size}-element command, got {idx}"
                    )
        if s.queue < 1 or s.diagnostics_hz <= 0:
            raise ConfigError(
                f"sinks.ros2: expected queue >= 1 and diagnostics_hz > 0, got {s.queue} and {s.diagnostics_hz}"
            )
        self.kind, self.settings, self.name, self.hardware_id = kind, s, name, hardware_id
        self._ring = _Ring(s.queue, command_size, detections)
        self._labels = tuple(labels)
        self._w = 0  # records written (loop thread only)
        self._r = 0  # records published (publisher thread only)
        self.dropped = 0  # decisions the full ring refused (loop thread)
        self.published = 0  # decisions written to DDS (publisher thread)
        self.diagnostics_published = 0
        self.errors = 0
        self._last: dict[str, Any] | None = None  # the newest published decision (publisher thread)
        self._fallbacks = 0
        self._wake = threading.Event()
        self._stopping = False
        self._dp, self._domain = participant(s.domain_id, config)
        self._twist = self._writer(s.cmd_topic, Twist) if kind == "regression" else None
        self._decision = self._writer(s.decision_topic, String) if s.decision_topic else None
        self._diagnostics: DataWriter | None = self._writer(s.diagnostics_topic, DiagnosticArray)
        self._thread = threading.Thread(target=self._publish_loop, name="edge-io ros2 sink", daemon=True)
        self._thread.start()

    def _writer(self, ros_name: str, msg_type: type) -> DataWriter:
        return DataWriter(self._dp, ros2_topic(self._dp, ros_name, msg_type), qos=command_qos())

    @property
    def writers(self) -> dict[str, DataWriter]:
        """The DDS writers by ROS 2 topic (tests wait on their matched subscriptions; empty after close)."""
        s = self.settings
        pairs = (
            (s.cmd_topic, self._twist),
            (s.decision_topic, self._decision),
            (s.diagnostics_topic, self._diagnostics),
        )
        return {topic: w for topic, w in pairs if w is not None}

    # ----------------------------------------------------------------------------------- loop thread

    def deliver(self, d: Decision) -> None:
        """Queue ``d`` for publishing (loop thread; allocation-free; drops and counts when the ring is full)."""
        ring, w = self._ring, self._w
        if w - self._r >= ring.n:
            self.dropped += 1
            return
        i = w % ring.n
        row = ring.ints[i]
        row[0] = d.seq
        row[1] = d.tick_ns
        row[2] = d.action
        row[3] = d.health
        row[4] = d.flags
        row[5] = d.fallback
        ring.confidence[i] = d.confidence
        if ring.command.shape[1]:
            ring.command[i] = d.command
        ring.labels[i] = d.label
        cap = ring.det_boxes.shape[1]
        if cap:
            det = d.detections
            k = min(det.count, cap, det.capacity)
            ring.det_count[i] = k
            if k:
                ring.det_boxes[i, :k] = det.boxes[:k]
                ring.det_scores[i, :k] = det.scores[:k]
                ring.det_classes[i, :k] = det.classes[:k]
        self._w = w + 1
        self._wake.set()

    # ----------------------------------------------------------------------------------- publisher thread

    def _publish_loop(self) -> None:
        period = 1.0 / self.settings.diagnostics_hz
        next_diag = time.monotonic()
        while True:
            self._wake.wait(max(0.0, min(next_diag - time.monotonic(), 0.1)))
            self._wake.clear()
            stopping = self._stopping
            while self._r < self._w:
                self._publish_decision(self._r % self._ring.n)
                self._r += 1
            now = time.monotonic()
            if now >= next_diag or stopping:
                self._publish_diagnostics()
                next_diag = max(next_diag + period, now)
            if stopping:
                return

    def _publish_decision(self, i: int) -> None:
        ring = self._ring
        seq, tick_ns, action, health, flags, fallback = (int(v) for v in ring.ints[i])
        command = ring.command[i].tolist()
        confidence = float(ring.confidence[i])
        self._fallbacks += bool(fallback)
        self._last = {
            "seq": seq,
            "tick_ns": tick_ns,
            "action": action,
            "label": ring.labels[i],
            "command": command,
            "confidence": None if math.isnan(confidence) else confidence,
            "health": HEALTH_NAMES[health],
            "fallback": bool(fallback),
            "flags": flags,
        }
        if ring.det_boxes.shape[1]:
            self._last["detections"] = self._detections(i)
        try:
            if self._twist is not None:
                self._twist.write(self.twist(command, health))
            if self._decision is not None:
                self._decision.write(String(json.dumps(self._last)))
            self.published += 1
        except Exception as exc:
            self._error(f"cannot publish decision {seq}: {exc}")

    def _detections(self, i: int) -> list[dict[str, Any]]:
        ring, labels = self._ring, self._labels
        out = []
        for j in range(int(ring.det_count[i])):
            c = int(ring.det_classes[i, j])
            out.append(
                {
                    "class": c,
                    "label": labels[c] if 0 <= c < len(labels) else str(c),
                    "score": float(ring.det_scores[i, j]),
                    "box": [float(v) for v in ring.det_boxes[i, j]],
                }
            )
        return out

    def twist(self, command: list[float], health: int) -> Twist:
        """The Twist for a regression ``command`` at ``health`` (the mapping in the module docstring)."""
        s, t = self.settings, Twist()
        t.angular.z = command[s.steering_index] * s.steering_scale
        if health != Health.SAFE_STOP:
            t.linear.x = command[s.speed_index] * s.speed_scale if s.speed_index >= 0 else s.cruise_speed
        return t

    def diagnostics(self) -> DiagnosticArray:
        """The health message for the newest published decision."""
        now = time.time_ns()
        last = self._last
        status = DiagnosticStatus(name=f"edge: {self.name}", hardware_id=self.hardware_id)
        counters = [
            KeyValue("fallbacks", str(self._fallbacks)),
            KeyValue("published", str(self.published)),
            KeyValue("dropped", str(self.dropped)),
            KeyValue("errors", str(self.errors)),
        ]
        if last is None:
            status.level, status.message = DiagnosticStatus.STALE, "waiting for the first decision"
        else:
            reasons = fault_reasons(last["flags"])
            status.level = _LEVELS[last["health"]]
            status.message = last["health"] + (f" ({', '.join(reasons)})" if reasons else "")
            counters[:0] = [
                KeyValue("seq", str(last["seq"])),
                KeyValue("health", last["health"]),
                KeyValue("flags", hex(last["flags"])),
                KeyValue("reasons", ",".join(reasons)),
            ]
        status.values = counters
        stamp = Time(sec=now // 1_000_000_000, nanosec=now % 1_000_000_000)
        return DiagnosticArray(header=Header(stamp=stamp), status=[status])

    def _publish_diagnostics(self) -> None:
        if self._diagnostics is None:
            return
        try:
            self._diagnostics.write(self.diagnostics())
            self.diagnostics_published += 1
        except Exception as exc:
            self._error(f"cannot publish diagnostics: {exc}")

    def _error(self, message: str) -> None:
        self.errors += 1
        if self.errors <= 5:
            log.warning("ros2 sink: %s", message)

    def close(self, timeout_s: float = 2.0) -> None:
        """Publish what is queued and a last diagnostics message, stop the thread, release DDS. Idempotent."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("ros2 sink: publisher thread did not stop within %.1f s", timeout_s)
            return
        self._twist = self._decision = self._diagnostics = None  # the DDS entities go with the last reference
        self._dp = self._domain = None
