"""Postprocessing: softmax + top-k, class-aware NMS and SSD anchor decoding; native vs twin and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ConfigError, ShapeError

FLOAT_RTOL = 1e-6  # float32 outputs computed in float64: exp() of libm and of NumPy may differ in the last bit


def _softmax(impl, logits: np.ndarray, k: int):
    lead = logits.shape[:-1]
    probs = np.zeros(logits.shape, np.float32)
    idx = np.zeros((*lead, k), np.int64)
    val = np.zeros((*lead, k), np.float32)
    impl["softmax_topk"](logits, probs, idx, val)
    return probs, idx, val


@pytest.mark.parametrize("shape,k", [((1,), 1), ((10,), 3), ((4, 1000), 5), ((3, 7), 7), ((2, 5), 1)])
def test_softmax_topk_native_matches_twin(native, twin, rng, shape, k) -> None:
    logits = rng.normal(0, 4, shape).astype(np.float32)
    logits.reshape(-1)[: min(4, logits.size)] = 1.25  # ties
    a = _softmax(native, logits, k)
    b = _softmax(twin, logits, k)
    np.testing.assert_allclose(a[0], b[0], rtol=FLOAT_RTOL)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[2], b[2], rtol=FLOAT_RTOL)


def test_softmax_matches_scipy_and_breaks_ties_to_the_lower_index(impl) -> None:
    special = pytest.importorskip("scipy.special")
    logits = np.array([[1.0, 3.0, 3.0, -2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    probs, idx, val = _softmax(impl, logits, 3)
    np.testing.assert_allclose(probs, special.softmax(logits.astype(np.float64), axis=1), rtol=FLOAT_RTOL)
    assert idx.tolist() == [[1, 2, 0], [0, 1, 2]]
    np.testing.assert_allclose(val, np.take_along_axis(probs, idx, axis=1))


def test_nan_logits_rank_last_and_poison_the_row(native, twin) -> None:
    logits = np.array([[np.nan, 2.0, 5.0, np.nan, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0]], np.float32)
    for impl in (native, twin):
        probs, idx, _ = _softmax(impl, logits, 5)
        assert idx.tolist() == [[2, 1, 4, 0, 3], [4, 3, 2, 1, 0]]
        assert np.isnan(probs[0]).all() and np.isfinite(probs[1]).all()


def _nms(impl, boxes, scores, classes, iou=0.5, score=0.1, max_det=100):
    keep = np.full(max_det, 99, np.int64)
    scratch = np.zeros(len(scores), np.int64)
    n = impl["nms"](boxes, scores, classes, iou, score, keep, scratch)
    return n, keep


def test_nms_hand_worked(impl) -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.8, 0.85, 0.3, 0.05], np.float32)
    classes = np.array([0, 0, 1, 0, 0], np.int32)
    # box 1 overlaps box 0 (IoU 81/119 = 0.68) in the same class: suppressed; box 2 is the same rectangle as box 0
    # but another class: kept; box 4 is below the score threshold
    n, keep = _nms(impl, boxes, scores, classes)
    assert n == 3
    assert keep.tolist()[:4] == [0, 2, 3, -1]
    n, keep = _nms(impl, boxes, scores, classes, iou=0.7)  # 0.68 < 0.7: box 1 survives
    assert keep.tolist()[:4] == [0, 2, 1, 3]
    n, keep = _nms(impl, boxes, scores, classes, max_det=2)
    assert n == 2 and keep.tolist() == [0, 2]


@pytest.mark.parametrize("n_boxes", [0, 1, 2, 50, 400])
@pytest.mark.parametrize("n_classes", [1, 3])
def test_nms_native_matches_twin(native, twin, rng, n_boxes, n_classes) -> None:
    xy = rng.uniform(0, 100, (n_boxes, 2))
    wh = rng.uniform(5, 40, (n_boxes, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    boxes[: n_boxes // 10, 2:] = boxes[: n_boxes // 10, :2]  # some empty boxes
    scores = rng.choice(np.linspace(0.0, 1.0, 21), n_boxes).astype(np.float32)  # many exact ties
    if n_boxes > 3:
        scores[3] = np.nan
    classes = rng.integers(0, n_classes, n_boxes).astype(np.int32)
    for iou in (0.0, 0.3, 0.5, 1.0):
        a = _nms(native, boxes, scores, classes, iou=iou, score=0.2, max_det=30)
        b = _nms(twin, boxes, scores, classes, iou=iou, score=0.2, max_det=30)
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])


def test_decode_anchors_hand_worked_and_parity(native, twin, rng) -> None:
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    zero = np.zeros((1, 4), np.float32)
    for impl in (native, twin):
        out = np.zeros((1, 4), np.float32)
        impl["decode_anchors"](zero, anchors, (10.0, 10.0, 5.0, 5.0), out)
        np.testing.assert_allclose(out, [[0.4, 0.3, 0.6, 0.7]], rtol=1e-6)
    enc = rng.normal(0, 2, (500, 4)).astype(np.float32)
    anc = np.abs(rng.normal(0.5, 0.2, (500, 4))).astype(np.float32)
    outs = []
    for impl in (native, twin):
        out = np.zeros((500, 4), np.float32)
        impl["decode_anchors"](enc, anc, (10.0, 10.0, 5.0, 5.0), out)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], rtol=FLOAT_RTOL, atol=1e-7)


def _good_args(kernel: str) -> dict[str, object]:
    """A valid call of ``kernel`` (3 boxes / 2 rows of 3 classes); the bad-input cases override one argument."""
    if kernel == "softmax_topk":
        return {
            "logits": np.zeros((2, 3), np.float32),
            "probs": np.zeros((2, 3), np.float32),
            "top_idx": np.zeros((2, 1), np.int64),
            "top_val": np.zeros((2, 1), np.float32),
        }
    if kernel == "nms":
        return {
            "boxes": np.zeros((3, 4), np.float32),
            "scores": np.zeros(3, np.float32),
            "classes": np.zeros(3, np.int32),
            "iou_threshold": 0.5,
            "score_threshold": 0.1,
            "keep": np.zeros(3, np.int64),
            "scratch": np.zeros(3, np.int64),
        }
    return {
        "encodings": np.zeros((3, 4), np.float32),
        "anchors": np.zeros((3, 4), np.float32),
        "scales": (10.0, 10.0, 5.0, 5.0),
        "out": np.zeros((3, 4), np.float32),
    }


BAD = [
    ("softmax_topk", ShapeError, "logits: expected 1 or 2-D float32", {"logits": np.zeros((2, 3))}),
    (
        "softmax_topk",
        ConfigError,
        "expected k in [1, 3]",
        {"top_idx": np.zeros((2, 4), np.int64), "top_val": np.zeros((2, 4), np.float32)},
    ),
    (
        "softmax_topk",
        ShapeError,
        "probs: expected float32 array of shape (2, 3)",
        {"probs": np.zeros((3, 3), np.float32)},
    ),
    ("nms", ShapeError, "boxes: expected float32 array of shape (N, 4)", {"boxes": np.zeros((3, 5), np.float32)}),
    ("nms", ShapeError, "scratch: expected int64 array of shape (3,)", {"scratch": np.zeros(2, np.int64)}),
    ("nms", ConfigError, "iou_threshold: expected a value in [0, 1]", {"iou_threshold": 1.5}),
    ("decode_anchors", ConfigError, "scales: expected four values > 0", {"scales": (10.0, 10.0, 0.0, 5.0)}),
    (
        "decode_anchors",
        ShapeError,
        "anchors: expected float32 array of shape (3, 4)",
        {"anchors": np.zeros((2, 4), np.float32)},
    ),
]


@pytest.mark.parametrize("kernel,exc_type,message,change", BAD, ids=[f"{b[0]}-{b[2][:20]}" for b in BAD])
def test_bad_input_raises_the_same_error_from_both(native, twin, kernel, exc_type, message, change) -> None:
    errors = []
    for impl in (native, twin):
        args = _good_args(kernel) | change
        with pytest.raises(exc_type) as info:
            impl[kernel](**args)
        errors.append(str(info.value))
    assert message in errors[0]
    assert errors[0] == errors[1]
