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
from edge.schema import OMIT, Field, Schema, boolean, integer, number, string
from edge.schema import table as sub_table
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


_SECONDS = {"gt": 0, "unit": "seconds"}
_CAPTURE = Schema(
    {
        "enabled": boolean(OMIT),
        "confidence_below": number(OMIT, ge=0),
        "drift_above": number(OMIT, ge=0),
        "sample_every_s": number(OMIT, ge=0),
        "min_interval_s": number(OMIT, ge=0),
        "max_bytes": integer(OMIT, ge=1),
        "max_frame_bytes": integer(OMIT, ge=1),
        "pool": integer(OMIT, ge=1),
        "level": integer(OMIT, ge=0, le=9),
    },
    into=CaptureSettings,
)
_LINK = ("window_s", "heartbeat_s", "ack_timeout_s", "backoff_min_s", "backoff_max_s", "batch_max", "max_events")
_TELEMETRY = Schema(
    {
        "endpoint": Field(
            "tcp://host:port or ipc://path",
            lambda v: isinstance(v, str) and v.startswith(("tcp://", "ipc://", "inproc://")),
        ),
        "window_s": number(OMIT, **_SECONDS),
        "spool_dir": string("telemetry-spool"),
        "spool_max_bytes": integer(OMIT, ge=1024),
        "segment_bytes": integer(OMIT, ge=256),
        "fsync": string(OMIT, choices=FSYNC_POLICIES),
        "fsync_every": integer(OMIT, ge=1),
        "fsync_interval_s": number(OMIT, **_SECONDS),
        "queue_size": integer(OMIT, ge=2),
        "max_events": integer(OMIT, ge=1),
        "heartbeat_s": number(OMIT, **_SECONDS),
        "ack_timeout_s": number(OMIT, **_SECONDS),
        "backoff_min_s": number(OMIT, **_SECONDS),
        "backoff_max_s": number(OMIT, **_SECONDS),
        "batch_max": integer(OMIT, ge=1, le=MAX_BATCH_RECORDS),
        "curve_keypair": string(None),
        "collector_public_key": string(None),
        "capture": sub_table(_CAPTURE),
    }
)


def parse_telemetry(table: Mapping[str, Any], base_dir: Path) -> TelemetrySettings:
    """Validate the ``[telemetry]`` table; :class:`ConfigError` names ``telemetry.<key>``, what was expected and
    what arrived."""
    v = _TELEMETRY.read(table, "telemetry")
    if (v["curve_keypair"] is None) != (v["collector_public_key"] is None):
        have, missing = ("curve_keypair", "collector_public_key")[:: 1 if v["curve_keypair"] is not None else -1]
        raise ConfigError(f"telemetry.{missing}: expected it together with telemetry.{have}, got nothing")
    link = PublisherSettings(endpoint=v.pop("endpoint"), **{k: v.pop(k) for k in _LINK if k in v})
    if link.backoff_max_s < link.backoff_min_s:
        raise ConfigError(
            f"telemetry.backoff_max_s: expected >= backoff_min_s ({link.backoff_min_s}), got {link.backoff_max_s}"
        )
    for k in ("spool_dir", "curve_keypair", "collector_public_key"):
        v[k] = None if v[k] is None else (base_dir / v[k]).resolve()
    settings = TelemetrySettings(link=link, **v)
    if settings.spool_max_bytes < 2 * settings.segment_bytes:
        raise ConfigError(
            f"telemetry.spool_max_bytes: expected at least twice segment_bytes "
            f"({2 * settings.segment_bytes}), got {settings.spool_max_bytes}"
        )
    return settings
