"""Detector decoding kernels: best_class (per-row best class, optional sigmoid), decode_yolo (cx/cy/w/h rows →
corners + best class) and decode_anchors with linear sizes; hand-worked cases, NaN rows, strided inputs, native vs
twin, and the same errors from both."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.errors import ShapeError

FLOAT_RTOL = 1e-6  # float32 outputs computed in float64 (exp of libm vs NumPy may differ in the last bit)


def _best(impl, logits, sigmoid):
    n = logits.shape[0]
    scores, classes = np.zeros(n, np.float32), np.zeros(n, np.int32)
    bad = impl["best_class"](logits, sigmoid, scores, classes)
    return bad, scores, classes


def _yolo(impl, preds):
    n = preds.shape[0]
    boxes, scores, classes = np.zeros((n, 4), np.float32), np.zeros(n, np.float32), np.zeros(n, np.int32)
    bad = impl["decode_yolo"](preds, boxes, scores, classes)
    return bad, boxes, scores, classes


def test_best_class_hand_worked(impl) -> None:
    logits = np.array([[0.0, 2.0, 2.0], [-1.0, -3.0, -2.0], [1.0, np.nan, 5.0], [200.0, -np.inf, 0.0]], np.float32)
    bad, scores, classes = _best(impl, logits, False)
    assert bad == 1 and classes.tolist() == [1, 0, 1, 0]  # ties → lower index; a NaN row → its first NaN
    assert scores[:2].tolist() == [2.0, -1.0] and math.isnan(scores[2]) and scores[3] == 200.0
    bad, scores, classes = _best(impl, logits, True)
    sig = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))]
    np.testing.assert_allclose(scores[:2], sig, rtol=FLOAT_RTOL)
    assert math.isnan(scores[2]) and scores[3] == np.float32(1 / (1 + math.exp(-100.0)))  # clipped to ±100


def test_decode_yolo_hand_worked_both_layouts(impl) -> None:
    rows = np.array([[10.0, 20.0, 4.0, 8.0, 0.1, 0.7, 0.2], [0.0, 0.0, 2.0, 2.0, 0.9, 0.0, np.nan]], np.float32)
    for preds in (rows, np.ascontiguousarray(rows.T).T):  # C-contiguous rows, and a strided transpose of [7, N]
        bad, boxes, scores, classes = _yolo(impl, preds)
        assert bad == 1
        assert boxes.tolist() == [[8.0, 16.0, 12.0, 24.0], [-1.0, -1.0, 1.0, 1.0]]
        assert classes.tolist() == [1, 2] and scores[0] == np.float32(0.7) and math.isnan(scores[1])


def test_decode_anchors_linear_sizes(impl) -> None:
    enc = np.array([[12.8, -6.4, 25.6, 51.2]], np.float32)  # MediaPipe order (x, y, w, h), scales 128
    anchors = np.array([[0.5, 0.25, 1.0, 1.0]], np.float32)  # (xc, yc, w, h) in the same order
    out = np.zeros((1, 4), np.float32)
    impl["decode_anchors"](enc, anchors, (128.0, 128.0, 128.0, 128.0), out, False)
    # xc = 0.6, yc = 0.2, w = 0.2, h = 0.4 → (xmin, ymin, xmax, ymax)
    np.testing.assert_allclose(out, [[0.5, 0.0, 0.7, 0.4]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n,c", [(1, 1), (7, 3), (896, 1), (8400, 80)])
def test_native_matches_twin(native, twin, rng, n, c) -> None:
    grid = rng.normal(0, 3, (4 + c, n)).astype(np.float32)  # [4 + C, N]: the transposed YOLO layout
    grid[4:, : min(3, n)] = 0.5  # ties
    if n > 10:
        grid[5 if c > 1 else 4, 10] = np.nan
    preds = grid.T
    a, b = _yolo(native, preds), _yolo(twin, preds)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[3], b[3])
    for sigmoid in (False, True):
        a, b = _best(native, preds[:, 4:], sigmoid), _best(twin, preds[:, 4:], sigmoid)
        assert a[0] == b[0]
        np.testing.assert_allclose(a[1], b[1], rtol=FLOAT_RTOL)
        np.testing.assert_array_equal(a[2], b[2])
    enc = rng.normal(0, 20, (n, 16)).astype(np.float32)[:, :4]  # a column slice of a wider box output
    anc = np.abs(rng.normal(0.5, 0.2, (n, 4))).astype(np.float32)
    outs = []
    for impl in (native, twin):
        out = np.zeros((n, 4), np.float32)
        impl["decode_anchors"](enc, anc, (128.0, 128.0, 128.0, 128.0), out, False)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], rtol=FLOAT_RTOL, atol=1e-6)


@pytest.mark.parametrize(
    "kernel,args,message",
    [
        ("best_class", (np.zeros((3, 2), np.float64), True, np.zeros(3, np.float32), np.zeros(3, np.int32)), "logits"),
        ("best_class", (np.zeros((3, 2), np.float32), True, np.zeros(2, np.float32), np.zeros(3, np.int32)), "scores"),
        ("best_class", (np.zeros((3, 2), np.float32), True, np.zeros(3, np.float32), np.zeros(3, np.int64)), "classes"),
        (
            "decode_yolo",
            (
                np.zeros((3, 4), np.float32),
                np.zeros((3, 4), np.float32),
                np.zeros(3, np.float32),
                np.zeros(3, np.int32),
            ),
            "preds",
        ),
        (
            "decode_yolo",
            (
                np.zeros((3, 6), np.float32),
                np.zeros((3, 3), np.float32),
                np.zeros(3, np.float32),
                np.zeros(3, np.int32),
            ),
            "boxes",
        ),
    ],
)
def test_bad_input_same_error_from_both(native, twin, kernel, args, message) -> None:
    errors = []
    for impl in (native, twin):
        with pytest.raises(ShapeError) as err:
            impl[kernel](*args)
        errors.append(str(err.value))
    assert errors[0] == errors[1] and errors[0].startswith(f"{message}: expected")
