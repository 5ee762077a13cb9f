"""The scenario timeline: environment effects, sensor/system faults and harness events, each on a time interval.

Every entry has a ``kind``, a ``start_s`` and an optional ``end_s`` (s of simulated time; no end: until the run
ends). Effects and faults have an intensity in [0, 1] that ramps up linearly over ``ramp_s`` from ``start_s`` and
down over ``ramp_down_s`` before ``end_s``; an effect's magnitude parameter is scaled by it. Events
(``collector_outage``, ``model_swap``, ``bad_swap``) are acted on by the harness; this module only parses them and
says when they start and end. ``model_swap`` and ``bad_swap`` are instants: they have no ``end_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edge.errors import ConfigError

__all__ = ["EFFECTS", "EVENTS", "FAULTS", "KINDS", "Timeline", "TimelineEntry", "parse_entry"]

EFFECTS = ("brightness", "contrast", "fog", "glare", "bias", "noise", "blur")
FAULTS = ("dropout", "frozen", "nan_imu", "cpu_contention")
EVENTS = ("collector_outage", "model_swap", "bad_swap")
INSTANT_EVENTS = ("model_swap", "bad_swap")


def _number(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (lo is None or (value > lo if lo_open else value >= lo)) and (hi is None or value <= hi)
        if not ok:
            bounds = [
                f"{'>' if lo_open else '>='} {lo}" if lo is not None else "",
                f"<= {hi}" if hi is not None else "",
            ]
            raise ValueError(f"expected a number {' and '.join(b for b in bounds if b)}".rstrip())
        return float(value)

    return check


def _integer(lo: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
            raise ValueError(f"expected an integer >= {lo}")
        return value

    return check


def _triple(lo: float, hi: float) -> Callable[[Any], tuple[float, ...]]:
    def check(value: Any) -> tuple[float, ...]:
        if not (isinstance(value, list) and len(value) == 3):
            raise ValueError(f"expected a list of 3 numbers in [{lo}, {hi}]")
        return tuple(_number(lo, hi)(v) for v in value)

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {list(options)}")
        return value

    return check


def _text(value: Any) -> str:
    if not (isinstance(value, str) and value):
        raise ValueError("expected a non-empty string")
    return value


# kind -> {parameter: (validator, default or REQUIRED)}; the doc of each magnitude is in the README's table
REQUIRED = object()
KINDS: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {
    # gain offset: pixel values are multiplied by 1 + value (-0.6: 40 % of the light)
    "brightness": {"value": (_number(-1.0, 4.0), REQUIRED)},
    # contrast offset about mid-grey: (x - 127.5) * (1 + value) + 127.5
    "contrast": {"value": (_number(-1.0, 4.0), REQUIRED)},
    # meteorological visibility (m) at full intensity: blend towards `colour` with 1 - exp(-3 d / visibility)
    "fog": {"visibility_m": (_number(1.0, lo_open=False), REQUIRED), "colour": (_triple(0, 255), [200, 204, 208])},
    # bloom of `value` * 255 at image position (x, y) (fractions of width, height), radius a fraction of the width
    "glare": {
        "value": (_number(0.0, 4.0), REQUIRED),
        "position": (_triple(0.0, 1.0), [0.7, 0.3, 0.25]),
    },
    # per-channel gain (R, G, B) at full intensity
    "bias": {"gains": (_triple(0.0, 4.0), REQUIRED)},
    # extra Gaussian sensor noise, standard deviation in pixel units (0..255)
    "noise": {"sigma": (_number(0.0, 128.0), REQUIRED)},
    # box blur radius (pixels) at full intensity
    "blur": {"radius_px": (_integer(1), REQUIRED)},
    # fraction of camera frames not delivered, at full intensity
    "dropout": {"probability": (_number(0.0, 1.0), 1.0)},
    # the camera repeats the frame it captured when the fault started (timestamps still advance)
    "frozen": {},
    # every IMU reading is NaN
    "nan_imu": {},
    # busy workers competing for the CPU
    "cpu_contention": {"workers": (_integer(1), 1), "mode": (_choice("thread", "process"), "process")},
    "collector_outage": {},
    # the harness swaps the live model for `model` (a package path or a name the harness resolves)
    "model_swap": {"model": (_text, REQUIRED)},
    # the harness swaps in a broken model (`model` names which; "broken" by default) and must fall back
    "bad_swap": {"model": (_text, "broken")},
}
_COMMON = ("kind", "start_s", "end_s", "ramp_s", "ramp_down_s")


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline entry (times in s of simulated time). ``params`` is read-only, with defaults filled in."""

    kind: str
    start_s: float
    end_s: float | None = None
    ramp_s: float = 0.0
    ramp_down_s: float = 0.0
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def category(self) -> str:
        """ "effect", "fault" or "event"."""
        return "effect" if self.kind in EFFECTS else "fault" if self.kind in FAULTS else "event"

    def intensity(self, t_s: float) -> float:
        """Intensity in [0, 1] at time ``t_s`` (s): 0 outside [start_s, end_s), ramping in and out."""
        if t_s < self.start_s or (self.end_s is not None and t_s >= self.end_s):
            return 0.0
        level = 1.0 if self.ramp_s <= 0 else min(1.0, (t_s - self.start_s) / self.ramp_s)
        if self.end_s is not None and self.ramp_down_s > 0:
            level = min(level, (self.end_s - t_s) / self.ramp_down_s)
        return level

    def active(self, t_s: float) -> bool:
        return self.intensity(t_s) > 0.0


