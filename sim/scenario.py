"""Scenario files: TOML → frozen dataclasses, validated, every error naming its key.

A scenario has a ``name``, a ``[world]`` table (seed, duration, loop/camera rate, target speed, and optional
``[world.track]``, ``[world.camera]``, ``[world.vehicle]`` tables), a ``[[timeline]]`` array (see
:mod:`edge.sim.timeline`) and an ``[assertions]`` table that the closed-loop harness checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from edge.sim.camera import CameraSpec
from edge.sim.timeline import Timeline, TimelineEntry, _integer, _number, _text, parse_entry
from edge.sim.track import PRESETS, TrackSpec
from edge.sim.vehicle import VehicleSpec

from edge.config import read_toml
from edge.errors import ConfigError

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


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    return raw


def _reject_unknown(raw: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}{key}: unknown key; expected one of {list(allowed)}")


def _take(raw: dict[str, Any], where: str, key: str, check: Callable[[Any], Any], default: Any) -> Any:
    if key not in raw:
        return default
    try:
        return check(raw[key])
    except ValueError as exc:
        raise ConfigError(f"{where}{key}: {exc}, got {raw[key]!r}") from None


def _dataclass_from(cls: type, raw: Any, where: str, checks: dict[str, Callable[[Any], Any]]) -> Any:
    raw = _table(raw, where.rstrip("."))
    _reject_unknown(raw, where, tuple(checks))
    default = cls()
    values = {f.name: _take(raw, where, f.name, checks[f.name], getattr(default, f.name)) for f in fields(cls)}
    try:
        return cls(**values)
    except ConfigError as exc:  # a spec's own check names "<table>.<key>": prefix the enclosing table
        raise ConfigError(f"{where.rsplit('.', 2)[0]}.{exc}") from None


def _world(raw: Any) -> WorldSpec:
    raw = dict(_table(raw, "world"))
    nested = {name: raw.pop(name, {}) for name in ("track", "camera", "vehicle")}
    positive = _number(0.0, lo_open=True)
    checks = {
        "seed": _integer(0),
        "duration_s": positive,
        "rate_hz": _number(0.0, 1000.0, lo_open=True),
        "imu_hz": _number(0.0, 2000.0, lo_open=True),
        "physics_hz": _number(0.0, 10000.0, lo_open=True),
        "speed_mps": _number(0.0, 60.0, lo_open=True),
    }
    _reject_unknown(raw, "world.", (*checks, "track", "camera", "vehicle"))
    d = WorldSpec()
    values = {k: _take(raw, "world.", k, c, getattr(d, k)) for k, c in checks.items()}

    def preset(value: Any) -> str:
        if value not in PRESETS:
            raise ValueError(f"expected one of {sorted(PRESETS)}")
        return value

    track = _dataclass_from(
        TrackSpec,
        nested["track"],
        "world.track.",
        {
            "preset": preset,
            "lane_width_m": _number(2.0, 8.0),
            "line_width_m": _number(0.05, 0.5),
            "shoulder_m": _number(0.0, 10.0),
        },
    )
    camera = _dataclass_from(
        CameraSpec,
        nested["camera"],
        "world.camera.",
        {
            "width": _integer(8),
            "height": _integer(8),
            "hfov_deg": _number(10.0, 170.0),
            "height_m": positive,
            "pitch_deg": _number(-30.0, 60.0),
            "forward_m": _number(-5.0, 10.0),
            "noise_sigma": _number(0.0, 64.0),
        },
    )
    vehicle = _dataclass_from(
        VehicleSpec, nested["vehicle"], "world.vehicle.", {f.name: positive for f in fields(VehicleSpec)}
    )
    return WorldSpec(**values, track=track, camera=camera, vehicle=vehicle)


def _assertions(raw: Any) -> Assertions:
    raw = _table(raw, "assertions")
    _reject_unknown(raw, "assertions.", ("max_lateral_error_m", "max_lane_departures", "expect_alert", "no_alert"))

    def boolean(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value

    max_err = _take(raw, "assertions.", "max_lateral_error_m", _number(0.0, lo_open=True), None)
    departures = _take(raw, "assertions.", "max_lane_departures", _integer(0), None)
    no_alert = _take(raw, "assertions.", "no_alert", boolean, False)
    expected = raw.get("expect_alert", [])
    if not isinstance(expected, list):
        raise ConfigError(
            f"assertions.expect_alert: expected an array of tables ([[assertions.expect_alert]]), got {expected!r}"
        )
    alerts = []
    for i, item in enumerate(expected):
        where = f"assertions.expect_alert[{i}]."
        item = _table(item, where.rstrip("."))
        _reject_unknown(item, where, ("kind", "by_s", "after_s", "feature"))
        for key in ("kind", "by_s"):
            if key not in item:
                raise ConfigError(f"{where}{key}: required, missing")
        kind = _take(item, where, "kind", _text, None)
        by_s = _take(item, where, "by_s", _number(0.0, lo_open=True), None)
        after_s = _take(item, where, "after_s", _number(0.0), 0.0)
        if after_s >= by_s:
            raise ConfigError(f"{where}after_s: expected a time before by_s ({by_s}), got {after_s}")
        alerts.append(AlertExpectation(kind, by_s, after_s, _take(item, where, "feature", _text, None)))
    if no_alert and alerts:
        raise ConfigError("assertions.no_alert: expected false when assertions.expect_alert lists alerts, got true")
    return Assertions(max_err, departures, tuple(alerts), no_alert)


def parse_scenario(raw: dict[str, Any], default_name: str = "scenario") -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario`."""
    _reject_unknown(raw, "", ("name", "description", "world", "timeline", "assertions"))
    name = _take(raw, "", "name", _text, default_name)
    description = _take(raw, "", "description", _text, "")
    world = _world(raw.get("world", {}))
    timeline_raw = raw.get("timeline", [])
    if not isinstance(timeline_raw, list):
        raise ConfigError(f"timeline: expected an array of tables ([[timeline]]), got {timeline_raw!r}")
    entries: list[TimelineEntry] = [parse_entry(item, f"timeline[{i}]") for i, item in enumerate(timeline_raw)]
    for i, e in enumerate(entries):
        if e.start_s >= world.duration_s:
            raise ConfigError(
                f"timeline[{i}].start_s: expected a time before world.duration_s ({world.duration_s}), got {e.start_s}"
            )
    assertions = _assertions(raw.get("assertions", {}))
    for i, a in enumerate(assertions.expect_alerts):
        if a.by_s > world.duration_s:
            raise ConfigError(
                f"assertions.expect_alert[{i}].by_s: expected <= world.duration_s ({world.duration_s}), got {a.by_s}"
            )
    return Scenario(name, description, world, Timeline(tuple(entries)), assertions)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (ConfigError names the file and the key)."""
    path = Path(path)
    raw = read_toml(path, "scenario")
    try:
        return parse_scenario(raw, default_name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


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
