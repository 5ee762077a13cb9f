"""``device.toml`` → frozen dataclasses, validated; every error names the key, what was expected and what arrived.

See README.md ("Loop") for a complete sample. Tables: ``[device]`` (``id``); ``[loop]`` (``rate_hz``,
``deadline_ms``, ``cpus``, ``fifo_priority``, and ``[loop.budgets_ms]`` with a budget per stage); ``[model]``
(``package``, ``threads``, ``providers``, ``mean``, ``std``, ``channel_order``, ``layout``); ``[sensors.<name>]``
(``source`` = "zmq" | "push", ``endpoint``, ``bind``, ``stamp``, ``shape``, ``dtype``, ``channel_order``,
``stale_ms``, ``min``, ``max``, ``frozen_frames``, ``primary``); ``[sync]`` (``mode``, ``max_skew_ms``); ``[policy]``
(``kind`` = "classification" | "regression" and their keys); ``[fallback]``; ``[sinks]`` (``zmq_endpoint``,
``log_every``); ``[watchdog]`` (``timeout_ms``, ``endpoint``); ``[swap]``; ``[shadow]``; and ``[telemetry]`` (opaque
here: handed to ``edge.telemetry.tap_from_config``). Relative paths are
relative to the config file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import read_toml
from edge.errors import ConfigError
from edge.loop.frame import STAGES
from edge.loop.settings import Timing

__all__ = [
    "DeviceConfig",
    "LoopConfig",
    "ModelConfig",
    "PolicyConfig",
    "SensorConfig",
    "ShadowConfig",
    "load_config",
    "parse_config",
]

_MISSING = object()


class _Table:
    """A TOML table read with its dotted path, so every error names the key."""

    def __init__(self, doc: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a table, got {doc!r}")
        self.doc, self.path = doc, path
        unknown = sorted(set(doc) - set(allowed))
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def get(self, k: str, default: Any = _MISSING) -> Any:
        if k in self.doc:
            return self.doc[k]
        if default is _MISSING:
            raise ConfigError(f"{self.key(k)}: required, but missing")
        return default

    def num(self, k: str, default: Any = _MISSING, *, gt: float | None = None, ge: float | None = None) -> Any:
        v = self.get(k, default)
        if v is None:
            return None
        bad = isinstance(v, bool) or not isinstance(v, int | float)
        if bad or (gt is not None and not v > gt) or (ge is not None and not v >= ge):
            cond = f" > {gt}" if gt is not None else f" >= {ge}" if ge is not None else ""
            raise ConfigError(f"{self.key(k)}: expected a number{cond}, got {v!r}")
        return v

    def int(self, k: str, default: Any = _MISSING, *, ge: int | None = None) -> Any:
        v = self.get(k, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or (ge is not None and v < ge):
            raise ConfigError(f"{self.key(k)}: expected an integer{f' >= {ge}' if ge is not None else ''}, got {v!r}")
        return v

    def str(self, k: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None) -> Any:
        v = self.get(k, default)
        if v is None:
            return None
        if not isinstance(v, str) or (choices is not None and v not in choices):
            raise ConfigError(
                f"{self.key(k)}: expected {f'one of {list(choices)}' if choices else 'a string'}, got {v!r}"
            )
        return v

    def bool(self, k: str, default: Any = _MISSING) -> Any:
        v = self.get(k, default)
        if not isinstance(v, bool):
            raise ConfigError(f"{self.key(k)}: expected true or false, got {v!r}")
        return v

    def nums(self, k: str, default: Any = _MISSING, *, ints: bool = False, scalar: bool = True) -> Any:
        v = self.get(k, default)
        if v is None:
            return None
        kind = (int,) if ints else (int, float)
        if scalar and isinstance(v, kind) and not isinstance(v, bool):
            return v
        if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, kind) for x in v):
            what = "integers" if ints else "numbers"
            raise ConfigError(
                f"{self.key(k)}: expected a{' number or a' if scalar else ''} non-empty list of {what}, got {v!r}"
            )
        return tuple(v)

    def strs(self, k: str, default: Any = _MISSING) -> Any:
        v = self.get(k, default)
        if v is None:
            return None
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{self.key(k)}: expected a non-empty list of strings, got {v!r}")
        return tuple(v)

    def sub(self, k: str, allowed: tuple[str, ...]) -> _Table:
        return _Table(self.doc.get(k, {}), self.key(k), allowed)


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float
    deadline_ms: float | None
    cpus: tuple[int, ...] | None
    fifo_priority: int
    budgets_ms: dict[str, float]  # per-stage budgets by STAGES name (ms); empty: none

    def timing(self) -> Timing:
        """The loop's :class:`~edge.loop.settings.Timing` (budgets in µs; the first tick at the first frame)."""
        budgets = {k: v * 1e3 for k, v in self.budgets_ms.items()}
        return Timing(rate_hz=self.rate_hz, deadline_ms=self.deadline_ms, stage_budgets_us=budgets or None)


