"""Record bodies, built on the publisher thread from what the loop handed over (PROTOCOL.md, "Record kinds").

Each function returns a plain dict of msgpack-ready values (the allocation happens here, off the loop thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edge import __version__, kernels
from edge.telemetry.window import COUNTERS, WindowRing, WindowSlot

__all__ = ["event_body", "heartbeat_body", "hello_body", "sanitize", "window_body"]


def hello_body(ring: WindowRing, window_s: float) -> dict[str, Any]:
    """What the device is: software, kernel backend, live model, profile, features with their bin edges."""
    by_name = {f.name: f for f in ring.profile.features}
    return {
        "software": f"edge {__version__}",
        "kernels": kernels.BACKEND,
        "model": ring.model_version,
        "profile": ring.profile_id,
        "window_s": float(window_s),
        "features": [{"name": n, "edges": by_name[n].edges.tolist()} for n in ring.names],
        "latency_edges_us": ring.lat_edges.tolist(),
    }


def window_body(ring: WindowRing, slot: WindowSlot, extra: Mapping[str, int]) -> dict[str, Any]:
    """One closed window: feature sketches, per-stage latency sketches (µs), top-1 class counts, counters
    (the slot's plus ``extra``: the publisher's own, e.g. ``spool_evicted``)."""
    counters = {name: int(v) for name, v in zip(COUNTERS, slot.counters.tolist(), strict=True)}
    counters.update({k: int(v) for k, v in extra.items()})
    return {
        "model": ring.model_version,
        "profile": ring.profile_id,
        "start_ns": int(slot.start_ns),
        "end_ns": int(slot.end_ns),
        "features": slot.features.wire(),
        "latency": slot.latency.wire(),
        "predictions": list(slot.predictions),
        "counters": counters,
    }


def sanitize(value: Any, depth: int = 0) -> Any:
    """An event field as msgpack-ready plain data: str/int/float/bool/None, lists and str-keyed maps (nested at
    most 4 deep); anything else becomes its ``str``; ints outside int64 become strings, strings are cut at 200
    characters."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if -(1 << 63) <= value < (1 << 63) else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value[:200]
    if depth < 4 and isinstance(value, Mapping):
        return {str(k)[:200]: sanitize(v, depth + 1) for k, v in list(value.items())[:64]}
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        return [sanitize(v, depth + 1) for v in list(value)[:64]]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return sanitize(value.item(), depth)
        except (TypeError, ValueError):
            pass
    return str(value)[:200]


def event_body(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": str(name)[:200] or "event", "fields": sanitize(dict(fields))}


def heartbeat_body(pending: int, spool_bytes: int) -> dict[str, Any]:
    return {"pending": int(pending), "spool_bytes": int(spool_bytes)}
