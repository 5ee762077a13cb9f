"""The pure-Python twins of the wire kernels: ``native/wire_accept.pyx`` (the collector's fast accept of ``window``
record frames) and ``native/wire_digest.pyx`` (the scoring thread's block digest of stored windows).

Same signatures and the same answers as the compiled readers, built on ``msgpack.unpackb`` with the limits of the
shared validator (:func:`edge.telemetry.protocol.decode_frame`, the authority on what a valid record is; this layer
sits below telemetry and does not import it — the tests hold both readers to the validator's verdicts). Where a map
repeats a key they read what a dict keeps (the last one); the compiled readers decline such a frame (the caller
then decodes it whole). Both write only into caller-owned arrays; these allocate the decoded record.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import msgpack
import numpy as np

from edge import _kernel_checks as _checks

__all__ = ["Envelope", "layout_key", "window_accept", "window_digest_block", "window_envelope"]

Envelope = tuple[str, str, int, int, int]  # device, boot, seq, t_ns (device loop clock, ns), wall_ns (Unix, ns)

# docs/PROTOCOL.md §6 (the validator's limits, edge.telemetry.protocol)
MAX_FRAME_BYTES = 1 << 20
MAX_NAME_BYTES = 256  # names, ids
MAX_FEATURES = 256
MAX_STAGES = 32
MAX_BINS = 258
MAX_CLASSES = 4096
MAX_COUNTERS = 64
MIN_I64, MAX_I64 = -(1 << 63), (1 << 63) - 1
_HEX = frozenset("0123456789abcdef")
_ENVELOPE_KEYS = frozenset({"v", "kind", "device", "boot", "seq", "t_ns", "wall_ns", "body"})
_WINDOW_KEYS = frozenset({"model", "profile", "start_ns", "end_ns", "features", "latency", "predictions", "counters"})


def _no_ext(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack extension type {code}")


def _unpack(frame: bytes) -> Any:
    """The frame as the validator decodes it (the same msgpack limits); raises on anything msgpack refuses."""
    return msgpack.unpackb(
        frame, raw=False, strict_map_key=True, ext_hook=_no_ext, max_str_len=4 * MAX_NAME_BYTES,
        max_bin_len=768 << 10, max_array_len=4096, max_map_len=512, max_ext_len=0,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------- fast accept


def _name(x: Any, nonempty: bool = True) -> bool:
    return type(x) is str and (bool(x) or not nonempty) and len(x.encode("utf-8")) <= MAX_NAME_BYTES


def _profile_id(x: Any) -> bool:
    """16 lowercase hex digits, or empty (no profile): PROTOCOL.md §8."""
    return type(x) is str and (x == "" or (len(x) == 16 and set(x) <= _HEX))


def _uints(items: list[Any]) -> bool:
    """All exact ``int`` (not bool) in [0, 2**64 - 1], in one C pass each (``map(type)``, ``array("Q")``)."""
    if list(map(type, items)).count(int) != len(items):
        return False
    try:
        array("Q", items)
    except OverflowError:
        return False
    return True


def _i64(x: Any, lo: int = MIN_I64) -> bool:
    return type(x) is int and lo <= x <= MAX_I64


def _sketches(m: Any, limit: int) -> bool:
    """At most ``limit`` entries name → ``{"c": 3..258 uints, "m": 5 numbers, ...}``."""
    if type(m) is not dict or len(m) > limit:
        return False
    for name, sketch in m.items():
        if not _name(name) or type(sketch) is not dict or "c" not in sketch or "m" not in sketch:
            return False
        c, moments = sketch["c"], sketch["m"]
        if type(c) is not list or not 3 <= len(c) <= MAX_BINS or not _uints(c):
            return False
        if type(moments) is not list or len(moments) != 5 or not {*map(type, moments)} <= {int, float}:
            return False
        if not _moments_ok(c, moments):
            return False
    return True


def _moments_ok(c: list[int], m: list[int | float]) -> bool:
    """``[count, mean, M2, min, max]`` can be true: count, mean, M2 finite, 0 <= count <= sum(c[:-1]) (the finite
    values' columns), M2 >= 0, min and max not NaN (edge.telemetry.bulk.moments_ok, the validator's rule)."""
    n, mean, m2, lo, hi = m
    finite = math.isfinite(n) and math.isfinite(mean) and math.isfinite(m2)
    return finite and 0 <= n <= sum(c) - c[-1] and m2 >= 0 and not math.isnan(lo) and not math.isnan(hi)


def _window_body(b: Any) -> bool:
    """PROTOCOL.md §4.2."""
    if type(b) is not dict or not _WINDOW_KEYS <= b.keys():
        return False
    if not (_name(b["model"], nonempty=False) and _profile_id(b["profile"])):
        return False
    if not (_i64(b["start_ns"]) and _i64(b["end_ns"]) and b["end_ns"] > b["start_ns"]):
        return False
    predictions, counters = b["predictions"], b["counters"]
    if type(predictions) is not list or len(predictions) > MAX_CLASSES or not _uints(predictions):
        return False
    if type(counters) is not dict or "frames" not in counters or len(counters) > MAX_COUNTERS:
        return False
    if not all(map(_name, counters)) or not _uints(list(counters.values())):
        return False
    return _sketches(b["features"], MAX_FEATURES) and _sketches(b["latency"], MAX_STAGES)


def window_envelope(frame: bytes) -> Envelope | None:
    """``(device, boot, seq, t_ns, wall_ns)`` of a valid ``window`` record frame (``bytes``, not kept), None for
    anything else (another kind, another type, anything the validator would refuse): then the validator decides."""
    if type(frame) is not bytes or len(frame) > MAX_FRAME_BYTES:
        return None
    try:
        rec = _unpack(frame)
    except Exception:  # whatever msgpack refuses (or fails on: deep nesting) is not a valid window
        return None
    if type(rec) is not dict or not _ENVELOPE_KEYS <= rec.keys():
        return None
    v, seq = rec["v"], rec["seq"]
    if type(v) is not int or v != 1 or rec["kind"] != "window" or not (_name(rec["device"]) and _name(rec["boot"])):
        return None
    if not (_i64(seq, 1) and _i64(rec["t_ns"]) and _i64(rec["wall_ns"], 0) and _window_body(rec["body"])):
        return None
    return rec["device"], rec["boot"], seq, rec["t_ns"], rec["wall_ns"]


_FNV_OFFSET, _FNV_PRIME, _MIX, _U64 = 0xCBF29CE484222325, 0x100000001B3, 0x9E3779B97F4A7C15, (1 << 64) - 1


def _fnv(x: int, data: bytes) -> int:
    for b in data:
        x = ((x ^ b) * _FNV_PRIME) & _U64
    return x


def layout_key(model: str, features: dict[str, Any]) -> int:
    """A window body's layout key: FNV-1a 64 of the model's UTF-8 bytes times the FNV prime, plus (mod 2**64), per
    feature, ``MIX`` times the FNV-1a of its name's bytes continued over its count length (2 bytes, little-endian).
    Order-free; equal for windows whose features a reference reads alike (then one check answers for all)."""
    acc = 0
    for name, sketch in features.items():
        n = len(sketch["c"])
        acc += _fnv(_fnv(_FNV_OFFSET, name.encode("utf-8")), bytes((n & 0xFF, n >> 8))) * _MIX
    return (_fnv(_FNV_OFFSET, model.encode("utf-8")) * _FNV_PRIME + acc) & _U64


def window_accept(frame: bytes) -> tuple[str, str, int, int, int, int] | None:
    """:func:`window_envelope` plus the body's :func:`layout_key`."""
    env = window_envelope(frame)
    if env is None:
        return None
    body = _unpack(frame)["body"]
    return (*env, layout_key(body["model"], body["features"]))


