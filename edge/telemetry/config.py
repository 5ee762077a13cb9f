"""The device.toml ``[telemetry]`` table → frozen settings, with errors that name ``telemetry.<key>``.

Keys (types; defaults) — documented for operators in README.md ("Telemetry"):

``endpoint`` (str, required: ``tcp://host:port`` or ``ipc://path``), ``window_s`` (float s; 1.0),
``spool_dir`` (path, relative to the config's folder; ``"telemetry-spool"``), ``spool_max_bytes`` (int bytes;
64 MiB), ``segment_bytes`` (int bytes; 1 MiB), ``fsync`` (``"always"|"every_n"|"interval"|"never"``;
``"interval"``), ``fsync_every`` (int records; 64), ``fsync_interval_s`` (float s; 1.0), ``queue_size`` (int
windows handed over but not yet spooled, >= 2; 4), ``max_events`` (int; 256), ``heartbeat_s`` (float s; 5.0),
``ack_timeout_s`` (float s; 3.0), ``backoff_min_s``/``backoff_max_s`` (float s; 0.1/10.0), ``batch_max`` (int
records per message; 32), ``curve_keypair`` (path to the device's ``NAME.key_secret``) with
``collector_public_key`` (path to the collector's ``.key``): both or neither, and ``[telemetry.capture]``
(see :class:`~edge.telemetry.capture.CaptureSettings`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.telemetry.capture import CaptureSettings
from edge.telemetry.protocol import MAX_BATCH_RECORDS
from edge.telemetry.publisher import PublisherSettings
from edge.telemetry.spool import FSYNC_POLICIES

__all__ = ["TelemetrySettings", "parse_telemetry"]


@dataclass(frozen=True)
class TelemetrySettings:
    """Everything the tap needs, validated. Paths are absolute."""

    link: PublisherSettings
    spool_dir: Path
    spool_max_bytes: int = 64 << 20
    segment_bytes: int = 1 << 20
    fsync: str = "interval"
    fsync_every: int = 64
    fsync_interval_s: float = 1.0
    queue_size: int = 4
    curve_keypair: Path | None = None
    collector_public_key: Path | None = None
    capture: CaptureSettings = dataclasses.field(default_factory=CaptureSettings)


_TOP = {
    "endpoint": str,
    "window_s": float,
    "spool_dir": str,
    "spool_max_bytes": int,
    "segment_bytes": int,
    "fsync": str,
    "fsync_every": int,
    "fsync_interval_s": float,
    "queue_size": int,
    "max_events": int,
    "heartbeat_s": float,
    "ack_timeout_s": float,
    "backoff_min_s": float,
    "backoff_max_s": float,
    "batch_max": int,
    "curve_keypair": str,
    "collector_public_key": str,
    "capture": dict,
}
_CAPTURE = {f.name: f.type for f in dataclasses.fields(CaptureSettings)}
_TYPES = {"bool": bool, "float": float, "int": int}
_POSITIVE = {"window_s", "heartbeat_s", "ack_timeout_s", "backoff_min_s", "backoff_max_s", "fsync_interval_s"}
_MIN = {
    "spool_max_bytes": 1024,
    "segment_bytes": 256,
    "fsync_every": 1,
    "queue_size": 2,
    "max_events": 1,
    "batch_max": 1,
}


def _typed(key: str, value: Any, want: type) -> Any:
    if want is float and type(value) in (int, float):
        return float(value)
    if type(value) is not want:
        got = f"{type(value).__name__} {value!r}"
        raise ConfigError(f"{key}: expected {want.__name__}, got {got[:100]}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: expected one of {', '.join(sorted(allowed))}, got an unknown key")


def _capture(table: Any) -> CaptureSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"telemetry.capture: expected a table, got {type(table).__name__}")
    _check_keys(table, _CAPTURE, "telemetry.capture")
    kw = {}
    for k, v in table.items():
        want = _TYPES[_CAPTURE[k]] if isinstance(_CAPTURE[k], str) else _CAPTURE[k]
        kw[k] = _typed(f"telemetry.capture.{k}", v, want)
        if want in (int, float) and kw[k] < 0:
            raise ConfigError(f"telemetry.capture.{k}: expected a value >= 0, got {v!r}")
    return CaptureSettings(**kw)


def parse_telemetry(table: Mapping[str, Any], base_dir: Path) -> TelemetrySettings:
    """Validate the ``[telemetry]`` table; :class:`ConfigError` names ``telemetry.<key>``, what was expected and
    what arrived."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"telemetry: expected a table, got {type(table).__name__}")
    _check_keys(table, _TOP, "telemetry")
    if "endpoint" not in table:
        raise ConfigError(
            "telemetry.endpoint: expected the collector's address (tcp://host:port or ipc://path), got nothing"
        )
    v = {k: _typed(f"telemetry.{k}", val, _TOP[k]) for k, val in table.items()}
    endpoint = v["endpoint"]
    if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
        raise ConfigError(f"telemetry.endpoint: expected tcp://host:port or ipc://path, got {endpoint!r}")
    for k in _POSITIVE & v.keys():
        if v[k] <= 0:
            raise ConfigError(f"telemetry.{k}: expected a number of seconds > 0, got {v[k]!r}")
    for k, lo in _MIN.items():
        if k in v and v[k] < lo:
            raise ConfigError(f"telemetry.{k}: expected an integer >= {lo}, got {v[k]!r}")
    if v.get("batch_max", 1) > MAX_BATCH_RECORDS:
        raise ConfigError(f"telemetry.batch_max: expected at most {MAX_BATCH_RECORDS}, got {v['batch_max']}")
    if v.get("fsync", "interval") not in FSYNC_POLICIES:
        raise ConfigError(f"telemetry.fsync: expected one of {', '.join(FSYNC_POLICIES)}, got {v['fsync']!r}")
    if ("curve_keypair" in v) != ("collector_public_key" in v):
        have, missing = ("curve_keypair", "collector_public_key")[:: 1 if "curve_keypair" in v else -1]
        raise ConfigError(f"telemetry.{missing}: expected it together with telemetry.{have}, got nothing")
    link = PublisherSettings(
        endpoint=endpoint,
        **{
            k: v[k]
            for k in (
                "window_s",
                "heartbeat_s",
                "ack_timeout_s",
                "backoff_min_s",
                "backoff_max_s",
                "batch_max",
                "max_events",
            )
            if k in v
        },
    )
    if link.backoff_max_s < link.backoff_min_s:
        raise ConfigError(
            f"telemetry.backoff_max_s: expected >= backoff_min_s ({link.backoff_min_s}), got {link.backoff_max_s}"
        )
    path = {k: (base_dir / v[k]).resolve() for k in ("spool_dir", "curve_keypair", "collector_public_key") if k in v}
    settings = TelemetrySettings(
        link=link,
        spool_dir=path.get("spool_dir", (base_dir / "telemetry-spool").resolve()),
        curve_keypair=path.get("curve_keypair"),
        collector_public_key=path.get("collector_public_key"),
        capture=_capture(v["capture"]) if "capture" in v else CaptureSettings(),
        **{
            k: v[k]
            for k in ("spool_max_bytes", "segment_bytes", "fsync", "fsync_every", "fsync_interval_s", "queue_size")
            if k in v
        },
    )
    if settings.spool_max_bytes < 2 * settings.segment_bytes:
        raise ConfigError(
            f"telemetry.spool_max_bytes: expected at least twice segment_bytes "
            f"({2 * settings.segment_bytes}), got {settings.spool_max_bytes}"
        )
    return settings
