"""Scenario files: TOML → frozen dataclasses, validated, every error naming its key.

A scenario has a ``name``, a ``[world]`` table (seed, duration, loop/camera rate, target speed, and optional
``[world.track]``, ``[world.camera]``, ``[world.vehicle]`` tables), a ``[[timeline]]`` array (see
:mod:`edge.sim.timeline`) and an ``[assertions]`` table that the closed-loop harness checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from edge.sim.camera import CameraSpec
from edge.sim.timeline import Timeline, parse_entry
from edge.sim.track import PRESETS, TrackSpec
from edge.sim.vehicle import VehicleSpec

from edge.config import read_toml
from edge.errors import ConfigError
from edge.schema import OMIT, Schema, boolean, in_file, integer, number, string, table, tables

__all__ = [
    "AlertExpectation",
    "Assertions",
    "Scenario",
    "WorldSpec",
    "builtin_scenario",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
]


@dataclass(frozen=True)
class WorldSpec:
    """The simulated world: seed, run length (s), loop and camera rate (Hz), IMU rate (Hz), physics rate (Hz),
    target speed (m/s), and the track, camera and vehicle."""

    seed: int = 0
    duration_s: float = 60.0
    rate_hz: float = 20.0
    imu_hz: float = 100.0
    physics_hz: float = 200.0
    speed_mps: float = 10.0
    track: TrackSpec = field(default_factory=TrackSpec)
    camera: CameraSpec = field(default_factory=CameraSpec)
    vehicle: VehicleSpec = field(default_factory=VehicleSpec)


@dataclass(frozen=True)
class AlertExpectation:
    """An alert of ``kind`` (optionally on ``feature``) must be raised by ``by_s`` and not before ``after_s`` (s)."""

    kind: str
    by_s: float
    after_s: float = 0.0
    feature: str | None = None


@dataclass(frozen=True)
class Assertions:
    """What the closed-loop run must show. ``None`` means "not checked"."""

    max_lateral_error_m: float | None = None
    max_lane_departures: int | None = None
    expect_alerts: tuple[AlertExpectation, ...] = ()
    no_alert: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    world: WorldSpec
    timeline: Timeline
    assertions: Assertions


_POSITIVE = number(OMIT, gt=0.0)
_WORLD = Schema(
    {
        "seed": integer(OMIT, ge=0),
        "duration_s": _POSITIVE,
        "rate_hz": number(OMIT, gt=0.0, le=1000.0),
        "imu_hz": number(OMIT, gt=0.0, le=2000.0),
        "physics_hz": number(OMIT, gt=0.0, le=10000.0),
        "speed_mps": number(OMIT, gt=0.0, le=60.0),
        "track": table(
            Schema(
                {
                    "preset": string(OMIT, choices=sorted(PRESETS)),
                    "lane_width_m": number(OMIT, ge=2.0, le=8.0),
                    "line_width_m": number(OMIT, ge=0.05, le=0.5),
                    "shoulder_m": number(OMIT, ge=0.0, le=10.0),
                },
                into=TrackSpec,
            )
        ),
        "camera": table(
            Schema(
                {
                    "width": integer(OMIT, ge=8),
                    "height": integer(OMIT, ge=8),
                    "hfov_deg": number(OMIT, ge=10.0, le=170.0),
                    "height_m": _POSITIVE,
                    "pitch_deg": number(OMIT, ge=-30.0, le=60.0),
                    "forward_m": number(OMIT, ge=-5.0, le=10.0),
                    "noise_sigma": number(OMIT, ge=0.0, le=64.0),
                },
                into=CameraSpec,
            )
        ),
        "vehicle": table(Schema({f.name: _POSITIVE for f in fields(VehicleSpec)}, into=VehicleSpec)),
    },
    into=WorldSpec,
)
_ALERT = Schema(
    {
        "kind": string(nonempty=True),
        "by_s": number(gt=0.0),
        "after_s": number(OMIT, ge=0.0),
        "feature": string(OMIT, nonempty=True),
    },
    into=AlertExpectation,
)
_ASSERTIONS = Schema(
    {
        "max_lateral_error_m": number(OMIT, gt=0.0),
        "max_lane_departures": integer(OMIT, ge=0),
        "expect_alert": tables(_ALERT, "assertions.expect_alert"),
        "no_alert": boolean(OMIT),
    },
    into=Assertions,
    rename={"expect_alert": "expect_alerts"},
)
_SCENARIO = Schema(
    {
        "name": string(OMIT, nonempty=True),
        "description": string("", nonempty=True),
        "world": table(_WORLD),
        "timeline": tables(parse_entry, "timeline"),
        "assertions": table(_ASSERTIONS),
    }
)


def parse_scenario(raw: dict[str, Any], default_name: str = "scenario") -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario`."""
    v = _SCENARIO.read(raw)
    world, assertions = v["world"], v["assertions"]
    for i, e in enumerate(v["timeline"]):
        if e.start_s >= world.duration_s:
            raise ConfigError(
                f"timeline[{i}].start_s: expected a time before world.duration_s ({world.duration_s}), got {e.start_s}"
            )
    for i, a in enumerate(assertions.expect_alerts):
        where = f"assertions.expect_alert[{i}]"
        if a.after_s >= a.by_s:
            raise ConfigError(f"{where}.after_s: expected a time before by_s ({a.by_s}), got {a.after_s}")
        if a.by_s > world.duration_s:
            raise ConfigError(f"{where}.by_s: expected <= world.duration_s ({world.duration_s}), got {a.by_s}")
    if assertions.no_alert and assertions.expect_alerts:
        raise ConfigError("assertions.no_alert: expected false when assertions.expect_alert lists alerts, got true")
    name = v.get("name", default_name)
    return Scenario(name, v["description"], world, Timeline(v["timeline"]), assertions)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (ConfigError names the file and the key)."""
    path = Path(path)
    raw = read_toml(path, "scenario")
    with in_file(path):
        return parse_scenario(raw, default_name=path.stem)


def builtin_scenarios() -> tuple[str, ...]:
    """Names of the scenarios shipped in ``edge/sim/scenarios``."""
    folder = resources.files("edge.sim") / "scenarios"
    return tuple(sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml")))


def builtin_scenario(name: str) -> Scenario:
    """A shipped scenario by name (``"nominal"``, ``"fog"``, ...)."""
    names = builtin_scenarios()
    if name not in names:
        raise ConfigError(f"scenario: expected one of {list(names)}, got {name!r}")
    with resources.as_file(resources.files("edge.sim") / "scenarios" / f"{name}.toml") as path:
        return load_scenario(path)
