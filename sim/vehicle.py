"""Kinematic bicycle model of the vehicle, integrated exactly over a fixed step.

The reference point is the centre of the rear axle: ``x' = v cos(yaw)``, ``y' = v sin(yaw)``,
``yaw' = v tan(steer) / wheelbase``. Over one step the steering angle and the speed's rate of change are held, so
the path is an exact circular arc (a constant steer traces a circle of radius ``wheelbase / tan(steer)``). The
steering actuator is limited in angle and rate; the speed follows its command through a first-order response
limited in acceleration and braking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.errors import ConfigError

__all__ = ["Vehicle", "VehicleSpec", "VehicleState"]


@dataclass(frozen=True)
class VehicleSpec:
    """Geometry (m) and actuator limits (rad, rad/s, m/s², 1/s) of the vehicle."""

    wheelbase_m: float = 2.7
    width_m: float = 1.8
    max_steer_rad: float = 0.55
    max_steer_rate_rad_s: float = 1.2
    max_accel_mps2: float = 3.0
    max_decel_mps2: float = 6.0
    speed_gain_per_s: float = 1.5

    def __post_init__(self) -> None:
        for name in ("wheelbase_m", "width_m", "max_steer_rad", "max_steer_rate_rad_s", "max_accel_mps2"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ConfigError(f"vehicle.{name}: expected a number > 0, got {value!r}")


@dataclass
class VehicleState:
    """Pose of the rear axle (m, m, rad), speed (m/s), actual steering angle (rad) and the last step's
    longitudinal acceleration (m/s²)."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    speed: float = 0.0
    steer: float = 0.0
    accel: float = 0.0


class Vehicle:
    """The bicycle model: set commands with :meth:`command`, advance with :meth:`step`."""

    def __init__(self, spec: VehicleSpec, state: VehicleState | None = None) -> None:
        self.spec = spec
        self.state = state if state is not None else VehicleState()
        self.steer_command = self.state.steer
        self.speed_command = self.state.speed

    def command(self, steer_rad: float, speed_mps: float | None = None) -> None:
        """Set the steering angle (rad, left > 0; clamped to the limit) and optionally the target speed (m/s).

        A non-finite command is ignored (the previous one is held), as an actuator would."""
        if math.isfinite(steer_rad):
            limit = self.spec.max_steer_rad
            self.steer_command = min(max(float(steer_rad), -limit), limit)
        if speed_mps is not None and math.isfinite(speed_mps):
            self.speed_command = max(float(speed_mps), 0.0)

    def step(self, dt_s: float) -> None:
        """Advance by ``dt_s`` seconds."""
        st, spec = self.state, self.spec
        max_delta = spec.max_steer_rate_rad_s * dt_s
        st.steer += min(max(self.steer_command - st.steer, -max_delta), max_delta)
        accel = spec.speed_gain_per_s * (self.speed_command - st.speed)
        accel = min(max(accel, -spec.max_decel_mps2), spec.max_accel_mps2)
        v0 = st.speed
        v1 = max(v0 + accel * dt_s, 0.0)
        st.accel = (v1 - v0) / dt_s if dt_s > 0 else 0.0
        distance = 0.5 * (v0 + v1) * dt_s
        curvature = math.tan(st.steer) / spec.wheelbase_m
        dyaw = curvature * distance
        if abs(dyaw) < 1e-9:
            st.x += distance * math.cos(st.yaw + 0.5 * dyaw)
            st.y += distance * math.sin(st.yaw + 0.5 * dyaw)
        else:
            st.x += (math.sin(st.yaw + dyaw) - math.sin(st.yaw)) / curvature
            st.y -= (math.cos(st.yaw + dyaw) - math.cos(st.yaw)) / curvature
        st.yaw = (st.yaw + dyaw) % (2 * math.pi)
        st.speed = v1

    @property
    def yaw_rate(self) -> float:
        """rad/s at the current speed and steering angle."""
        return self.state.speed * math.tan(self.state.steer) / self.spec.wheelbase_m

    def point_ahead(self, distance_m: float) -> tuple[float, float]:
        """World (x, y) of the point ``distance_m`` ahead of the rear axle on the vehicle's axis."""
        st = self.state
        return st.x + distance_m * math.cos(st.yaw), st.y + distance_m * math.sin(st.yaw)
