"""Preprocessing kernel: native vs NumPy twin (exact), the OpenCV resize convention, normalization/quantization
semantics, and the same errors from both backends."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from edge import kernels
from edge.errors import ConfigError, ShapeError
from edge.kernels import reference, tables

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# (frame H, W) → (model h, w): the flagship case, up/down/mixed scales, degenerate sizes, no resize
SIZES = [
    ((480, 640), (224, 224)),
    ((480, 640), (96, 128)),
    ((7, 9), (13, 5)),
    ((1, 1), (3, 3)),
    ((5, 5), (1, 1)),
    ((31, 17), (31, 17)),
    ((1, 1), (1, 1)),
]


@pytest.fixture
def native(native_build: dict[str, object]) -> dict[str, object]:
    """Every native-vs-twin test here runs on each build of the kernel (baseline, and AVX2 where this CPU has it)."""
    return native_build


def test_the_avx2_build_is_used_where_the_cpu_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    if kernels.BACKEND != "native":
        pytest.skip("the NumPy twins are in use")
    baseline_build = importlib.import_module("edge._native.preprocess")
    built = importlib.util.find_spec("edge._native.preprocess_avx2") is not None
    expected = "avx2" if built and baseline_build.cpu_has_avx2() else "baseline"
    assert kernels.ISA == expected
    assert kernels.preprocess_frame.__module__ == ("edge._native.preprocess_avx2" if expected == "avx2" else
                                                   "edge._native.preprocess")  # fmt: skip
    assert kernels.implementation("native", baseline=True)["preprocess_frame"].__module__ == "edge._native.preprocess"
    monkeypatch.setattr(baseline_build, "cpu_has_avx2", lambda: False)  # a CPU without AVX2 gets the baseline build
    assert kernels.implementation("native")["preprocess_frame"].__module__ == "edge._native.preprocess"


def _lut(dtype: np.dtype) -> np.ndarray:
    if dtype == np.float32:
        return tables.normalize_lut(MEAN, STD)
    zp = 128 if dtype == np.uint8 else 0
    return tables.quantized_lut(MEAN, STD, scale=0.0186, zero_point=zp, dtype=dtype)


def _out(layout: str, hw: tuple[int, int], dtype: np.dtype, batch: bool) -> np.ndarray:
    h, w = hw
    shape = (3, h, w) if layout == "NCHW" else (h, w, 3)
    return np.full(((1, *shape) if batch else shape), 77, dtype=dtype)


def _frames(rng: np.random.Generator, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """The same picture under different memory layouts: packed, a crop of a larger frame, strided columns,
    a 4-channel source, and a Fortran-ordered copy."""
    h, w = hw
    big = rng.integers(0, 256, (h + 9, 2 * w + 11, 4), dtype=np.uint8)
    return {
        "packed": np.ascontiguousarray(big[:h, :w, :3]),
        "crop": big[4 : 4 + h, 5 : 5 + w, :3],
        "strided": big[:h, : 2 * w : 2, :3],
        "bgra": big[2 : 2 + h, 3 : 3 + w],
        "fortran": np.asfortranarray(big[:h, :w, :3]),
    }


@pytest.mark.parametrize("src_hw,dst_hw", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8])
@pytest.mark.parametrize("layout,batch", [("NCHW", True), ("NHWC", True), ("NCHW", False), ("NHWC", False)])
def test_native_matches_twin_exactly(native, twin, rng, src_hw, dst_hw, dtype, layout, batch) -> None:
    plan = tables.resize_plan(src_hw, dst_hw)
    lut = _lut(np.dtype(dtype))
    for name, frame in _frames(rng, src_hw).items():
        cmap = tables.channel_map("BGRA" if name == "bgra" else "BGR", "RGB")
        outs, stats = [], []
        for impl in (native, twin):
            out = _out(layout, dst_hw, dtype, batch)
            st = np.full((2, 3), np.nan)
            impl["preprocess_frame"](frame, out, layout, lut, plan, cmap, st)
            outs.append(out)
            stats.append(st)
        np.testing.assert_array_equal(outs[0], outs[1], err_msg=name)
        np.testing.assert_array_equal(stats[0], stats[1], err_msg=name)  # exact: integer sums, same float ops


def test_stats_are_the_frame_mean_and_std(impl, rng) -> None:
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame[..., 1] //= 4  # give the channels different statistics
    stats = np.empty((2, 3))
    out = np.empty((3, 24, 24), np.float32)
    impl["preprocess_frame"](
        frame,
        out,
        "NCHW",
        tables.normalize_lut(MEAN, STD),
        tables.resize_plan((48, 64), (24, 24)),
        tables.channel_map("RGB", "BGR"),
        stats,
    )
    flipped = frame[..., ::-1].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats[0], flipped.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats[1], flipped.std(axis=0), rtol=1e-9)


# The packed 3-channel path blends a strip of at most 2730 source pixels at a time and reads 4 ints past a pixel's
# first: frames wider than one strip, strips ending exactly on a tap, upscales whose last taps clamp to the border.
WIDE = [((2, 2731), (3, 5)), ((3, 5460), (2, 1911)), ((2, 8191), (1, 2)), ((4, 3), (5, 4000)), ((2, 2730), (2, 2731))]


@pytest.mark.parametrize("src_hw,dst_hw", WIDE)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_native_matches_twin_across_strips(native, twin, rng, src_hw, dst_hw, layout, order) -> None:
    frame = rng.integers(0, 256, (*src_hw, 3), dtype=np.uint8)
    frame[:, -1] = 255  # the border column that clamped taps read
    plan = tables.resize_plan(src_hw, dst_hw)
    outs = []
    for impl in (native, twin):
        out = _out(layout, dst_hw, np.uint8, batch=True)
        impl["preprocess_frame"](frame, out, layout, _lut(np.dtype(np.uint8)), plan, tables.channel_map(order, "RGB"),
                                 np.empty((2, 3)))  # fmt: skip
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("cmap", [[0, 0, 0], [2, 2, 1], [1], [2, 0]])
def test_native_matches_twin_for_any_channel_map(native, twin, rng, cmap) -> None:
    """The kernel takes any in-range channel map, not only permutations: repeated channels, fewer model channels."""
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    c = len(cmap)
    lut = tables.normalize_lut(0.5, 0.25, channels=c)
    outs = []
    for impl in (native, twin):
        out = np.empty((1, c, 20, 30), np.float32)
        st = np.empty((2, c))
        impl["preprocess_frame"](frame, out, "NCHW", lut, tables.resize_plan((48, 64), (20, 30)),
                                 np.array(cmap, np.int32), st)  # fmt: skip
        outs.append((out, st))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("width", [4200, 4096, 15])
def test_stats_exact_on_long_bright_rows(native, twin, rng, width) -> None:
    """Rows longer than 256 blocks of 16 pixels (the native kernel's 16-bit sum lanes are flushed every 256 blocks)
    and at the brightest values, where the 16-bit lanes and squares are closest to overflowing."""
    frame = np.full((3, width, 3), 255, np.uint8)
    frame[1] = rng.integers(0, 256, (width, 3), dtype=np.uint8)
    frame[2, :, 2] = 0
    plan = tables.resize_plan((3, width), (2, 8))
    stats = []
    for impl in (native, twin):
        st = np.full((2, 3), np.nan)
        out = np.empty((2, 8, 3), np.float32)
        impl["preprocess_frame"](frame, out, "NHWC", _lut(np.dtype(np.float32)), plan, tables.channel_map("RGB", "RGB"),
                                 st)  # fmt: skip
        stats.append(st)
    np.testing.assert_array_equal(stats[0], stats[1])
    pixels = frame.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats[0][0], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats[0][1], pixels.std(axis=0), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("hw", [(1100, 1000), (1, 1_050_000), (2, 1_048_577)])
def test_stats_exact_on_frames_longer_than_one_summed_row(native, twin, hw) -> None:
    """Contiguous packed rows are summed as one long row of at most 1 048 576 pixels (the 32-bit square lanes'
    exact limit): a bright frame of more pixels than that, a row just under it, and rows just over it."""
    frame = np.full((*hw, 3), 255, np.uint8)
    frame[0, :7] = 3
    frame[-1, -5:, 1] = 0
    plan, stats = tables.resize_plan(hw, (2, 2)), []
    for impl in (native, twin):
        st = np.full((2, 3), np.nan)
        impl["preprocess_frame"](frame, np.empty((2, 2, 3), np.uint8), "NHWC", _lut(np.dtype(np.uint8)), plan,
                                 tables.channel_map("RGB", "RGB"), st)  # fmt: skip
        stats.append(st)
    np.testing.assert_array_equal(stats[0], stats[1])
    pixels = frame.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats[0][0], pixels.mean(axis=0), rtol=1e-12)


def test_float_output_is_normalized_pixels(impl, rng) -> None:
    frame = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    out = np.empty((1, 3, 6, 5), np.float32)
    impl["preprocess_frame"](
        frame, out, "NCHW", tables.normalize_lut(MEAN, STD), None, tables.channel_map("RGB", "RGB"), np.empty((2, 3))
    )
    expected = (frame.astype(np.float64) / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(out[0].transpose(1, 2, 0), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype,zp", [(np.uint8, 128), (np.int8, -3)])
def test_quantized_output_equals_quantizing_the_float_output(impl, rng, dtype, zp) -> None:
    """Quantizing through the lookup table is exactly QuantizeLinear applied to the float model input."""
    frame = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    plan = tables.resize_plan((40, 30), (16, 16))
    cmap = tables.channel_map("RGB", "RGB")
    as_float = np.empty((1, 3, 16, 16), np.float32)
    impl["preprocess_frame"](frame, as_float, "NCHW", tables.normalize_lut(MEAN, STD), plan, cmap, np.empty((2, 3)))
    direct = np.empty((1, 3, 16, 16), dtype)
    lut = tables.quantized_lut(MEAN, STD, 0.0186, zp, dtype)
    impl["preprocess_frame"](frame, direct, "NCHW", lut, plan, cmap, np.empty((2, 3)))
    expected = np.empty_like(direct)
    impl["quantize"](as_float, np.array([0.0186], np.float32), np.array([zp], np.int32), expected)
    np.testing.assert_array_equal(direct, expected)


@pytest.mark.parametrize(
    "src_hw,dst_hw", [s for s in SIZES if s[0] != s[1]] + [((480, 640), (240, 320)), ((33, 17), (224, 224))]
)
def test_resize_follows_opencv_inter_linear(impl, rng, src_hw, dst_hw) -> None:
    """Same pixel-centre convention, border clamping and 11-bit weights as cv2.resize(INTER_LINEAR); edge rounds
    the exact fixed-point sum once where OpenCV truncates intermediate sums, so values differ by at most 1."""
    cv2 = pytest.importorskip("cv2")
    frame = rng.integers(0, 256, (*src_hw, 3), dtype=np.uint8)
    identity = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    out = np.empty((*dst_hw, 3), np.uint8)
    plan = tables.resize_plan(src_hw, dst_hw)
    impl["preprocess_frame"](frame, out, "NHWC", identity, plan, tables.channel_map("RGB", "RGB"), np.empty((2, 3)))
    ref = cv2.resize(frame, dst_hw[::-1], interpolation=cv2.INTER_LINEAR).reshape(out.shape)
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1
    assert np.mean(diff == 0) > 0.6  # a convention shifted by a pixel or half a pixel would differ far more
    exact = frame.astype(np.float64)  # and it is no further than OpenCV from the exact bilinear value
    ys = np.clip((np.arange(dst_hw[0]) + 0.5) * src_hw[0] / dst_hw[0] - 0.5, 0, src_hw[0] - 1)
    xs = np.clip((np.arange(dst_hw[1]) + 0.5) * src_hw[1] / dst_hw[1] - 0.5, 0, src_hw[1] - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, src_hw[0] - 1), np.minimum(x0 + 1, src_hw[1] - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = exact[y0][:, x0] * (1 - wx) + exact[y0][:, x1] * wx
    bottom = exact[y1][:, x0] * (1 - wx) + exact[y1][:, x1] * wx
    ideal = top * (1 - wy) + bottom * wy
    assert np.abs(out - ideal).mean() <= np.abs(ref - ideal).mean() + 1e-9


def test_resize_plan_is_frozen_and_checked() -> None:
    plan = tables.resize_plan((480, 640), (224, 224))
    assert plan.src_hw == (480, 640)
    assert not plan.xofs.flags.writeable and not plan.ybeta.flags.writeable
    assert np.all(plan.xalpha.sum(axis=1) == 2048) and np.all(plan.ybeta.sum(axis=1) == 2048)
    assert tables.resize_plan((10, 10), (10, 10)) is None


# ------------------------------------------------------------------------------------------------------ bad input


def _good(rng: np.random.Generator) -> dict[str, object]:
    return {
        "src": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "out": np.empty((1, 3, 24, 24), np.float32),
        "layout": "NCHW",
        "lut": tables.normalize_lut(MEAN, STD),
        "plan": tables.resize_plan((48, 64), (24, 24)),
        "channel_map": tables.channel_map("RGB", "RGB"),
        "stats": np.empty((2, 3)),
    }


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


BAD = {
    "float frame": (
        ShapeError,
        "src: expected 3-D uint8 array, got float32",
        lambda g: {"src": g["src"].astype(np.float32)},
    ),
    "2-D frame": (ShapeError, "src: expected 3-D uint8", lambda g: {"src": g["src"][..., 0]}),
    "unknown layout": (ConfigError, "layout: expected one of", lambda g: {"layout": "CHWN"}),
    "batch of 2": (ShapeError, "out: expected a batch of 1", lambda g: {"out": np.empty((2, 3, 24, 24), np.float32)}),
    "read-only out": (ShapeError, "out: expected a writable array", lambda g: {"out": _read_only(g["out"])}),
    "float64 out": (
        ShapeError,
        "out: expected 3 or 4-D float32 or int8 or uint8",
        lambda g: {"out": np.empty((1, 3, 24, 24))},
    ),
    "lut of another dtype": (ShapeError, "lut: expected float32", lambda g: {"lut": g["lut"].astype(np.float64)}),
    "lut for 1 channel": (ShapeError, "lut: expected float32 array of shape (3, 256)", lambda g: {"lut": g["lut"][:1]}),
    "channel out of range": (
        ConfigError,
        "channel_map: expected source channel indices in [0, 3)",
        lambda g: {"channel_map": np.array([0, 1, 3], np.int32)},
    ),
    "plan for another frame": (
        ShapeError,
        "plan: made for a (48, 65) frame",
        lambda g: {"plan": tables.resize_plan((48, 65), (24, 24))},
    ),
    "plan for another model size": (
        ShapeError,
        "plan.xofs: expected int32 array of shape (24, 2)",
        lambda g: {"plan": tables.resize_plan((48, 64), (24, 25))},
    ),
    "no plan, sizes differ": (ShapeError, "without a resize plan", lambda g: {"plan": None}),
    "read-only stats": (ShapeError, "stats: expected a writable array", lambda g: {"stats": _read_only(g["stats"])}),
    "stats of wrong shape": (
        ShapeError,
        "stats: expected float64 array of shape (2, 3)",
        lambda g: {"stats": np.empty(6)},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_the_same_error_from_both(native, twin, rng, case) -> None:
    exc_type, message, change = BAD[case]
    args = _good(rng)
    args.update(change(args))
    errors = []
    for impl in (native, twin):
        with pytest.raises(exc_type) as info:
            impl["preprocess_frame"](**args)
        errors.append(str(info.value))
    assert message in errors[0]
    assert errors[0] == errors[1]


def test_compiled_kernel_allocates_no_frame_buffers(native, rng) -> None:
    """The twin's temporaries are megabytes; the compiled kernel's only allocations are its argument checks'
    small views."""
    import tracemalloc

    args = _good(rng)
    args["src"] = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    args["plan"] = tables.resize_plan((480, 640), (24, 24))
    native["preprocess_frame"](**args)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(20):
            native["preprocess_frame"](**args)
        _, peak_native = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reference.preprocess_frame(**args)
        _, peak_twin = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_native - base < 4096
    assert peak_twin - base > 1_000_000  # the measurement does see NumPy buffers
