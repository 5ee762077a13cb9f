"""Kinematic bicycle dynamics: straight line, constant-steer circle, actuator limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edge.sim.vehicle import Vehicle, VehicleSpec, VehicleState

from edge.errors import ConfigError

FAST_STEERING = VehicleSpec(max_steer_rate_rad_s=100.0)


def test_straight_line_at_constant_speed() -> None:
    car = Vehicle(VehicleSpec(), VehicleState(x=1.0, y=2.0, yaw=math.pi / 6, speed=10.0))
    car.command(0.0, 10.0)
    for _ in range(200):
        car.step(0.01)
    st = car.state
    assert (st.x, st.y) == pytest.approx((1.0 + 20.0 * math.cos(math.pi / 6), 2.0 + 20.0 * math.sin(math.pi / 6)))
    assert st.yaw == pytest.approx(math.pi / 6)
    assert st.speed == 10.0


@pytest.mark.parametrize("steer", [0.1, -0.25, 0.5])
def test_constant_steer_traces_a_circle_of_radius_wheelbase_over_tan_steer(steer: float) -> None:
    spec = FAST_STEERING
    car = Vehicle(spec, VehicleState(speed=8.0, steer=steer))
    car.command(steer, 8.0)
    radius = spec.wheelbase_m / math.tan(abs(steer))
    centre = (0.0, math.copysign(radius, steer))  # to the left for a left turn, heading 0 from the origin
    points = []
    for _ in range(int(2 * math.pi * radius / 8.0 / 0.005)):  # one full lap
        car.step(0.005)
        points.append((car.state.x, car.state.y))
    pts = np.array(points)
    assert np.hypot(pts[:, 0] - centre[0], pts[:, 1] - centre[1]) == pytest.approx(radius, rel=1e-9)
    assert np.hypot(*pts[-1]) < 8.0 * 0.005 + 1e-6  # back where it started, within one step
    assert car.yaw_rate == pytest.approx(8.0 / radius * math.copysign(1, steer))


def test_steering_is_rate_and_angle_limited() -> None:
    spec = VehicleSpec(max_steer_rad=0.4, max_steer_rate_rad_s=1.0)
    car = Vehicle(spec, VehicleState(speed=5.0))
    car.command(2.0)
    car.step(0.1)
    assert car.state.steer == pytest.approx(0.1)
    for _ in range(10):
        car.step(0.1)
    assert car.state.steer == pytest.approx(0.4)
    car.command(float("nan"))  # an actuator ignores a non-finite command and holds the last one
    car.step(0.1)
    assert car.state.steer == pytest.approx(0.4)


def test_speed_follows_its_command_within_the_acceleration_limit() -> None:
    spec = VehicleSpec(max_accel_mps2=2.0, speed_gain_per_s=10.0)
    car = Vehicle(spec, VehicleState(speed=0.0))
    car.command(0.0, 10.0)
    car.step(0.5)
    assert car.state.speed == pytest.approx(1.0)  # 2 m/s² for 0.5 s, not the gain's 10 * 10 m/s²
    assert car.state.accel == pytest.approx(2.0)
    for _ in range(100):
        car.step(0.1)
    assert car.state.speed == pytest.approx(10.0, abs=1e-6)


def test_bad_spec_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"vehicle.wheelbase_m: expected a number > 0, got -1"):
        VehicleSpec(wheelbase_m=-1)
