"""The pure-NumPy twins of the compiled kernels in ``native/``.

Each function here has the signature, the semantics and the errors of its compiled twin (both validate through
:mod:`edge._kernel_checks`). They are the oracle the compiled kernels are tested against, and the backend used
where no compiled kernels exist (``EDGE_PUREPYTHON=1``, or no C compiler at install time). Like the compiled
kernels they write into caller-owned outputs; unlike them, they allocate NumPy temporaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge import _kernel_checks as _checks
from edge._kernel_checks import ResizePlan

__all__ = [
    "SketchAccumulator",
    "best_class",
    "decode_anchors",
    "decode_yolo",
    "dequantize",
    "nms",
    "preprocess_frame",
    "quantize",
    "sketch_merge",
    "sketch_update",
    "softmax_topk",
]


# --------------------------------------------------------------------------------------------------- preprocessing


def preprocess_frame(
    src: np.ndarray,
    out: np.ndarray,
    layout: str,
    lut: np.ndarray,
    plan: ResizePlan | None,
    channel_map: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Resize (optional), reorder channels and map every pixel through ``lut`` into the model input ``out``.

    ``src`` is a uint8 (H, W, S) frame with any strides (a crop view of a larger frame works). ``out`` (caller-owned,
    float32/int8/uint8) is the model input in ``layout`` ("NCHW" or "NHWC", batch of 1 or none). Model channel ``c``
    reads source channel ``channel_map[c]``. With a ``plan`` the frame is first resized bilinearly in uint8 with
    OpenCV's ``INTER_LINEAR`` coordinates and 11-bit weights (pixel centres aligned: ``sx = (dx + 0.5) * W / w - 0.5``),
    rounded once (within 1 of ``cv2.resize``, which truncates its intermediate sums);
    then each byte ``v`` becomes ``lut[c, v]`` (normalization or quantization, see :mod:`edge.kernels.tables`).
    ``stats[0, c]``/``stats[1, c]`` receive the mean and population standard deviation of model channel ``c`` over
    the whole source frame, in pixel units (0..255).
    """
    src, out_hwc = _checks.preprocess(src, out, layout, lut, plan, channel_map, stats)
    pixels = src[:, :, channel_map]  # (H, W, C), model channel order
    n = pixels.shape[0] * pixels.shape[1]
    total = pixels.sum(axis=(0, 1), dtype=np.int64)
    squares = np.square(pixels, dtype=np.int64).sum(axis=(0, 1))
    mean = total / n
    var = squares / n - mean * mean
    stats[0] = mean
    stats[1] = np.sqrt(np.maximum(var, 0.0))
    resized = pixels if plan is None else _resize_u8(pixels, plan)
    for c in range(out_hwc.shape[2]):
        out_hwc[:, :, c] = lut[c][resized[:, :, c]]


