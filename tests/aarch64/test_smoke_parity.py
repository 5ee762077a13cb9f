"""Smoke parity of the compiled kernels against their NumPy twins, one seeded case per kernel.

A stand-in until the full parity suite (``tests/kernels/``) lands, and a second, quick line of defence after it:
the aarch64 stage runs this under qemu on the cross-built modules, where a kernel that rounds, overflows or reads
memory differently on arm64 shows up as a mismatch. Integer results must be equal; float results to a stated
tolerance per dtype (STYLE #3). Where the native kernels are not built these tests fail, not skip: a parity test
that quietly compares the twin with itself proves nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.kernels import implementation, tables

NATIVE = implementation("native")
TWIN = implementation("numpy")
RTOL = {np.float32: 1e-6, np.float64: 1e-12}
SEED = 20240608


def run_both(name: str, make_args):
    """Call kernel ``name`` of both backends on identical fresh arguments; return (native args, twin args, results)."""
    native_args, twin_args = make_args(), make_args()
    return native_args, twin_args, (NATIVE[name](*native_args), TWIN[name](*twin_args))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(("frame_hw", "model_hw"), [((48, 64), (24, 32)), ((31, 17), (40, 23)), ((20, 20), (20, 20))])
def test_preprocess_frame(layout, frame_hw, model_hw):
    rng = np.random.default_rng(SEED)
    big = rng.integers(0, 256, size=(frame_hw[0] + 3, frame_hw[1] + 5, 3), dtype=np.uint8)
    src = big[1 : 1 + frame_hw[0], 2 : 2 + frame_hw[1]]  # a strided crop view
    lut = tables.normalize_lut([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    plan = tables.resize_plan(frame_hw, model_hw)
    cmap = tables.channel_map("BGR", "RGB")
    shape = (1, 3, *model_hw) if layout == "NCHW" else (1, *model_hw, 3)

    def args():
        return (src, np.full(shape, np.nan, np.float32), layout, lut, plan, cmap, np.zeros((2, 3)))

    (_, n_out, *_, n_stats), (_, t_out, *_, t_stats), _ = run_both("preprocess_frame", args)
    np.testing.assert_array_equal(n_out, t_out)  # a LUT gather after integer resizing: exact
    np.testing.assert_allclose(n_stats, t_stats, rtol=RTOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("qtype", [np.int8, np.uint8])
def test_quantize_dequantize(dtype, qtype):
    rng = np.random.default_rng(SEED)
    x = (rng.standard_normal((2, 5, 7, 3)) * 40).astype(dtype)[:, ::2]  # non-contiguous
    x.flat[[0, 3, 9]] = [np.nan, np.inf, -np.inf]
    x.flat[10:14] = [0.5, 1.5, 2.5, -0.5]  # exact halves: round half to even
    scale = np.array([0.5, 0.25, 1.0], np.float32)
    zp = np.array([0, 3, -2] if qtype == np.int8 else [128, 3, 7], np.int32)
    (_, _, _, n_q, _), (_, _, _, t_q, _), _ = run_both("quantize", lambda: (x, scale, zp, np.zeros(x.shape, qtype), -1))
    np.testing.assert_array_equal(n_q, t_q)
    dequantize_args = lambda: (t_q, scale, zp, np.zeros(x.shape, np.float32), -1)  # noqa: E731
    (_, _, _, n_f, _), (_, _, _, t_f, _), _ = run_both("dequantize", dequantize_args)
    np.testing.assert_array_equal(n_f, t_f)  # (q - zp) * s in float32 is exact without FMA contraction


def test_softmax_topk():
    rng = np.random.default_rng(SEED)
    logits = (rng.standard_normal((6, 37)) * 8).astype(np.float32)
    logits[1, [4, 9]] = logits[1].max() + 1.0  # a tie: the lower index goes first
    logits[2, 5] = np.nan

    def args():
        return (logits, np.zeros_like(logits), np.zeros((6, 5), np.int64), np.zeros((6, 5), np.float32))

    (_, n_p, n_i, n_v), (_, t_p, t_i, t_v), _ = run_both("softmax_topk", args)
    np.testing.assert_array_equal(n_i, t_i)
    np.testing.assert_allclose(n_p, t_p, rtol=RTOL[np.float32], equal_nan=True)
    np.testing.assert_allclose(n_v, t_v, rtol=RTOL[np.float32], equal_nan=True)


def test_nms():
    rng = np.random.default_rng(SEED)
    xy = rng.uniform(0, 100, size=(200, 2)).astype(np.float32)
    wh = rng.uniform(5, 30, size=(200, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0, 1, size=200).astype(np.float32)
    scores[10:14] = scores[3]  # ties in score: lower index first
    classes = rng.integers(0, 3, size=200).astype(np.int32)

    def args():
        return (boxes, scores, classes, 0.45, 0.2, np.zeros(50, np.int64), np.zeros(200, np.int64))

    (*_, n_keep, _), (*_, t_keep, _), (n_count, t_count) = run_both("nms", args)
    assert n_count == t_count
    np.testing.assert_array_equal(n_keep, t_keep)


def test_decode_anchors():
    rng = np.random.default_rng(SEED)
    enc = rng.standard_normal((300, 4)).astype(np.float32)
    anchors = np.concatenate([rng.uniform(0, 1, (300, 2)), rng.uniform(0.05, 0.5, (300, 2))], axis=1).astype(np.float32)

    def args():
        return (enc, anchors, (10.0, 10.0, 5.0, 5.0), np.zeros((300, 4), np.float32))

    (*_, n_out), (*_, t_out), _ = run_both("decode_anchors", args)
    np.testing.assert_allclose(n_out, t_out, rtol=RTOL[np.float32])


def _sketch_state(rng):
    edges = np.sort(rng.uniform(-3, 3, size=(6, 15)), axis=1)
    moments = np.zeros((6, 5))
    moments[:, 3], moments[:, 4] = np.inf, -np.inf
    return edges, np.zeros((6, 17), np.int64), moments


def test_sketch_update_merge_and_accumulator():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((64, 6)) * 2
    x[5, 2], x[6, 3], x[7, 4] = np.nan, np.inf, -np.inf
    results = {}
    for name, api in (("native", NATIVE), ("numpy", TWIN)):
        edges, counts, moments = _sketch_state(np.random.default_rng(SEED))
        api["sketch_update"](x[:32], edges, counts, moments)
        _, counts_b, moments_b = _sketch_state(np.random.default_rng(SEED))
        acc = api["SketchAccumulator"](edges, counts_b, moments_b)
        for row in x[32:]:
            acc.update(row)
        api["sketch_merge"](counts, moments, counts_b, moments_b)
        results[name] = (counts, moments)
    np.testing.assert_array_equal(results["native"][0], results["numpy"][0])
    np.testing.assert_allclose(results["native"][1], results["numpy"][1], rtol=RTOL[np.float64])
