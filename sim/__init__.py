"""``edge.sim``: the simulator world — a vehicle on a closed track with lane markings, a rendered forward camera,
IMU and wheel speed, environment effects and faults on a timeline — driven in lockstep with the loop's clock.

Installed as ``edge.sim`` from the top-level ``sim/`` folder. Modules: :mod:`~edge.sim.track` (geometry, lane field),
:mod:`~edge.sim.vehicle` (bicycle model), :mod:`~edge.sim.camera` (pinhole ground-plane renderer),
:mod:`~edge.sim.effects` (image effects), :mod:`~edge.sim.timeline` and :mod:`~edge.sim.scenario` (TOML),
:mod:`~edge.sim.world`, :mod:`~edge.sim.simulation` (lockstep driver), :mod:`~edge.sim.expert` (Stanley controller),
:mod:`~edge.sim.dataset` (expert driving → frames and steering labels), :mod:`~edge.sim.contention` (busy CPU).
"""

from __future__ import annotations

from edge.sim.scenario import Scenario, builtin_scenario, builtin_scenarios, load_scenario
from edge.sim.simulation import Simulation
from edge.sim.world import World

__all__ = ["Scenario", "Simulation", "World", "builtin_scenario", "builtin_scenarios", "load_scenario"]
