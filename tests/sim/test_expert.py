"""The expert keeps its lane for a whole lap of every shipped scenario's track (physics only, no camera)."""

from __future__ import annotations

import pytest
from edge.sim.expert import StanleyController
from edge.sim.scenario import WorldSpec, builtin_scenario
from edge.sim.track import TrackSpec
from edge.sim.world import World


def lap(spec: WorldSpec, control_period_s: float = 0.05) -> World:
    """Drive one lap plus 5 %, steering at the loop rate (the world steps at 200 Hz in between)."""
    world = World(spec)
    expert = StanleyController(world.track)
    steps_per_decision = round(control_period_s / 0.005)
    while world.distance_m < 1.05 * world.track.length_m:
        world.command(expert.steer(world.vehicle))
        for _ in range(steps_per_decision):
            world.step(0.005)
    return world


def test_nominal_lap_stays_in_lane() -> None:
    world = lap(builtin_scenario("nominal").world)
    assert world.lane_departures == 0
    assert world.max_abs_lateral_m < 0.3


@pytest.mark.parametrize(("preset", "speed"), [("circuit", 6.0), ("circuit", 14.0), ("oval", 10.0)])
def test_other_speeds_and_tracks(preset: str, speed: float) -> None:
    world = lap(WorldSpec(speed_mps=speed, track=TrackSpec(preset=preset)))
    assert world.lane_departures == 0
    assert world.max_abs_lateral_m < 0.3


def test_without_steering_the_car_leaves_the_lane() -> None:
    world = World(WorldSpec())
    for _ in range(2000):  # 10 s straight ahead: the first corner comes after 50 m
        world.step(0.005)
    assert world.lane_departures == 1
    assert world.max_abs_lateral_m > 5.0
