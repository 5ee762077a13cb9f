"""The collector's record-frame readers: a native fast accept for ``window`` frames (ingest) and a native digest of
stored windows for the drift engine (scoring), each with its Python twin.

:func:`window_envelope` returns ``(device, boot, seq, t_ns, wall_ns)`` for a frame that is a valid ``window``
record (docs/PROTOCOL.md §3, §4.2, §6) and None for anything else; the server then decodes the frame with the
shared validator (:func:`edge.telemetry.protocol.decode_frame`), which accepts or rejects it and says why. The
compiled kernel (``native/wire.pyx``) reads the msgpack bytes in place, builds no Python objects besides the
envelope, and only ever accepts what the validator accepts (it answers None where in doubt); its twin,
:func:`window_envelope_twin`, is the validator itself. The choice is made once, at import, like
:mod:`edge.kernels`: ``EDGE_PUREPYTHON=1`` forces the twin; a missing build warns
(:class:`~edge.kernels.NativeKernelsMissing`) and uses the twin. :data:`BACKEND` names the active one.

:func:`window_digest_block` is what the scoring thread uses instead of a decoded body of ~400 Python objects per
window: a device's queued windows at once
(:meth:`~edge.collector.engine.DriftEngine.digest_layout`, :meth:`~edge.collector.engine.DriftEngine.observe_digests`),
every value the engine reads written into two float64 blocks, no Python object per window; the native one reads
the frames without holding the GIL. Its twin is :func:`window_digest_block_twin`.
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
    "implementations",
    "window_digest_block",
    "window_digest_block_twin",
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


def _int_list(x: Any) -> bool:
    return type(x) is list and all(type(v) is int for v in x)


def window_digest_block_twin(
    frames: list[bytes],
    model: str,
    names: tuple[str, ...],
    lengths: tuple[int, ...],
    width: int,
    moments_row: int,
    stage: str,
    n_lat: int,
    n_pred: int,
    counts: np.ndarray,
    extra: np.ndarray,
    ok: np.ndarray,
) -> int:
    """The twin of the native block digest (msgpack, then NumPy): for each frame ``i`` that is a window of
    ``model`` (in a validated record) with every feature of ``names`` at its length in ``lengths``, its counts
    packed into ``counts[i]`` (float64 (F, ``width``): row r holds ``c[:-1]``, zeros, the NaN count last) and into
    ``extra[i]`` (float64): ``[frames, deadline_misses, fallbacks, m0, m0 * m1`` (the moments of feature
    ``moments_row`` when ``m0 > 0``, else 0), ``lat_flag, lat counts (n_lat)…, pred_flag, pred counts (n_pred)…]``;
    a flag is 1 when the latency sketch ``stage`` / the predictions had that many counts (``-1``: never read), and
    the counts are then there. ``ok[i]`` 1 when digested, 0 when not (decode it whole; the native reader also
    answers 0 for a repeated key). Arrays are the caller's. Returns the number digested; ValueError when the
    layout does not describe the arrays."""
    k, f = len(frames), len(names)
    lat_at = 5
    pred_at = 6 + max(n_lat, 0)
    n_extra = pred_at + 1 + max(n_pred, 0)
    if (
        not 1 <= f <= 256
        or len(lengths) != f
        or width < 2
        or not -1 <= moments_row < f
        or counts.ndim != 3
        or counts.shape[0] < k
        or counts.shape[1:] != (f, width)
        or extra.ndim != 2
        or extra.shape[0] < k
        or extra.shape[1] != n_extra
        or ok.shape[0] < k
    ):
        raise ValueError(
            f"window_digest_block: expected counts (>={k}, {f}, {width}), extra (>={k}, {n_extra}), ok (>={k},), "
            f"got {counts.shape}, {extra.shape}, {ok.shape[0]}"
        )
    for name, n in zip(names, lengths, strict=True):
        if type(name) is not str or not 1 <= n <= width:
            raise ValueError(
                f"window_digest_block: expected names (str) with 1..{width} counts, got {name!r} with {n!r}"
            )
    for i, frame in enumerate(frames):
        counts[i] = 0.0
        extra[i] = 0.0
        ok[i] = _digest_one_twin(frame, model, names, lengths, width, moments_row, stage, n_lat, n_pred,
                                 counts[i], extra[i], lat_at, pred_at)  # fmt: skip
    return int(np.count_nonzero(ok[:k]))


def _digest_one_twin(
    frame: Any,
    model: str,
    names: tuple[str, ...],
    lengths: tuple[int, ...],
    width: int,
    moments_row: int,
    stage: str,
    n_lat: int,
    n_pred: int,
    counts: np.ndarray,
    extra: np.ndarray,
    lat_at: int,
    pred_at: int,
) -> bool:
    if type(frame) is not bytes:
        return False
    try:
        record = msgpack.unpackb(frame, raw=False)
    except Exception:  # not a stored window: the caller decodes it whole
        return False
    body = record.get("body") if type(record) is dict else None
    if type(body) is not dict or not {"model", "features", "latency", "predictions", "counters"} <= body.keys():
        return False
    feats, latency, preds, counters = body["features"], body["latency"], body["predictions"], body["counters"]
    if body["model"] != model or type(feats) is not dict or type(latency) is not dict or type(counters) is not dict:
        return False
    if not _int_list(preds) or not all(type(k) is str and type(v) is int for k, v in counters.items()):
        return False
    if not all(type(sketch) is dict for sketch in feats.values()):
        return False
    rows = []
    for name, n in zip(names, lengths, strict=True):
        c = feats.get(name, {}).get("c")
        if type(c) is not list or len(c) != n or not all(type(v) is int and v >= 0 for v in c):
            return False
        rows.append(c)
    m = None
    if moments_row >= 0:
        m = feats[names[moments_row]].get("m")
        if type(m) is not list or len(m) < 2 or not all(type(v) in (int, float) for v in m):
            return False
    st = latency.get(stage)
    if st is not None and (type(st) is not dict or not _int_list(st.get("c"))):
        return False
    for r, c in enumerate(rows):
        counts[r, : len(c) - 1] = c[:-1]
        counts[r, width - 1] = c[-1]
    extra[0:3] = [counters.get("frames", 0), counters.get("deadline_misses", 0), counters.get("fallbacks", 0)]
    if m is not None and m[0] > 0:
        extra[3], extra[4] = float(m[0]), float(m[0]) * float(m[1])
    if st is not None and n_lat >= 0 and len(st["c"]) == n_lat:
        extra[lat_at] = 1.0
        extra[lat_at + 1 : lat_at + 1 + n_lat] = st["c"]
    if n_pred >= 0 and len(preds) == n_pred:
        extra[pred_at] = 1.0
        extra[pred_at + 1 : pred_at + 1 + n_pred] = preds
    return True


def implementations(backend: str) -> tuple[Callable[..., Envelope | None], Callable[..., int]]:
    """``(window_envelope, window_digest_block)`` of ``backend`` ("native" or "python");
    ImportError when the native ones are not built."""
    if backend == "python":
        return window_envelope_twin, window_digest_block_twin
    if backend != "native":
        raise ValueError(f"backend: expected 'native' or 'python', got {backend!r}")
    from edge._native.wire_digest import window_digest_block as block
    from edge._native.wire_accept import window_envelope as envelope

    return envelope, block


def _select() -> tuple[str, tuple[Callable[..., Envelope | None], Callable[..., int]]]:
    if os.environ.get("EDGE_PUREPYTHON", "") not in ("", "0"):
        return "python", implementations("python")
    try:
        return "native", implementations("native")
    except ImportError as exc:
        warnings.warn(
            f"edge: the compiled frame readers are not available ({exc}); using their twins — {BUILD_HINT}",
            NativeKernelsMissing,
            stacklevel=2,
        )
        return "python", implementations("python")


BACKEND, (window_envelope, window_digest_block) = _select()