def _resize_u8(pixels: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Bilinear resize of a uint8 (H, W, C) image with 11-bit fixed-point weights: the vertical pass first (exact
    int32), then the horizontal one, rounded half up once: ``(s + 2**21) >> 22``."""
    _, xofs, xalpha, yofs, ybeta = plan
    rows = pixels.astype(np.int32)
    b0 = ybeta[:, 0].astype(np.int32)[:, None, None]
    b1 = ybeta[:, 1].astype(np.int32)[:, None, None]
    blended = rows[yofs[:, 0]] * b0 + rows[yofs[:, 1]] * b1  # (h, W, C), at most 255 * 2048
    a0 = xalpha[:, 0].astype(np.int32)[None, :, None]
    a1 = xalpha[:, 1].astype(np.int32)[None, :, None]
    s = blended[:, xofs[:, 0]] * a0 + blended[:, xofs[:, 1]] * a1  # at most 255 * 2048**2 < 2**31
    return ((s + (1 << 21)) >> 22).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ (de)quantization


def quantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, out: np.ndarray, axis: int = -1) -> None:
    """``out = saturate(round_half_even(x / scale) + zero_point)``, per tensor (one scale) or per channel along
    ``axis``. NaN maps to the zero point; ±inf saturate. ``x`` float32/float64 (1-4 D, any strides); ``out`` int8
    or uint8 of the same shape, caller-owned."""
    x, scale, zero_point, out, axis4 = _checks.quantize(x, scale, zero_point, out, axis)
    s, zp = _broadcast_params(scale, zero_point, x.ndim, axis4)
    info = np.iinfo(out.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.rint(x / s.astype(x.dtype)).astype(np.float64) + zp
        r = np.where(np.isnan(r), np.broadcast_to(zp, r.shape), r)
    out[...] = np.clip(r, info.min, info.max).astype(out.dtype)


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, out: np.ndarray, axis: int = -1) -> None:
    """``out = (q - zero_point) * scale`` in float32, per tensor or per channel along ``axis``."""
    q, scale, zero_point, out, axis4 = _checks.dequantize(q, scale, zero_point, out, axis)
    s, zp = _broadcast_params(scale, zero_point, q.ndim, axis4)
    out[...] = (q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * s


def _broadcast_params(
    scale: np.ndarray, zero_point: np.ndarray, ndim: int, axis4: int
) -> tuple[np.ndarray, np.ndarray]:
    if axis4 < 0:
        return scale[0], zero_point[0].astype(np.float64)
    axis = axis4 - (4 - ndim)
    shape = [1] * ndim
    shape[axis] = scale.shape[0]
    return scale.reshape(shape), zero_point.reshape(shape).astype(np.float64)


# ------------------------------------------------------------------------------------------------- postprocessing


def softmax_topk(logits: np.ndarray, probs: np.ndarray, top_idx: np.ndarray, top_val: np.ndarray) -> None:
    """Row-wise softmax of ``logits`` (float32 (K,) or (N, K)) into ``probs`` and its top ``k`` classes
    (``k = top_idx.shape[-1]``) into ``top_idx``/``top_val``, best first. Ties go to the lower class index; NaN
    ranks last (and makes its row's probabilities NaN). Computed in float64, stored as float32."""
    logits, probs, top_idx, top_val = _checks.softmax_topk(logits, probs, top_idx, top_val)
    x = logits.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=1, keepdims=True)
        e = np.exp(x - m)
        probs[...] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    k = top_idx.shape[1]
    for row in range(x.shape[0]):
        order = np.argsort(-x[row], kind="stable")[:k]  # NaN sorts last
        top_idx[row] = order
        top_val[row] = probs[row, order]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou_threshold: float,
    score_threshold: float,
    keep: np.ndarray,
    scratch: np.ndarray,
) -> int:
    """Greedy class-aware non-maximum suppression.

    ``boxes`` float32 (N, 4) corners (x1, y1, x2, y2) — or (y1, x1, y2, x2): IoU does not care; ``scores`` float32 (N,);
    ``classes`` int32 (N,). Boxes with ``score > score_threshold`` are visited by descending score (ties: lower
    index first); one is kept unless its IoU with an already kept box of the same class is ``> iou_threshold``.
    Kept indices go to ``keep`` (int64, its length is the maximum number of detections), the rest of ``keep`` is
    set to -1, and the count is returned. ``scratch`` (int64 (N,)) is caller-owned working space.
    """
    boxes, scores, classes, iou_thr, score_thr, keep, scratch = _checks.nms(
        boxes, scores, classes, iou_threshold, score_threshold, keep, scratch
    )
    keep[...] = -1
    cand = np.flatnonzero(scores > score_thr)
    order = cand[np.lexsort((cand, -scores[cand].astype(np.float64)))]
    scratch[: order.size] = order
    b = boxes.astype(np.float64)
    area = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    count = 0
    for i in order:
        if count == keep.shape[0]:
            break
        kept = keep[:count]
        kept = kept[classes[kept] == classes[i]]
        if kept.size:
            ix1 = np.maximum(b[i, 0], b[kept, 0])
            iy1 = np.maximum(b[i, 1], b[kept, 1])
            ix2 = np.minimum(b[i, 2], b[kept, 2])
            iy2 = np.minimum(b[i, 3], b[kept, 3])
            inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
            union = area[i] + area[kept] - inter
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = np.where(union > 0.0, inter / union, 0.0)
            if np.any(iou > iou_thr):
                continue
        keep[count] = i
        count += 1
    return count