@dataclass(frozen=True)
class ModelConfig:
    package: Path
    threads: int | None
    providers: tuple[str, ...] | None
    mean: tuple[float, ...] | float | None
    std: tuple[float, ...] | float | None
    channel_order: str | None
    layout: str | None


@dataclass(frozen=True)
class SensorConfig:
    name: str
    source: str  # "zmq" | "push"
    endpoint: str | None
    bind: bool
    stamp: str
    shape: tuple[int, ...]
    dtype: str
    channel_order: str
    stale_ms: float | None
    lo: float | None
    hi: float | None
    frozen_frames: int
    primary: bool


@dataclass(frozen=True)
class PolicyConfig:
    kind: str  # "classification" | "regression"
    actions: tuple[str, ...]
    min_confidence: float
    low_confidence_action: str | None
    size: int
    lo: tuple[float, ...] | float | None
    hi: tuple[float, ...] | float | None
    max_rate: tuple[float, ...] | float | None


@dataclass(frozen=True)
class ShadowConfig:
    package: Path
    every: int
    mode: str | None
    tolerance: float


@dataclass(frozen=True)
class DeviceConfig:
    path: Path
    device_id: str | None
    loop: LoopConfig
    model: ModelConfig
    sensors: tuple[SensorConfig, ...]
    sync_mode: str
    max_skew_ms: float | None
    policy: PolicyConfig
    hold_frames: int
    recover_frames: int
    safe_action: str | None
    safe_command: tuple[float, ...]
    zmq_endpoint: str | None
    log_every: int
    watchdog_ms: float | None
    watchdog_endpoint: str | None
    swap_failure_frames: int
    swap_probation_frames: int
    shadow: ShadowConfig | None
    telemetry: dict[str, Any] | None

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_config(path: str | Path) -> DeviceConfig:
    """Read and validate ``device.toml``."""
    path = Path(path).resolve()
    return parse_config(read_toml(path, "config"), path)


