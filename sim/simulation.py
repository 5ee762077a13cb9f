"""The lockstep driver: advances the world on a clock and delivers sensor readings with capture timestamps.

:class:`Simulation` owns a :class:`World` and steps it at the scenario's physics rate. After each step it moves the
clock to the world's time (``clock.sleep_until``: a :class:`~edge.loop.clock.LockstepClock` jumps there at once, a
:class:`~edge.loop.clock.MonotonicClock` waits, which paces the run in real time), acts on the timeline (starts and
stops CPU contention, reports harness events) and delivers the readings that are due to the sinks. A sensor at
rate R delivers its k-th reading (k = 1, 2, ...) on the first physics step at or after k / R seconds:

* camera: ``camera_sink(frame, capture_ns)``, frame uint8 (H, W, 3) RGB — unless dropped (``dropout`` fault); while a
  ``frozen`` fault is active the content repeats while ``capture_ns`` advances;
* IMU: ``imu_sink(reading, capture_ns)``, float64 (3,) in :data:`~edge.sim.world.IMU_FIELDS` order (NaN under
  ``nan_imu``); wheel speed: ``wheel_sink(reading, capture_ns)``, float64 (1,) m/s, at the IMU rate;
* events: ``event_sink(entry, "start" | "end", time_ns)`` for collector outages and model swaps.

The arrays handed to sinks belong to the simulation: each sensor has a ring of ``buffers`` arrays, so a value stays
valid until ``buffers - 1`` later readings of the same sensor have been delivered (a slot that keeps the latest
reading by reference is safe with the default of 3). A sink that keeps a value longer must copy it. Capture times are
clock ns: the clock's time when the simulation was created is world time 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from edge.sim.contention import CpuContention
from edge.sim.scenario import Scenario
from edge.sim.timeline import TimelineEntry
from edge.sim.world import World

from edge.loop.clock import Clock, LockstepClock

__all__ = ["EventSink", "SensorSink", "Simulation"]

SensorSink = Callable[[np.ndarray, int], None]
EventSink = Callable[[TimelineEntry, str, int], None]


def _period_ns(rate_hz: float) -> int:
    return max(1, round(1e9 / rate_hz))


class Simulation:
    """Drive ``scenario``'s world on ``clock`` (a fresh LockstepClock by default); see the module doc for the sinks."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock | None = None,
        *,
        camera_sink: SensorSink | None = None,
        imu_sink: SensorSink | None = None,
        wheel_sink: SensorSink | None = None,
        event_sink: EventSink | None = None,
        buffers: int = 3,
        start_s_m: float = 0.0,
        contention: bool = True,
    ) -> None:
        if buffers < 1:
            raise ValueError(f"buffers: expected >= 1, got {buffers}")
        spec = scenario.world
        self.scenario = scenario
        self.world = World(spec, scenario.timeline, start_s_m)
        self.clock = clock if clock is not None else LockstepClock()
        self.start_ns = self.clock.now_ns()
        self.camera_sink, self.imu_sink, self.wheel_sink, self.event_sink = (
            camera_sink,
            imu_sink,
            wheel_sink,
            event_sink,
        )
        self.physics_dt_ns = _period_ns(spec.physics_hz)
        self._physics_dt_s = self.physics_dt_ns * 1e-9
        self.camera_period_ns = _period_ns(spec.rate_hz)
        self.imu_period_ns = _period_ns(spec.imu_hz)
        self.duration_ns = round(spec.duration_s * 1e9)
        self.frames = np.zeros((buffers, *self.world.frame_shape), dtype=np.uint8)
        self.imu = np.zeros((buffers, 3), dtype=np.float64)
        self.wheel = np.zeros((buffers, 1), dtype=np.float64)
        self._frozen = np.zeros(self.world.frame_shape, dtype=np.uint8)
        self._frozen_held = False
        self._camera_i = self._imu_i = 0
        self._camera_n = self._imu_n = 1  # the next reading of each sensor is the n-th, due at n periods
        self.frames_delivered = self.frames_dropped = self.frames_frozen = 0
        self.last_frame: np.ndarray | None = None
        timeline = scenario.timeline
        self._dropouts = timeline.of("dropout")
        self._freezes = timeline.of("frozen")
        self._contention_enabled = contention
        self._contention: dict[int, CpuContention] = {}

    @property
    def time_ns(self) -> int:
        """World time (ns since the start)."""
        return self.world.time_ns

    @property
    def done(self) -> bool:
        """The scenario's duration has been simulated."""
        return self.world.time_ns >= self.duration_ns

    def actuate(self, steer_rad: float, speed_mps: float | None = None) -> None:
        """Apply a decision: steering angle (rad, left > 0) and optionally target speed (m/s)."""
        self.world.command(steer_rad, speed_mps)

    def step(self) -> None:
        """One physics step, then the clock, the timeline's transitions and the readings due at the new time."""
        world = self.world
        t0 = world.time_ns
        world.step(self._physics_dt_s)
        t1 = world.time_ns
        self.clock.sleep_until(self.start_ns + t1)
        for t_s, what, entry in self.scenario.timeline.transitions(-1.0 if t0 == 0 else t0 * 1e-9, t1 * 1e-9):
            if entry.kind == "cpu_contention" and self._contention_enabled:
                self._contend(entry, what)
            elif entry.category == "event" and self.event_sink is not None:
                self.event_sink(entry, what, self.start_ns + round(t_s * 1e9))
        while self._imu_n * self.imu_period_ns <= t1:
            self._imu_n += 1
            self._read_imu(self.start_ns + t1)
        while self._camera_n * self.camera_period_ns <= t1:
            self._camera_n += 1
            self._capture(self.start_ns + t1)

    def advance_to(self, t_ns: int) -> None:
        """Step until the next step would pass clock time ``t_ns``."""
        while self.start_ns + self.world.time_ns + self.physics_dt_ns <= t_ns:
            self.step()

    def _contend(self, entry: TimelineEntry, what: str) -> None:
        key = id(entry)
        if what == "start":
            load = self._contention.setdefault(key, CpuContention(entry.params["workers"], entry.params["mode"]))
            load.start()
        elif key in self._contention:
            self._contention.pop(key).stop()

    @property
    def contention_running(self) -> bool:
        return any(c.running for c in self._contention.values())

    def _read_imu(self, capture_ns: int) -> None:
        i = self._imu_i
        self._imu_i = (i + 1) % len(self.imu)
        self.world.read_imu(self.imu[i])
        self.wheel[i, 0] = self.world.read_wheel_speed()
        if self.imu_sink is not None:
            self.imu_sink(self.imu[i], capture_ns)
        if self.wheel_sink is not None:
            self.wheel_sink(self.wheel[i], capture_ns)

    def _capture(self, capture_ns: int) -> None:
        world = self.world
        t = world.t_s
        drop = max((e.intensity(t) * e.params["probability"] for e in self._dropouts), default=0.0)
        if drop > 0.0 and world.fault_rng.random() < drop:
            self.frames_dropped += 1
            return
        frame = self.frames[self._camera_i]
        self._camera_i = (self._camera_i + 1) % len(self.frames)
        if any(e.active(t) for e in self._freezes):
            if not self._frozen_held:  # the frame the camera had when it froze
                if self.last_frame is not None:
                    np.copyto(self._frozen, self.last_frame)
                else:
                    world.render(self._frozen)
                self._frozen_held = True
            np.copyto(frame, self._frozen)
            self.frames_frozen += 1
        else:
            self._frozen_held = False
            world.render(frame)
        self.frames_delivered += 1
        self.last_frame = frame
        if self.camera_sink is not None:
            self.camera_sink(frame, capture_ns)

    def close(self) -> None:
        """Stop any CPU contention still running (waits for the workers)."""
        for load in self._contention.values():
            load.stop()
        self._contention.clear()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