def decode_anchors(
    encodings: np.ndarray, anchors: np.ndarray, scales: Sequence[float], out: np.ndarray, exp_size: bool = True
) -> None:
    """SSD box decoding (TensorFlow Object Detection API convention).

    ``encodings`` float32 (N, 4) = (ty, tx, th, tw) (any strides: a column slice of a wider output is fine);
    ``anchors`` float32 (N, 4) = (y_center, x_center, h, w); ``scales`` = (y, x, h, w) scale factors (commonly
    10, 10, 5, 5). Writes (ymin, xmin, ymax, xmax) to ``out``: ``yc = ty / ys * ha + ya``, ``h = exp(th / hs) * ha``
    and likewise for x and w; with ``exp_size=False`` (MediaPipe's ``apply_exponential_on_box_size: false``)
    ``h = th / hs * ha``. The formulas are symmetric in (y, x): encodings and anchors in (x, y, w, h) order give
    (xmin, ymin, xmax, ymax). Computed in float64.
    """
    encodings, anchors, (ys, xs, hs, ws), out = _checks.decode_anchors(encodings, anchors, scales, out)
    t = encodings.astype(np.float64)
    a = anchors.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        yc = t[:, 0] / ys * a[:, 2] + a[:, 0]
        xc = t[:, 1] / xs * a[:, 3] + a[:, 1]
        if exp_size:
            h = np.exp(t[:, 2] / hs) * a[:, 2]
            w = np.exp(t[:, 3] / ws) * a[:, 3]
        else:
            h = t[:, 2] / hs * a[:, 2]
            w = t[:, 3] / ws * a[:, 3]
        out[:, 0] = yc - h / 2.0
        out[:, 1] = xc - w / 2.0
        out[:, 2] = yc + h / 2.0
        out[:, 3] = xc + w / 2.0


SCORE_CLIP = 100.0  # logits are clipped to ±100 before the sigmoid (MediaPipe's score_clipping_thresh)


def best_class(logits: np.ndarray, sigmoid: bool, scores: np.ndarray, classes: np.ndarray) -> int:
    """Per row of ``logits`` float32 (N, C) (any strides): the best class → ``classes`` (int32 (N,); ties: the lower
    index) and its score → ``scores`` (float32 (N,)): the value itself, or with ``sigmoid`` the logistic of the value
    clipped to ±:data:`SCORE_CLIP`. A row holding a NaN scores NaN (class: its first NaN), so NMS never keeps it.
    Returns the number of such rows."""
    logits, sigmoid, scores, classes = _checks.best_class(logits, sigmoid, scores, classes)
    return _best_class(logits, sigmoid, scores, classes)


def _best_class(logits: np.ndarray, sigmoid: bool, scores: np.ndarray, classes: np.ndarray) -> int:
    v = logits.astype(np.float64)
    nan = np.isnan(v)
    bad = nan.any(axis=1)
    idx = np.where(bad, nan.argmax(axis=1), np.argmax(np.where(nan, -np.inf, v), axis=1))
    best = v[np.arange(v.shape[0]), idx]
    if sigmoid:
        best = 1.0 / (1.0 + np.exp(-np.clip(best, -SCORE_CLIP, SCORE_CLIP)))
    classes[:] = idx
    scores[:] = best
    return int(bad.sum())


