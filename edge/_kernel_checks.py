"""Argument validation shared by the compiled kernels (edge._native) and their NumPy twins (edge.kernels.reference).

It lives outside the edge.kernels package so that importing a compiled module never runs the backend selection
in edge.kernels (which imports the compiled modules: a cycle).

Both implementations call these functions first, so the same bad input raises the same exception type with the same
message whichever backend is active. Array problems (dtype, shape, layout, writability) raise
:class:`~edge.errors.ShapeError`; bad parameter values (unsorted edges, k out of range) raise
:class:`~edge.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from edge.errors import ConfigError, ShapeError

LAYOUTS = ("NCHW", "NHWC")
MAX_CHANNELS = 4
PIXEL_DTYPES = (np.dtype(np.float32), np.dtype(np.int8), np.dtype(np.uint8))
QUANT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))
REAL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ResizePlan(NamedTuple):
    """Bilinear resize tables for one (source size → model size) pair; see :func:`edge.kernels.tables.resize_plan`.

    ``src_hw`` is the (H, W) frame size the plan reads from; ``xofs``/``yofs`` (int32, ``(n, 2)``) are the two
    source columns/rows each output column/row reads; ``xalpha``/``ybeta`` (int16, ``(n, 2)``) their fixed-point
    weights, summing to 2048.
    """

    src_hw: tuple[int, int]
    xofs: np.ndarray
    xalpha: np.ndarray
    yofs: np.ndarray
    ybeta: np.ndarray


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def array(
    name: str,
    a: object,
    dtypes: Sequence[np.dtype] | np.dtype,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple[int | None, ...] | None = None,
    writable: bool = False,
    contiguous: bool = False,
) -> np.ndarray:
    """Check that ``a`` is an ndarray of one of ``dtypes`` (and ``ndim``/``shape``); return it.

    ``shape`` entries that are ``None`` match any size. Cheap on success (this runs on every kernel call); the
    message is only built on failure.
    """
    allowed = dtypes if isinstance(dtypes, (tuple, list)) else (dtypes,)
    if not isinstance(a, np.ndarray) or a.dtype not in allowed:
        raise ShapeError(f"{name}: expected {_want(allowed, ndim, shape)}, got {_describe(a)}")
    if ndim is not None and (a.ndim != ndim if isinstance(ndim, int) else a.ndim not in ndim):
        raise ShapeError(f"{name}: expected {_want(allowed, ndim, shape)}, got {_describe(a)}")
    if (
        shape is not None
        and a.shape != shape  # the usual case, a fully given shape that matches, costs one tuple comparison
        and (a.ndim != len(shape) or any(w is not None and w != s for w, s in zip(shape, a.shape, strict=True)))
    ):
        raise ShapeError(f"{name}: expected {_want(allowed, ndim, shape)}, got {_describe(a)}")
    if writable and not a.flags.writeable:
        raise ShapeError(f"{name}: expected a writable array, got a read-only {_describe(a)}")
    if contiguous and not a.flags.c_contiguous:
        raise ShapeError(f"{name}: expected a C-contiguous array, got a strided {_describe(a)}")
    return a


def _want(allowed: Sequence[object], ndim: int | tuple[int, ...] | None, shape: tuple[int | None, ...] | None) -> str:
    names = " or ".join(str(np.dtype(d)) for d in allowed)
    if shape is not None:
        return f"{names} array of shape {_fmt_shape(shape)}"
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else ndim
        return f"{' or '.join(map(str, dims))}-D {names} array"
    return f"{names} array"


def _fmt_shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "(any)"
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------------------------------- preprocessing


def preprocess(
    src: object,
    out: object,
    layout: str,
    lut: object,
    plan: ResizePlan | None,
    channel_map: object,
    stats: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a ``preprocess_frame`` call; return ``(src, out_hwc)`` where ``out_hwc`` views ``out`` as (h, w, C)."""
    src = array("src", src, np.uint8, ndim=3)
    if layout not in LAYOUTS:
        raise ConfigError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    out = array("out", out, PIXEL_DTYPES, ndim=(3, 4), writable=True)
    if out.ndim == 4:
        if out.shape[0] != 1:
            raise ShapeError(f"out: expected a batch of 1 in {layout}, got {_describe(out)}")
        out = out[0]
    out_hwc = out.transpose(1, 2, 0) if layout == "NCHW" else out
    h, w, c = out_hwc.shape
    if h < 1 or w < 1 or not 1 <= c <= MAX_CHANNELS:
        raise ShapeError(
            f"out: expected a non-empty {layout} tensor of 1 to {MAX_CHANNELS} channels, got {_describe(out)}"
        )
    if src.shape[0] < 1 or src.shape[1] < 1:
        raise ShapeError(f"src: expected a non-empty (H, W, channels) uint8 frame, got {_describe(src)}")
    array("lut", lut, out.dtype, shape=(c, 256), contiguous=True)
    cmap = array("channel_map", channel_map, np.int32, shape=(c,), contiguous=True).tolist()
    if min(cmap) < 0 or max(cmap) >= src.shape[2]:
        raise ConfigError(f"channel_map: expected source channel indices in [0, {src.shape[2]}), got {cmap}")
    array("stats", stats, np.float64, shape=(2, c), writable=True)
    if plan is None:
        if (h, w) != src.shape[:2]:
            raise ShapeError(
                f"out: without a resize plan the model size must equal the frame size {src.shape[:2]}, got {(h, w)}"
            )
    else:
        if not isinstance(plan, ResizePlan):
            raise ShapeError(
                f"plan: expected a ResizePlan from edge.kernels.tables.resize_plan(), got {_describe(plan)}"
            )
        if tuple(plan.src_hw) != src.shape[:2]:
            raise ShapeError(f"plan: made for a {tuple(plan.src_hw)} frame, got a {src.shape[:2]} frame")
        for name, a, dtype, n in (
            ("xofs", plan.xofs, np.int32, w),
            ("xalpha", plan.xalpha, np.int16, w),
            ("yofs", plan.yofs, np.int32, h),
            ("ybeta", plan.ybeta, np.int16, h),
        ):
            array(f"plan.{name}", a, dtype, shape=(n, 2), contiguous=True)
            if a.flags.writeable:  # resize_plan() validates the tables and freezes them; anything else is suspect
                raise ShapeError(
                    f"plan.{name}: expected the read-only tables made by resize_plan(), got a writable array"
                )
    return src, out_hwc