def parse_entry(raw: Any, where: str) -> TimelineEntry:
    """Validate one raw TOML table into a :class:`TimelineEntry`; errors name the key (``timeline[2].start_s``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: expected one of {sorted(KINDS)}, got {kind!r}")
    schema = KINDS[kind]
    for key in raw:
        if key not in _COMMON and key not in schema:
            raise ConfigError(f"{where}.{key}: unknown key for kind {kind!r}; expected one of {[*_COMMON, *schema]}")

    def get(key: str, check: Callable[[Any], Any], default: Any) -> Any:
        if key not in raw:
            if default is REQUIRED:
                raise ConfigError(f"{where}.{key}: required for kind {kind!r}, missing")
            return check(default) if default is not None else None
        try:
            return check(raw[key])
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}, got {raw[key]!r}") from None

    start = get("start_s", _number(0.0), REQUIRED)
    end = get("end_s", _number(0.0), None)
    if kind in INSTANT_EVENTS:
        for key in ("end_s", "ramp_s", "ramp_down_s"):
            if key in raw:
                raise ConfigError(f"{where}.{key}: {kind!r} happens at an instant (start_s only), got {key}")
    if end is not None and end <= start:
        raise ConfigError(f"{where}.end_s: expected a time after start_s ({start}), got {end}")
    ramp = get("ramp_s", _number(0.0), 0.0)
    ramp_down = get("ramp_down_s", _number(0.0), 0.0)
    if ramp_down > 0 and end is None:
        raise ConfigError(f"{where}.ramp_down_s: needs an end_s to ramp down to, got no end_s")
    if end is not None and ramp + ramp_down > end - start + 1e-9:
        raise ConfigError(f"{where}.ramp_s: expected ramp_s + ramp_down_s <= end_s - start_s, got {ramp} + {ramp_down}")
    params = {key: get(key, check, default) for key, (check, default) in schema.items()}
    return TimelineEntry(kind, start, end, ramp, ramp_down, MappingProxyType(params))


class Timeline:
    """The scenario's entries in file order, with queries by kind and time."""

    def __init__(self, entries: tuple[TimelineEntry, ...]) -> None:
        self.entries = tuple(entries)

    def of(self, *kinds: str) -> tuple[TimelineEntry, ...]:
        return tuple(e for e in self.entries if e.kind in kinds)

    @property
    def events(self) -> tuple[TimelineEntry, ...]:
        """The entries the harness acts on (collector outage, model swaps), in file order."""
        return self.of(*EVENTS)

    def transitions(self, t0_s: float, t1_s: float) -> list[tuple[float, str, TimelineEntry]]:
        """``(time_s, "start" | "end", entry)`` for every start or end in ``(t0_s, t1_s]`` (pass a negative
        ``t0_s`` to include starts at 0), sorted by time, ends after starts, then file order."""
        out = []
        for i, e in enumerate(self.entries):
            if t0_s < e.start_s <= t1_s:
                out.append((e.start_s, 0, i, "start", e))
            if e.end_s is not None and t0_s < e.end_s <= t1_s:
                out.append((e.end_s, 1, i, "end", e))
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        return [(t, what, e) for t, _, _, what, e in out]