def decode_yolo(preds: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> int:
    """YOLO-style rows ``preds`` float32 (N, 4 + C) = (cx, cy, w, h, class scores...) (any strides: the transpose of
    a ``[4 + C, N]`` output is fine) → corners (x1, y1, x2, y2) in ``boxes`` (float32 (N, 4), the units of the
    input), best class and its score in ``classes``/``scores`` as :func:`best_class` without the sigmoid. Returns
    the number of rows whose class scores hold a NaN."""
    preds, boxes, scores, classes = _checks.decode_yolo(preds, boxes, scores, classes)
    p = preds[:, :4].astype(np.float64)
    boxes[:, 0] = p[:, 0] - p[:, 2] / 2.0
    boxes[:, 1] = p[:, 1] - p[:, 3] / 2.0
    boxes[:, 2] = p[:, 0] + p[:, 2] / 2.0
    boxes[:, 3] = p[:, 1] + p[:, 3] / 2.0
    return _best_class(preds[:, 4:], False, scores, classes)


# -------------------------------------------------------------------------------------------------------- sketches

# moments columns
COUNT, MEAN, M2, MIN, MAX = range(5)


def sketch_update(x: np.ndarray, edges: np.ndarray, counts: np.ndarray, moments: np.ndarray) -> None:
    """Add one frame (``x`` float64 (F,)) or a batch (N, F) into a window sketch.

    ``edges`` float64 (F, E): sorted bin edges per feature. ``counts`` int64 (F, E + 2): column 0 counts
    ``x < edges[f, 0]`` (underflow), column ``i`` in 1..E-1 counts ``edges[f, i-1] <= x < edges[f, i]``, column E
    counts ``x >= edges[f, E-1]`` (overflow), column E + 1 counts NaN. ``moments`` float64 (F, 5) = (count, mean,
    M2, min, max) over the finite values (Welford's update); ±inf land in the under/overflow bins only.
    """
    edges, counts, moments = _checks.sketch_state(edges, counts, moments)
    x = _checks.sketch_values(x, edges.shape[0])
    _update_rows(x, edges, counts, moments)


def _update_rows(x: np.ndarray, edges: np.ndarray, counts: np.ndarray, moments: np.ndarray) -> None:
    n_edges = edges.shape[1]
    feat = np.arange(edges.shape[0])
    for row in x:
        nan = np.isnan(row)
        bins = np.where(nan, n_edges + 1, (edges <= row[:, None]).sum(axis=1))
        np.add.at(counts, (feat, bins), 1)
        ok = np.isfinite(row)
        v = row[ok]
        m = moments[ok]
        n = m[:, COUNT] + 1.0
        d = v - m[:, MEAN]
        mean = m[:, MEAN] + d / n
        m[:, M2] = m[:, M2] + d * (v - mean)
        m[:, MEAN] = mean
        m[:, COUNT] = n
        m[:, MIN] = np.minimum(m[:, MIN], v)
        m[:, MAX] = np.maximum(m[:, MAX], v)
        moments[ok] = m


def sketch_merge(
    dst_counts: np.ndarray, dst_moments: np.ndarray, src_counts: np.ndarray, src_moments: np.ndarray
) -> None:
    """Merge sketch ``src`` into ``dst``: counts add; moments combine (Chan et al.), so merging is associative and
    commutative up to float rounding of mean and M2."""
    dst_counts, dst_moments, src_counts, src_moments = _checks.sketch_merge(
        dst_counts, dst_moments, src_counts, src_moments
    )
    dst_counts += src_counts
    na = dst_moments[:, COUNT]
    nb = src_moments[:, COUNT]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        w = nb / n
        d = src_moments[:, MEAN] - dst_moments[:, MEAN]
        mean = dst_moments[:, MEAN] + d * w
        m2 = dst_moments[:, M2] + src_moments[:, M2] + d * d * na * w
    only_src = (na == 0) & (nb > 0)
    both = (na > 0) & (nb > 0)
    dst_moments[only_src] = src_moments[only_src]
    dst_moments[both, MEAN] = mean[both]
    dst_moments[both, M2] = m2[both]
    dst_moments[both, COUNT] = n[both]
    dst_moments[both, MIN] = np.minimum(dst_moments[both, MIN], src_moments[both, MIN])
    dst_moments[both, MAX] = np.maximum(dst_moments[both, MAX], src_moments[both, MAX])


class SketchAccumulator:
    """A window sketch's arrays bound once, for the per-frame ``update``: validation happens here, at construction,
    so the compiled twin's ``update`` costs well under a microsecond for 32 features. The arrays stay owned by the
    caller (the window-sketch façade), which may reset or read them between updates."""

    def __init__(self, edges: np.ndarray, counts: np.ndarray, moments: np.ndarray) -> None:
        self.edges, self.counts, self.moments = _checks.sketch_state(edges, counts, moments)
        self.n_features = self.edges.shape[0]

    def update(self, x: np.ndarray) -> None:
        """Add one frame's features (float64 (F,)) or a batch (N, F)."""
        _update_rows(_checks.sketch_values(x, self.n_features), self.edges, self.counts, self.moments)