# ------------------------------------------------------------------------------------------------ (de)quantization


def quant_params(
    scale: object, zero_point: object, shape: tuple[int, ...], axis: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate per-tensor or per-channel parameters; return ``(scale, zero_point, axis)`` with ``axis`` in 0..3 of
    the array promoted to 4-D by prepending unit axes (``axis`` is -1 for per-tensor)."""
    scale = array("scale", scale, np.float32, ndim=1)
    zero_point = array("zero_point", zero_point, np.int32, shape=(scale.shape[0],))
    if scale.shape[0] < 1:
        raise ShapeError("scale: expected 1 (per-tensor) or C (per-channel) values, got none")
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ConfigError(f"scale: expected finite values > 0, got {scale.tolist()[:8]}")
    ndim = len(shape)
    if ndim < 1 or ndim > 4:
        raise ShapeError(f"expected an array of 1 to 4 dimensions, got shape {shape}")
    if scale.shape[0] == 1:
        return scale, zero_point, -1
    if not -ndim <= axis < ndim:
        raise ConfigError(f"axis: expected an axis of a {ndim}-D array, got {axis}")
    axis %= ndim
    if shape[axis] != scale.shape[0]:
        raise ShapeError(
            f"scale: expected {shape[axis]} per-channel values (axis {axis} of {shape}), got {scale.shape[0]}"
        )
    return scale, zero_point, axis + (4 - ndim)


def quantize(x: object, scale: object, zero_point: object, out: object, axis: int):
    x = array("x", x, REAL_DTYPES, ndim=(1, 2, 3, 4))
    out = array("out", out, QUANT_DTYPES, shape=x.shape, writable=True)
    scale, zero_point, axis4 = quant_params(scale, zero_point, x.shape, axis)
    _zero_point_range(zero_point, out.dtype)
    return x, scale, zero_point, out, axis4


def dequantize(q: object, scale: object, zero_point: object, out: object, axis: int):
    q = array("q", q, QUANT_DTYPES, ndim=(1, 2, 3, 4))
    out = array("out", out, np.float32, shape=q.shape, writable=True)
    scale, zero_point, axis4 = quant_params(scale, zero_point, q.shape, axis)
    _zero_point_range(zero_point, q.dtype)
    return q, scale, zero_point, out, axis4


def _zero_point_range(zero_point: np.ndarray, dtype: np.dtype) -> None:
    info = np.iinfo(dtype)
    if zero_point.min() < info.min or zero_point.max() > info.max:
        raise ConfigError(
            f"zero_point: expected values in [{info.min}, {info.max}] for {dtype}, got {zero_point.tolist()[:8]}"
        )


def promote4(a: np.ndarray) -> np.ndarray:
    """View ``a`` as 4-D by prepending unit axes (always a view, never a copy)."""
    return a[(None,) * (4 - a.ndim)] if a.ndim < 4 else a


# ------------------------------------------------------------------------------------------------- postprocessing


def softmax_topk(logits: object, probs: object, top_idx: object, top_val: object):
    logits = array("logits", logits, np.float32, ndim=(1, 2))
    lead = logits.shape[:-1]
    k_classes = logits.shape[-1]
    if k_classes < 1:
        raise ShapeError(f"logits: expected at least one class, got {_describe(logits)}")
    probs = array("probs", probs, np.float32, shape=logits.shape, writable=True)
    top_idx = array("top_idx", top_idx, np.int64, ndim=logits.ndim, writable=True)
    k = top_idx.shape[-1]
    if top_idx.shape[:-1] != lead:
        raise ShapeError(f"top_idx: expected int64 array of shape {(*lead, k)}, got {_describe(top_idx)}")
    if not 1 <= k <= k_classes:
        raise ConfigError(f"top_idx: expected k in [1, {k_classes}] (its last dimension), got {k}")
    top_val = array("top_val", top_val, np.float32, shape=top_idx.shape, writable=True)
    return logits.reshape(-1, k_classes), probs.reshape(-1, k_classes), top_idx.reshape(-1, k), top_val.reshape(-1, k)


def nms(
    boxes: object,
    scores: object,
    classes: object,
    iou_threshold: float,
    score_threshold: float,
    keep: object,
    scratch: object,
):
    boxes = array("boxes", boxes, np.float32, ndim=2)
    n = boxes.shape[0]
    if boxes.shape[1] != 4:
        raise ShapeError(f"boxes: expected float32 array of shape (N, 4), got {_describe(boxes)}")
    scores = array("scores", scores, np.float32, shape=(n,))
    classes = array("classes", classes, np.int32, shape=(n,))
    keep = array("keep", keep, np.int64, ndim=1, writable=True)
    scratch = array("scratch", scratch, np.int64, shape=(n,), writable=True)
    iou = float(iou_threshold)
    if not 0.0 <= iou <= 1.0:
        raise ConfigError(f"iou_threshold: expected a value in [0, 1], got {iou_threshold}")
    if score_threshold != score_threshold:
        raise ConfigError("score_threshold: expected a number, got NaN")
    # scores are float32: compare them with the threshold as float32 sees it (0.2 → 0.200000003), in both backends
    return boxes, scores, classes, iou, float(np.float32(score_threshold)), keep, scratch


def decode_anchors(encodings: object, anchors: object, scales: Sequence[float], out: object):
    encodings = array("encodings", encodings, np.float32, ndim=2)
    n = encodings.shape[0]
    if encodings.shape[1] != 4:
        raise ShapeError(f"encodings: expected float32 array of shape (N, 4), got {_describe(encodings)}")
    anchors = array("anchors", anchors, np.float32, shape=(n, 4))
    out = array("out", out, np.float32, shape=(n, 4), writable=True)
    if len(scales) != 4 or not all(float(s) > 0 for s in scales):
        raise ConfigError(f"scales: expected four values > 0 (y, x, h, w), got {tuple(scales)}")
    ys, xs, hs, ws = (float(s) for s in scales)
    return encodings, anchors, (ys, xs, hs, ws), out


def best_class(logits: object, sigmoid: object, scores: object, classes: object):
    logits = array("logits", logits, np.float32, ndim=2)
    n, c = logits.shape
    if c < 1:
        raise ShapeError(f"logits: expected float32 array of shape (N, classes >= 1), got {_describe(logits)}")
    scores = array("scores", scores, np.float32, shape=(n,), writable=True)
    classes = array("classes", classes, np.int32, shape=(n,), writable=True)
    return logits, bool(sigmoid), scores, classes


def decode_yolo(preds: object, boxes: object, scores: object, classes: object):
    preds = array("preds", preds, np.float32, ndim=2)
    n, k = preds.shape
    if k < 5:
        raise ShapeError(f"preds: expected float32 array of shape (N, 4 + classes), got {_describe(preds)}")
    boxes = array("boxes", boxes, np.float32, shape=(n, 4), writable=True)
    scores = array("scores", scores, np.float32, shape=(n,), writable=True)
    classes = array("classes", classes, np.int32, shape=(n,), writable=True)
    return preds, boxes, scores, classes


# -------------------------------------------------------------------------------------------------------- sketches


def sketch_state(edges: object, counts: object, moments: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a sketch: edges (F, E) float64 strictly increasing and finite, counts (F, E + 2) int64,
    moments (F, 5) float64; counts and moments writable."""
    edges = array("edges", edges, np.float64, ndim=2)
    f, e = edges.shape
    if e < 2:
        raise ConfigError(f"edges: expected at least 2 edges per feature, got {_describe(edges)}")
    if not np.all(np.isfinite(edges)):
        raise ConfigError("edges: expected finite values, got NaN or inf")
    if np.any(np.diff(edges, axis=1) <= 0):
        bad = int(np.argwhere(np.diff(edges, axis=1) <= 0)[0, 0])
        raise ConfigError(
            f"edges: expected strictly increasing edges per feature, feature {bad} is not: {edges[bad].tolist()[:8]}"
        )
    counts = array("counts", counts, np.int64, shape=(f, e + 2), writable=True)
    moments = array("moments", moments, np.float64, shape=(f, 5), writable=True)
    return edges, counts, moments


def sketch_values(x: object, n_features: int) -> np.ndarray:
    x = array("x", x, np.float64, ndim=(1, 2))
    if x.shape[-1] != n_features:
        raise ShapeError(f"x: expected float64 array of shape ({n_features},) or (N, {n_features}), got {_describe(x)}")
    return x.reshape(-1, n_features) if x.ndim == 1 else x


def sketch_merge(dst_counts: object, dst_moments: object, src_counts: object, src_moments: object):
    dst_counts = array("dst_counts", dst_counts, np.int64, ndim=2, writable=True)
    f, b = dst_counts.shape
    dst_moments = array("dst_moments", dst_moments, np.float64, shape=(f, 5), writable=True)
    src_counts = array("src_counts", src_counts, np.int64, shape=(f, b))
    src_moments = array("src_moments", src_moments, np.float64, shape=(f, 5))
    return dst_counts, dst_moments, src_counts, src_moments


# --------------------------------------------------------------------------------------------------- wire readers

MAX_DIGEST_FEATURES = 256  # PROTOCOL.md §6: features in a window


def digest_block(
    k: int,
    names: Sequence[object],
    lengths: Sequence[int],
    width: int,
    moments_row: int,
    n_lat: int,
    n_pred: int,
    counts: object,
    extra: object,
    ok: object,
) -> int:
    """Validate a ``window_digest_block`` call for ``k`` frames: float64 ``counts`` (>=k, F, ``width``) and ``extra``
    (>=k, 7 + ``n_lat`` + ``n_pred``, negatives counting 0) and uint8 ``ok`` (>=k,), all writable and C-contiguous;
    F = len(``names``) in 1..256, each a str with 1..``width`` counts. Returns the number of ``extra`` columns."""
    counts = array("counts", counts, np.float64, ndim=3, writable=True, contiguous=True)
    extra = array("extra", extra, np.float64, ndim=2, writable=True, contiguous=True)
    ok = array("ok", ok, np.uint8, ndim=1, writable=True, contiguous=True)
    f = len(names)
    n_extra = 7 + max(n_lat, 0) + max(n_pred, 0)
    if (
        not 1 <= f <= MAX_DIGEST_FEATURES
        or len(lengths) != f
        or width < 2
        or not -1 <= moments_row < f
        or counts.shape[0] < k
        or counts.shape[1:] != (f, width)
        or extra.shape[0] < k
        or extra.shape[1] != n_extra
        or ok.shape[0] < k
    ):
        raise ShapeError(
            f"window_digest_block: expected counts (>={k}, {f}, {width}), extra (>={k}, {n_extra}), ok (>={k},), "
            f"got {counts.shape}, {extra.shape}, {ok.shape}"
        )
    for name, n in zip(names, lengths, strict=True):
        if type(name) is not str or not 1 <= n <= width:
            raise ConfigError(
                f"window_digest_block: expected names (str) with 1..{width} counts, got {name!r} with {n!r}"
            )
    return n_extra
