"""Telemetry: window sketches on the loop thread, a publisher that never blocks the loop and never loses a record.

The wire protocol is normative in docs/PROTOCOL.md; :mod:`edge.telemetry.protocol` is its codec and validator
(shared with the collector), :class:`edge.telemetry.security.ZapAllowList` the collector's side of CURVE.
The device service (:mod:`edge.device.service`) builds the tap with :func:`tap_from_config` from the device.toml
``[telemetry]`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.telemetry.config import TelemetrySettings, parse_telemetry
from edge.telemetry.protocol import ProtocolError, Record, decode_frame, encode_record
from edge.telemetry.tap import TelemetryTap, default_device_id

__all__ = [
    "ProtocolError",
    "Record",
    "TelemetrySettings",
    "TelemetryTap",
    "decode_frame",
    "default_device_id",
    "encode_record",
    "parse_telemetry",
    "tap_from_config",
]


def tap_from_config(table: Mapping[str, Any], *, device_id: str | None, base_dir: Path) -> TelemetryTap:
    """Validate the ``[telemetry]`` table (:class:`~edge.errors.ConfigError` naming ``telemetry.<key>``) and
    build a started :class:`TelemetryTap`. ``device_id`` defaults to ``/etc/machine-id`` or the host name;
    the boot id is new for every call (every process start). Relative paths are taken from ``base_dir``."""
    settings = parse_telemetry(table, Path(base_dir))
    return TelemetryTap(settings, device_id=device_id)
