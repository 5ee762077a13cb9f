"""The simulated world: the track, the vehicle on it, its camera, IMU and wheel-speed sensor, and the timeline's
effects and sensor faults; advanced by :meth:`World.step` at whatever fixed step the caller chooses.

Deterministic from ``WorldSpec.seed``: the camera noise, IMU noise, wheel-speed noise and frame dropouts each draw
from their own stream spawned from the seed, so adding a sensor reading does not shift another sensor's noise.
"""

from __future__ import annotations

import math

import numpy as np
from edge.sim.camera import CameraGeometry, SceneRenderer
from edge.sim.effects import Environment, ImageEffects
from edge.sim.scenario import WorldSpec
from edge.sim.timeline import Timeline
from edge.sim.track import LanePoint, track_for
from edge.sim.vehicle import Vehicle, VehicleState

from edge.errors import ShapeError

__all__ = ["IMU_FIELDS", "World"]

IMU_FIELDS = ("yaw_rate_rad_s", "lateral_accel_mps2", "longitudinal_accel_mps2")
GYRO_SIGMA = 0.005  # rad/s
ACCEL_SIGMA = 0.05  # m/s²
WHEEL_SIGMA = 0.03  # m/s


class World:
    """Track + vehicle + sensors + timeline. Time is integer ns from 0 (``time_ns``).

    The vehicle starts on the centreline at ``start_s_m`` along the track, heading along it, at the scenario speed.
    Lane keeping is judged at the vehicle's centre (midway between the axles): ``lane`` is its current
    :class:`LanePoint`, ``max_abs_lateral_m`` the worst offset so far, ``lane_departures`` the number of times a
    wheel crossed a lane line (|offset| > (lane width - vehicle width) / 2).
    """

    def __init__(self, spec: WorldSpec, timeline: Timeline | None = None, start_s_m: float = 0.0) -> None:
        self.spec = spec
        self.timeline = timeline if timeline is not None else Timeline(())
        self.track, self.field = track_for(spec.track)
        x, y, heading, _ = self.track.point_at(start_s_m)
        back = spec.vehicle.wheelbase_m / 2  # put the vehicle's centre on the centreline
        state = VehicleState(x - back * math.cos(heading), y - back * math.sin(heading), heading, spec.speed_mps)
        self.vehicle = Vehicle(spec.vehicle, state)
        seeds = np.random.SeedSequence(spec.seed).spawn(4)
        self.camera_rng, self.imu_rng, self.wheel_rng, self.fault_rng = (np.random.default_rng(s) for s in seeds)
        self.geometry = CameraGeometry(spec.camera)
        self.scene = SceneRenderer(self.geometry, self.track, self.field)
        self.environment = Environment(self.timeline)
        self.effects = ImageEffects(self.geometry, self.environment, self.camera_rng, spec.camera.noise_sigma)
        self._scene = np.empty((spec.camera.height, spec.camera.width, 3), dtype=np.float32)
        self._nan_imu = self.timeline.of("nan_imu")
        self.time_ns = 0
        self.distance_m = 0.0
        self.max_abs_lateral_m = 0.0
        self.lane_departures = 0
        self._departed = False
        self._departure_limit = (self.track.lane_width_m - spec.vehicle.width_m) / 2
        self.lane = self._measure()

    @property
    def t_s(self) -> float:
        return self.time_ns * 1e-9

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.spec.camera.height, self.spec.camera.width, 3)

    def command(self, steer_rad: float, speed_mps: float | None = None) -> None:
        """Set the actuators: steering angle (rad, left > 0) and optionally target speed (m/s)."""
        self.vehicle.command(steer_rad, speed_mps)

    def step(self, dt_s: float) -> None:
        """Advance the world by ``dt_s`` seconds (the vehicle integrates exactly over the step)."""
        self.vehicle.step(dt_s)
        self.time_ns += round(dt_s * 1e9)
        self.distance_m += self.vehicle.state.speed * dt_s
        self.lane = self._measure()

    def _measure(self) -> LanePoint:
        cx, cy = self.vehicle.point_ahead(self.spec.vehicle.wheelbase_m / 2)
        lane = self.track.locate(cx, cy)
        off = abs(lane.lateral_m)
        self.max_abs_lateral_m = max(self.max_abs_lateral_m, off)
        departed = off > self._departure_limit
        if departed and not self._departed:
            self.lane_departures += 1
        self._departed = departed
        return lane

    @property
    def heading_error_rad(self) -> float:
        """Vehicle yaw minus the centreline heading at the vehicle's centre, wrapped to [-pi, pi) (rad)."""
        return (self.vehicle.state.yaw - self.lane.heading_rad + math.pi) % (2 * math.pi) - math.pi

    def render(self, out: np.ndarray) -> None:
        """The camera frame at the current time, effects applied, into ``out`` (uint8 (H, W, 3) RGB, caller-owned)."""
        if out.shape != self.frame_shape or out.dtype != np.uint8:
            raise ShapeError(f"render: expected a uint8 array {self.frame_shape}, got {out.dtype} {out.shape}")
        st = self.vehicle.state
        self.scene.render(st.x, st.y, st.yaw, self._scene)
        self.effects.apply(self._scene, self.environment.update(self.t_s), out)

    def read_imu(self, out: np.ndarray) -> None:
        """Yaw rate (rad/s), lateral and longitudinal acceleration (m/s²) with noise, into ``out`` (float64 (3,),
        caller-owned, in :data:`IMU_FIELDS` order); all NaN while a ``nan_imu`` fault is active."""
        t = self.t_s
        if any(e.active(t) for e in self._nan_imu):
            out.fill(math.nan)
            return
        rate = self.vehicle.yaw_rate
        st = self.vehicle.state
        rng = self.imu_rng
        out[0] = rate + GYRO_SIGMA * rng.standard_normal()
        out[1] = st.speed * rate + ACCEL_SIGMA * rng.standard_normal()
        out[2] = st.accel + ACCEL_SIGMA * rng.standard_normal()

    def read_wheel_speed(self) -> float:
        """Wheel speed (m/s) with noise, never negative."""
        return max(0.0, self.vehicle.state.speed + WHEEL_SIGMA * float(self.wheel_rng.standard_normal()))
