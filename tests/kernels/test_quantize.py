"""Quantize/dequantize: native vs twin (exact), ONNX QuantizeLinear semantics on hand-worked values, errors."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ConfigError, ShapeError

SPECIAL = np.array([0.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, 300.0, -300.0, np.nan, np.inf, -np.inf])


def _variants(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> dict[str, np.ndarray]:
    big = (rng.normal(0.0, 40.0, tuple(2 * s + 1 for s in shape))).astype(dtype)
    base = np.ascontiguousarray(big[tuple(slice(0, s) for s in shape)])
    flat = base.reshape(-1)
    flat[: min(flat.size, SPECIAL.size)] = SPECIAL[: flat.size]  # halfway values, saturation, NaN and inf
    return {
        "contiguous": base,
        "strided": big[tuple(slice(0, 2 * s, 2) for s in shape)],
        "transposed": np.ascontiguousarray(base.T).T,
    }


SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (1, 3, 5, 4), (2, 4, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("xdtype", [np.float32, np.float64])
@pytest.mark.parametrize("qdtype", [np.int8, np.uint8])
@pytest.mark.parametrize("per_channel_axis", [None, 0, -1])
def test_native_matches_twin_exactly(native, twin, rng, shape, xdtype, qdtype, per_channel_axis) -> None:
    if per_channel_axis is None:
        scale, zp, axis = np.array([0.37], np.float32), np.array([3 if qdtype == np.int8 else 128], np.int32), -1
    else:
        axis = per_channel_axis
        c = shape[axis]
        scale = rng.uniform(0.05, 2.0, c).astype(np.float32)
        zp = rng.integers(-10, 10, c).astype(np.int32) + (128 if qdtype == np.uint8 else 0)
    for name, x in _variants(rng, shape, xdtype).items():
        q = [np.zeros(shape, qdtype) for _ in range(2)]
        d = [np.zeros(shape, np.float32) for _ in range(2)]
        for i, impl in enumerate((native, twin)):
            impl["quantize"](x, scale, zp, q[i], axis)
            impl["dequantize"](q[i], scale, zp, d[i], axis)
        np.testing.assert_array_equal(q[0], q[1], err_msg=name)
        np.testing.assert_array_equal(d[0], d[1], err_msg=name)


def test_round_half_to_even_and_saturation(impl) -> None:
    """Worked by hand from the ONNX QuantizeLinear definition (NaN → zero point is edge's documented choice)."""
    q = np.zeros(SPECIAL.shape, np.int8)
    impl["quantize"](SPECIAL.astype(np.float32), np.array([1.0], np.float32), np.array([0], np.int32), q)
    assert q.tolist() == [0, 0, 2, 2, 0, -2, -2, 126, 127, 127, -128, 0, 127, -128]
    u = np.zeros(SPECIAL.shape, np.uint8)
    impl["quantize"](SPECIAL, np.array([0.5], np.float32), np.array([128], np.int32), u)
    assert u.tolist() == [128, 129, 131, 133, 127, 125, 123, 255, 255, 255, 0, 128, 255, 0]


def test_per_channel_uses_each_channels_parameters(impl) -> None:
    x = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], np.float32)
    scale = np.array([1.0, 0.5, 0.25], np.float32)
    zp = np.array([0, 10, -10], np.int32)
    q = np.zeros((2, 3), np.int8)
    impl["quantize"](x, scale, zp, q, axis=1)
    assert q.tolist() == [[1, 12, -6], [2, 14, -2]]
    back = np.zeros((2, 3), np.float32)
    impl["dequantize"](q, scale, zp, back, axis=1)
    np.testing.assert_array_equal(back, x)


def test_round_trip_error_is_within_half_a_step(impl, rng) -> None:
    x = rng.uniform(-1.0, 1.0, 1000).astype(np.float32)
    scale, zp = np.array([2.0 / 255], np.float32), np.array([128], np.int32)
    q = np.zeros(x.shape, np.uint8)
    back = np.zeros(x.shape, np.float32)
    impl["quantize"](x, scale, zp, q)
    impl["dequantize"](q, scale, zp, back)
    assert np.max(np.abs(back - x)) <= scale[0] / 2 * (1 + 1e-6)


BAD = {
    "int input": (ShapeError, "x: expected 1 or 2 or 3 or 4-D float32 or float64", {"x": np.zeros(3, np.int32)}),
    "5-D input": (ShapeError, "x: expected 1 or 2 or 3 or 4-D", {"x": np.zeros((1, 1, 1, 1, 3), np.float32)}),
    "out shape": (ShapeError, "out: expected int8 or uint8 array of shape (3,)", {"out": np.zeros(4, np.int8)}),
    "out dtype": (ShapeError, "out: expected int8 or uint8", {"out": np.zeros(3, np.int16)}),
    "zero scale": (ConfigError, "scale: expected finite values > 0", {"scale": np.array([0.0], np.float32)}),
    "zp out of range": (
        ConfigError,
        "zero_point: expected values in [-128, 127]",
        {"zero_point": np.array([200], np.int32)},
    ),
    "zp length": (
        ShapeError,
        "zero_point: expected int32 array of shape (1,)",
        {"zero_point": np.array([1, 2], np.int32)},
    ),
    "per-channel length": (
        ShapeError,
        "scale: expected 3 per-channel values",
        {"scale": np.ones(2, np.float32), "zero_point": np.zeros(2, np.int32)},
    ),
    "bad axis": (
        ConfigError,
        "axis: expected an axis of a 1-D array",
        {"scale": np.ones(3, np.float32), "zero_point": np.zeros(3, np.int32), "axis": 2},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_the_same_error_from_both(native, twin, case) -> None:
    exc_type, message, change = BAD[case]
    errors = []
    for impl in (native, twin):
        args = {
            "x": np.zeros(3, np.float32),
            "scale": np.array([0.1], np.float32),
            "zero_point": np.array([0], np.int32),
            "out": np.zeros(3, np.int8),
            "axis": -1,
        }
        args.update(change)
        with pytest.raises(exc_type) as info:
            impl["quantize"](**args)
        errors.append(str(info.value))
    assert message in errors[0]
    assert errors[0] == errors[1]


def test_read_only_output_is_refused(impl) -> None:
    out = np.zeros(3, np.float32)
    out.flags.writeable = False
    with pytest.raises(ShapeError, match="out: expected a writable array"):
        impl["dequantize"](np.zeros(3, np.int8), np.array([0.1], np.float32), np.array([0], np.int32), out)
