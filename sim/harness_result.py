"""What a closed-loop run produced: the per-frame trace, the counts, the collector's alerts and drift scores, the
scenario's assertions checked against them, and the JSON summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from edge.sim.harness_collector import AlertRecord
from edge.sim.scenario import Scenario

__all__ = ["RunResult", "Trace"]


class Trace:
    """Per-frame arrays, preallocated for ``capacity`` frames (float64 unless noted): ``t_s`` scenario time (s),
    ``x_m``/``y_m`` vehicle centre (m), ``lateral_m`` offset from the lane centre (m, left > 0), ``steer_rad`` the
    loop's command (rad), ``latency_us`` wall time of ``loop.step()`` (µs), ``fallback`` (bool), ``flags`` (int64)."""

    FIELDS = ("t_s", "x_m", "y_m", "lateral_m", "steer_rad", "latency_us")

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.t_s, self.x_m, self.y_m, self.lateral_m, self.steer_rad, self.latency_us = (
            np.zeros(capacity) for _ in self.FIELDS
        )
        self.fallback = np.zeros(capacity, bool)
        self.flags = np.zeros(capacity, np.int64)

    def add(self, world: Any, steer: float, latency_us: float, fallback: bool, overruns: int, flags: int) -> None:
        i = self.n
        if i == len(self.t_s):
            return
        st = world.vehicle.state
        self.t_s[i], self.x_m[i], self.y_m[i] = world.t_s, st.x, st.y
        self.lateral_m[i], self.steer_rad[i], self.latency_us[i] = world.lane.lateral_m, steer, latency_us
        self.fallback[i], self.flags[i] = fallback, flags
        self.n = i + 1

    def view(self, name: str) -> np.ndarray:
        return getattr(self, name)[: self.n]


@dataclass
class RunResult:
    """A run's outcome; :meth:`check` fills ``failures`` from the scenario's assertions."""

    scenario: Scenario
    trace: Trace
    max_lateral_m: float = 0.0
    lane_departures: int = 0
    deadline_misses: int = 0
    overruns: int = 0
    model_errors: int = 0
    frames_dropped: int = 0
    frames_frozen: int = 0
    model_version: str = ""
    swaps: list[str] = field(default_factory=list)
    swap_states: list[str] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    dashboard: str | None = None
    collector_endpoint: str = ""
    collector: Any = None
    external_collector: bool = False
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def rms_lateral_m(self) -> float:
        lat = self.trace.view("lateral_m")
        return float(np.sqrt(np.mean(lat**2))) if len(lat) else math.nan

    def first_alert(self, kind: str = "drift") -> AlertRecord | None:
        hits = [a for a in self.alerts if a.kind == kind]
        return min(hits, key=lambda a: a.t_s) if hits else None

    def check(self) -> list[str]:
        """The scenario's assertions against this run; each failure says what was expected and what happened."""
        a = self.scenario.assertions
        out: list[str] = []
        if a.max_lateral_error_m is not None and self.max_lateral_m > a.max_lateral_error_m:
            out.append(f"max lateral error: expected <= {a.max_lateral_error_m} m, got {self.max_lateral_m:.3f} m")
        if a.max_lane_departures is not None and self.lane_departures > a.max_lane_departures:
            out.append(f"lane departures: expected <= {a.max_lane_departures}, got {self.lane_departures}")
        if self.external_collector and (a.expect_alerts or a.no_alert):
            out.append(
                "alerts: expected the collector's alerts to check, got an external collector (--endpoint) whose "
                "alerts this run cannot see; run without --endpoint to check them"
            )
            self.failures = out
            return out
        for e in a.expect_alerts:
            hits = [x for x in self.alerts if x.kind == e.kind and (e.feature is None or x.feature == e.feature)]
            ok = [x for x in hits if e.after_s <= x.t_s <= e.by_s]
            if not ok:
                seen = ", ".join(f"{x.metric}/{x.feature} at {x.t_s:.1f} s" for x in hits) or "none"
                what = f"{e.kind}{'/' + e.feature if e.feature else ''}"
                out.append(f"alert {what}: expected one between {e.after_s} s and {e.by_s} s, got {seen}")
        if a.no_alert and self.alerts:
            seen = ", ".join(f"{x.kind} {x.metric}/{x.feature} at {x.t_s:.1f} s" for x in self.alerts)
            out.append(f"no alert: expected none, got {seen}")
        self.failures = out
        return out

    def summary(self) -> dict[str, Any]:
        """The JSON summary (times in s, distances in m, latencies in µs)."""
        lat = self.trace.view("latency_us")
        first = self.first_alert()
        return {
            "scenario": self.scenario.name,
            "passed": self.passed,
            "failures": list(self.failures),
            "frames": int(self.trace.n),
            "duration_s": self.scenario.world.duration_s,
            "wall_s": round(self.wall_s, 3),
            "max_lateral_error_m": round(self.max_lateral_m, 4),
            "rms_lateral_error_m": round(self.rms_lateral_m, 4),
            "lane_departures": self.lane_departures,
            "deadline_misses": self.deadline_misses,
            "overruns": self.overruns,
            "fallback_frames": int(self.trace.view("fallback").sum()),
            "model_errors": self.model_errors,
            "frames_dropped": self.frames_dropped,
            "frames_frozen": self.frames_frozen,
            "model_version": self.model_version,
            "swaps": list(self.swap_states),
            "latency_us": {
                "p50": float(np.percentile(lat, 50)) if len(lat) else None,
                "p99": float(np.percentile(lat, 99)) if len(lat) else None,
                "max": float(lat.max()) if len(lat) else None,
            },
            "first_drift_alert_s": None if first is None else round(first.t_s, 3),
            "alerts": [x.to_json() for x in self.alerts],
            "events": [{"t_s": round(t, 3), "event": e} for t, e in self.events],
            "dashboard": self.dashboard,
        }
