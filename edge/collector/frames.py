"""The collector's record-frame readers: a native fast accept for ``window`` frames (ingest) and a native digest of
a stored window for the drift engine (scoring), each with its Python twin.

:func:`window_envelope` returns ``(device, boot, seq, t_ns, wall_ns)`` for a frame that is a valid ``window``
record (docs/PROTOCOL.md §3, §4.2, §6) and None for anything else; the server then decodes the frame with the
shared validator (:func:`edge.telemetry.protocol.decode_frame`), which accepts or rejects it and says why. The
compiled kernel (``native/wire.pyx``) reads the msgpack bytes in place, builds no Python objects besides the
envelope, and only ever accepts what the validator accepts (it answers None where in doubt); its twin,
:func:`window_envelope_twin`, is the validator itself. The choice is made once, at import, like
:mod:`edge.kernels`: ``EDGE_PUREPYTHON=1`` forces the twin; a missing build warns
(:class:`~edge.kernels.NativeKernelsMissing`) and uses the twin. :data:`BACKEND` names the active one.

:func:`window_digest` gives the scoring thread what :meth:`~edge.collector.engine.DriftEngine.observe_window` reads
of a window, with the feature counts packed straight into a float64 array in the engine's layout
(:meth:`~edge.collector.engine.DriftEngine.counts_layout`) instead of a decoded body of ~400 Python objects; its
twin, :func:`window_digest_twin`, decodes the frame with msgpack and packs the counts with NumPy.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from edge.errors import ProtocolError
from edge.kernels import BUILD_HINT, NativeKernelsMissing
from edge.telemetry.protocol import decode_frame

__all__ = [
    "BACKEND",
    "Envelope",
    "implementation",
    "window_digest",
    "window_digest_twin",
    "window_envelope",
    "window_envelope_twin",
]

Envelope = tuple[str, str, int, int, int]  # device, boot, seq, t_ns (device loop clock, ns), wall_ns (Unix, ns)


def window_envelope_twin(frame: bytes) -> Envelope | None:
    """The twin: the shared validator's verdict on ``frame`` (not kept), the envelope when it is a valid window."""
    if type(frame) is not bytes:
        return None
    try:
        rec = decode_frame(frame)
    except (ProtocolError, RecursionError, MemoryError, ValueError, TypeError, KeyError, OverflowError):
        return None
    if rec.kind != "window":
        return None
    return rec.device, rec.boot, rec.seq, rec.t_ns, rec.wall_ns


def window_digest_twin(
    frame: bytes,
    model: str,
    index: dict[str, int],
    lengths: tuple[int, ...],
    width: int,
    out: np.ndarray,
    moments_of: str | None = None,
) -> dict[str, Any] | None:
    """What the drift engine reads of a validated window frame of ``model``: the counts of the features in
    ``index`` (name → row) packed into ``out`` (float64 (F, ``width``), the caller's, zeroed here; row ``r`` holds
    ``c[:-1]`` of ``lengths[r]`` counts, then zeros, the NaN count ``c[-1]`` in the last column), and a body with
    ``model``, ``counters``, ``latency`` (``{stage: {"c": counts}}``), ``predictions`` and ``features``
    (``{moments_of: {"m": moments}}``, or {}). None when the frame is not a window of ``model`` with every feature of
    ``index`` at its length, or when ``index``/``lengths`` do not describe ``out`` (the caller then decodes it whole
    and lets the engine say what is wrong)."""
    if type(frame) is not bytes or out.shape != (len(index), width) or width < 2:
        return None
    if sorted(index.values()) != list(range(len(index))) or len(lengths) != len(index):
        return None  # rows 0..F-1, once each
    if not all(1 <= n <= width for n in lengths):
        return None
    out[...] = 0.0
    try:
        record = msgpack.unpackb(frame, raw=False)
    except Exception:  # not a stored window: the caller decodes it whole
        return None
    body = record.get("body") if type(record) is dict else None
    if type(body) is not dict or body.get("model") != model:
        return None
    feats = body.get("features")
    if type(feats) is not dict:
        return None
    for name, row in index.items():
        counts = feats.get(name, {}).get("c")
        if type(counts) is not list or len(counts) != lengths[row]:
            return None
        out[row, : len(counts) - 1] = counts[:-1]
        out[row, width - 1] = counts[-1]
    moments = {}
    if moments_of in index and "m" in feats.get(moments_of, {}):
        moments[moments_of] = {"m": feats[moments_of]["m"]}
    latency = {stage: ({"c": s["c"]} if "c" in s else {}) for stage, s in body["latency"].items()}
    return {"model": model, "features": moments, "latency": latency, "predictions": body["predictions"],
            "counters": body["counters"]}  # fmt: skip


def implementation(backend: str) -> tuple[Callable[..., Envelope | None], Callable[..., dict[str, Any] | None]]:
    """``(window_envelope, window_digest)`` of ``backend`` ("native" or "python"); ImportError when the native
    ones are not built."""
    if backend == "python":
        return window_envelope_twin, window_digest_twin
    if backend != "native":
        raise ValueError(f"backend: expected 'native' or 'python', got {backend!r}")
    from edge._native.wire import window_digest as digest
    from edge._native.wire import window_envelope as envelope

    return envelope, digest


def _select() -> tuple[str, tuple[Callable[..., Envelope | None], Callable[..., dict[str, Any] | None]]]:
    if os.environ.get("EDGE_PUREPYTHON", "") not in ("", "0"):
        return "python", implementation("python")
    try:
        return "native", implementation("native")
    except ImportError as exc:
        warnings.warn(
            f"edge: the compiled frame readers are not available ({exc}); using their twins — {BUILD_HINT}",
            NativeKernelsMissing,
            stacklevel=2,
        )
        return "python", implementation("python")


BACKEND, (window_envelope, window_digest) = _select()