def _path(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


def _sensor(name: str, t: _Table) -> SensorConfig:
    source = t.str("source", "push", choices=("zmq", "push"))
    shape = t.nums("shape", ints=True, scalar=False)
    if any(d < 1 for d in shape):
        raise ConfigError(f"{t.key('shape')}: expected positive dimensions, got {list(shape)}")
    return SensorConfig(
        name=name,
        source=source,
        endpoint=t.str("endpoint") if source == "zmq" else t.str("endpoint", None),
        bind=t.bool("bind", False),
        stamp=t.str("stamp", "capture", choices=("capture", "receive")),
        shape=shape,
        dtype=t.str("dtype", "uint8", choices=("uint8", "int8", "int16", "int32", "float32", "float64")),
        channel_order=t.str("channel_order", "RGB"),
        stale_ms=t.num("stale_ms", None, gt=0),
        lo=t.num("min", None),
        hi=t.num("max", None),
        frozen_frames=t.int("frozen_frames", 0, ge=0),
        primary=t.bool("primary", False),
    )


def parse_config(doc: dict[str, Any], path: Path) -> DeviceConfig:
    """Validate a parsed ``device.toml`` (``path``: where it came from, for relative paths and messages)."""
    top = _Table(
        doc,
        "",
        (
            "device",
            "loop",
            "model",
            "sensors",
            "sync",
            "policy",
            "fallback",
            "sinks",
            "watchdog",
            "swap",
            "shadow",
            "telemetry",
        ),
    )
    base = path.parent
    dev = top.sub("device", ("id",))
    lp = top.sub("loop", ("rate_hz", "deadline_ms", "cpus", "fifo_priority", "budgets_ms"))
    cpus = lp.nums("cpus", None, ints=True, scalar=False)
    bt = lp.sub("budgets_ms", STAGES)
    budgets = {k: bt.num(k, gt=0) for k in bt.doc}
    loop = LoopConfig(
        lp.num("rate_hz", gt=0), lp.num("deadline_ms", None, gt=0), cpus, lp.int("fifo_priority", 0, ge=0), budgets
    )
    if loop.fifo_priority > 99:
        raise ConfigError(f"loop.fifo_priority: expected an integer in [0, 99], got {loop.fifo_priority}")
    mt = top.sub("model", ("package", "threads", "providers", "mean", "std", "channel_order", "layout"))
    model = ModelConfig(
        package=_path(base, mt.str("package")),
        threads=mt.int("threads", None, ge=1),
        providers=mt.strs("providers", None),
        mean=mt.nums("mean", None),
        std=mt.nums("std", None),
        channel_order=mt.str("channel_order", None),
        layout=mt.str("layout", None, choices=("NCHW", "NHWC")),
    )
    st = top.get("sensors")
    if not isinstance(st, dict) or not st:
        raise ConfigError(f"sensors: expected at least one [sensors.<name>] table, got {st!r}")
    sensor_keys = (
        "source", "endpoint", "bind", "stamp", "shape", "dtype", "channel_order",
        "stale_ms", "min", "max", "frozen_frames", "primary",
    )  # fmt: skip
    sensors = tuple(_sensor(n, _Table(t, f"sensors.{n}", sensor_keys)) for n, t in st.items())
    primaries = [s.name for s in sensors if s.primary]
    if len(primaries) > 1:
        raise ConfigError(f"sensors.*.primary: expected at most one primary sensor, got {primaries}")
    if not primaries:  # the first sensor is the primary
        sensors = (SensorConfig(**{**sensors[0].__dict__, "primary": True}), *sensors[1:])
    sy = top.sub("sync", ("mode", "max_skew_ms"))
    sync_mode = sy.str("mode", "latest", choices=("latest", "approximate"))
    max_skew = sy.num("max_skew_ms", None if sync_mode == "latest" else _MISSING, gt=0)
    pt = top.sub(
        "policy", ("kind", "actions", "min_confidence", "low_confidence_action", "size", "min", "max", "max_rate")
    )
    kind = pt.str("kind", choices=("classification", "regression"))
    policy = PolicyConfig(
        kind=kind,
        actions=pt.strs("actions") if kind == "classification" else (),
        min_confidence=pt.num("min_confidence", 0.0, ge=0),
        low_confidence_action=pt.str("low_confidence_action", None),
        size=pt.int("size", 1, ge=1),
        lo=pt.nums("min", None),
        hi=pt.nums("max", None),
        max_rate=pt.nums("max_rate", None),
    )
    fb = top.sub("fallback", ("hold_frames", "recover_frames", "safe_action", "safe_command"))
    safe_command = fb.nums("safe_command", None)
    if isinstance(safe_command, int | float):
        safe_command = (safe_command,) * policy.size
    sk = top.sub("sinks", ("zmq_endpoint", "log_every"))
    wd = top.sub("watchdog", ("timeout_ms", "endpoint"))
    sw = top.sub("swap", ("failure_frames", "probation_frames"))
    shadow = None
    if "shadow" in doc:
        sh = top.sub("shadow", ("package", "every", "mode", "tolerance"))
        shadow = ShadowConfig(
            _path(base, sh.str("package")),
            sh.int("every", 10, ge=1),
            sh.str("mode", None, choices=("argmax", "tolerance")),
            sh.num("tolerance", 0.0, ge=0),
        )
    telemetry = doc.get("telemetry")
    if telemetry is not None and not isinstance(telemetry, dict):
        raise ConfigError(f"telemetry: expected a table, got {telemetry!r}")
    return DeviceConfig(
        path=path,
        device_id=dev.str("id", None),
        loop=loop,
        model=model,
        sensors=sensors,
        sync_mode=sync_mode,
        max_skew_ms=max_skew,
        policy=policy,
        hold_frames=fb.int("hold_frames", 3, ge=0),
        recover_frames=fb.int("recover_frames", 5, ge=1),
        safe_action=fb.str("safe_action", None),
        safe_command=tuple(safe_command or ()) or ((0.0,) * policy.size if kind == "regression" else ()),
        zmq_endpoint=sk.str("zmq_endpoint", None),
        log_every=sk.int("log_every", 0, ge=0),
        watchdog_ms=wd.num("timeout_ms", None, gt=0),
        watchdog_endpoint=wd.str("endpoint", None),
        swap_failure_frames=sw.int("failure_frames", 3, ge=1),
        swap_probation_frames=sw.int("probation_frames", 30, ge=1),
        shadow=shadow,
        telemetry=telemetry,
    )
