"""Capture records (docs/PROTOCOL.md §4.4: frames a device kept for low confidence, drift or sampling, as a
collector stores them) → one MCAP file that Foxglove opens, for ``edge captures export``.

Per device two channels (:mod:`edge.io.mcap_schema`): ``/edge/captures/<device>/image`` (``foxglove.RawImage``,
``rgb8``: a capture does not say its channel order, and the loop's frames are RGB by default) and
``/edge/captures/<device>/info`` (``edge.Capture``: device, boot, record seq, model, frame_seq, capture_ns, reason,
confidence, drift score); both logged at the capture time. Only ``(H, W, 3)`` uint8 zlib captures are images; any
other record is skipped and counted with the reason (:attr:`CaptureExport.skipped`), never an error of the export.
This module takes the records as an iterable, so it does not depend on the collector (the CLI hands it the store's
``iter_records("capture")``).
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.io.mcap_schema import SCHEMAS, encode_image

__all__ = ["CaptureExport", "export_captures"]

CaptureRecord = tuple[str, str, int, int, dict[str, Any]]  # (device, boot, seq, t_ns, body): iter_records' rows


@dataclass
class CaptureExport:
    """What :func:`export_captures` wrote: ``images`` per device, and ``skipped`` records by reason."""

    path: Path
    images: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def _frame(body: dict[str, Any]) -> np.ndarray:
    """The capture's pixels as an (H, W, 3) uint8 array; ValueError whose first argument says what is wrong."""
    shape = tuple(body.get("shape") or ())
    if body.get("dtype") != "uint8" or len(shape) != 3 or shape[2] != 3:
        raise ValueError("not an (H, W, 3) uint8 image")
    if body.get("codec") != "zlib":
        raise ValueError(f"codec {body.get('codec')!r}, expected 'zlib'")
    try:
        raw = zlib.decompress(body["data"])
    except (zlib.error, KeyError, TypeError):
        raise ValueError("unreadable zlib data") from None
    if len(raw) != math.prod(shape):
        raise ValueError("pixel bytes do not match the shape")
    return np.frombuffer(raw, np.uint8).reshape(shape)


def _number(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def export_captures(records: Iterable[CaptureRecord], out: str | Path) -> CaptureExport:
    """Write the capture ``records`` into the MCAP file ``out`` (replaced if it exists)."""
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError as exc:
        raise ConfigError(f"captures export needs the mcap package: pip install 'edge[record]' ({exc})") from exc
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"captures export --out: expected a file in an existing folder, got {out}")
    result = CaptureExport(out)
    with out.open("wb") as f:
        w = Writer(f, compression=CompressionType.NONE)
        w.start(profile="", library="edge")
        schemas = {t: w.register_schema(t, "jsonschema", json.dumps(SCHEMAS[t]).encode()) for t in SCHEMAS}
        channels: dict[str, tuple[int, int]] = {}
        for device, boot, seq, _t_ns, body in records:
            try:
                frame = _frame(body)
            except ValueError as exc:
                result.skipped[str(exc.args[0])] += 1
                continue
            if device not in channels:
                base = f"/edge/captures/{device}"
                channels[device] = (
                    w.register_channel(f"{base}/image", "json", schemas["foxglove.RawImage"]),
                    w.register_channel(f"{base}/info", "json", schemas["edge.Capture"]),
                )
            image_ch, info_ch = channels[device]
            cap = int(body.get("capture_ns", 0))
            info = {
                "device": device,
                "boot": boot,
                "seq": seq,
                "model": str(body.get("model", "")),
                "frame_seq": int(body.get("frame_seq", 0)),
                "capture_ns": cap,
                "reason": str(body.get("reason", "")),
                "confidence": _number(body.get("confidence")),
                "drift_score": _number(body.get("drift_score")),
            }
            log_ns = max(cap, 0)
            w.add_message(image_ch, log_time=log_ns, publish_time=log_ns, data=encode_image(frame, cap, device, "RGB"))
            w.add_message(info_ch, log_time=log_ns, publish_time=log_ns, data=json.dumps(info).encode())
            result.images[device] += 1
        w.finish()
    return result
