"""ONNX Runtime smoke test: a one-node int8 model built in code, run by onnxruntime, checked against edge's kernels.

The model is ``QuantizeLinear`` (per-tensor scale and zero point): the first operator of every int8 model ``edge``
runs, and the one whose rounding ``edge.kernels.quantize`` must match. Its protobuf is written by hand below (a few
fields of onnx.proto3), so the test needs no ``onnx`` package on the target. Without onnxruntime it skips, unless
``EDGE_REQUIRE_ORT=1`` (the aarch64 stage sets it): there a missing runtime is a failure, not a pass.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from edge.kernels import implementation

if os.environ.get("EDGE_REQUIRE_ORT") == "1":
    import onnxruntime as ort
else:
    ort = pytest.importorskip("onnxruntime")

# onnx.proto3 enum values used here
FLOAT, UINT8 = 1, 2
SCALE, ZERO_POINT = 0.05, 128


# --- a minimal protobuf writer: varint and length-delimited fields are all a small ONNX model needs -----------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[int]) -> bytes:
    shape = b"".join(_bytes(1, _int(1, d)) for d in dims)  # TensorShapeProto.dim { dim_value }
    tensor_type = _int(1, elem_type) + _bytes(2, shape)  # TypeProto.Tensor
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))  # ValueInfoProto { name, type { tensor_type } }


def _scalar(name: str, elem_type: int, raw: bytes) -> bytes:
    return _int(2, elem_type) + _bytes(8, name) + _bytes(9, raw)  # TensorProto { data_type, name, raw_data }


def quantize_linear_model(shape: list[int]) -> bytes:
    """ModelProto bytes: ``y = QuantizeLinear(x, scale, zero_point)``, x float32 of ``shape``, y uint8."""
    node = b"".join(_bytes(1, n) for n in ("x", "scale", "zp")) + _bytes(2, "y") + _bytes(4, "QuantizeLinear")
    graph = (
        _bytes(1, node)
        + _bytes(2, "edge_smoke")
        + _bytes(5, _scalar("scale", FLOAT, struct.pack("<f", SCALE)))
        + _bytes(5, _scalar("zp", UINT8, bytes([ZERO_POINT])))
        + _bytes(11, _value_info("x", FLOAT, shape))
        + _bytes(12, _value_info("y", UINT8, shape))
    )
    opset = _bytes(1, "") + _int(2, 13)  # OperatorSetIdProto { domain "", version 13 }
    return _int(1, 8) + _bytes(2, "edge-tests") + _bytes(7, graph) + _bytes(8, opset)  # ir_version 8


def test_onnxruntime_quantize_linear_matches_edge_kernels():
    shape = [4, 33]
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x[0, :4] = [0.025, 0.075, -0.025, 100.0]  # halves of the scale (round to even) and saturation

    session = ort.InferenceSession(quantize_linear_model(shape), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})

    scale, zp = np.array([SCALE], np.float32), np.array([ZERO_POINT], np.int32)
    for backend in ("numpy", "native"):
        ours = np.zeros(shape, np.uint8)
        implementation(backend)["quantize"](x, scale, zp, ours)
        np.testing.assert_array_equal(y, ours, err_msg=f"onnxruntime vs edge {backend} quantize")