# --------------------------------------------------------------------------------------------------- block digest


def _int_list(x: Any) -> bool:
    return type(x) is list and all(type(v) is int for v in x)


def window_digest_block(
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
    """For each frame ``i`` that is a window of ``model`` (in a validated record) with every feature of ``names`` at
    its length in ``lengths``, its counts packed into ``counts[i]`` (float64 (F, ``width``): row r holds ``c[:-1]``,
    zeros, the NaN count last) and into ``extra[i]`` (float64): ``[frames, deadline_misses, fallbacks, m0, m0 * m1``
    (the moments of feature ``moments_row`` when ``m0 > 0``, else 0), ``lat_flag, lat counts (n_lat)…, pred_flag,
    pred counts (n_pred)…]``; a flag is 1 when the latency sketch ``stage`` / the predictions had that many counts
    (``-1``: never read), and the counts are then there. ``ok[i]`` 1 when digested, 0 when not (decode it whole;
    the native reader also answers 0 for a repeated key). Arrays are the caller's. Returns the number digested;
    ShapeError when the layout does not describe the arrays (both backends check with
    :func:`edge._kernel_checks.digest_block`)."""
    _checks.digest_block(len(frames), names, lengths, width, moments_row, n_lat, n_pred, counts, extra, ok)
    lat_at, pred_at = 5, 6 + max(n_lat, 0)
    for i, frame in enumerate(frames):
        counts[i] = 0.0
        extra[i] = 0.0
        ok[i] = _digest_one(frame, model, names, lengths, width, moments_row, stage, n_lat, n_pred,
                            counts[i], extra[i], lat_at, pred_at)  # fmt: skip
    return int(np.count_nonzero(ok[: len(frames)]))


def _digest_one(
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
