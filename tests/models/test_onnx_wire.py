"""The protobuf reader of quantization parameters against the ``onnx`` package as the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.errors import ModelError
from edge.models._onnx_wire import quant_params
from edge.tooling.model_builders import float_cnn_onnx, u8s8_cnn_onnx


def oracle(model_bytes: bytes, names: set[str]) -> dict[str, tuple[float, int]]:
    """What ``onnx`` itself says: the scalar scale and zero point of each DequantizeLinear input / QuantizeLinear
    output among ``names`` (the last such node wins)."""
    model = onnx.load_model_from_string(model_bytes)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in names:
            key = node.input[0]
        elif node.op_type == "QuantizeLinear" and node.output[0] in names:
            key = node.output[0]
        else:
            continue
        scale = inits.get(node.input[1])
        zp = inits.get(node.input[2]) if len(node.input) > 2 else np.zeros(1)
        if scale is not None and scale.size == 1:
            found[key] = (float(scale.reshape(-1)[0]), int((np.zeros(1) if zp is None else zp).reshape(-1)[0]))
    return found


def test_quantized_cnn_matches_onnx(tmp_path: Path) -> None:
    data = u8s8_cnn_onnx(tmp_path / "q.onnx", hw=16, width=4).read_bytes()
    model = onnx.load_model_from_string(data)
    names = {v.name for v in (*model.graph.input, *model.graph.output)}
    want = oracle(data, names)
    assert want, "the test model has an integer input with a DequantizeLinear"
    assert quant_params(data, names) == want


def test_float_model_has_none(tmp_path: Path) -> None:
    data = float_cnn_onnx(tmp_path / "f.onnx", hw=8, width=4).read_bytes()
    assert quant_params(data, {"input", "x", "images"}) == {}


@pytest.mark.parametrize("zp_type", [TensorProto.UINT8, TensorProto.INT8])
@pytest.mark.parametrize("raw", [True, False])
def test_hand_built_graph_every_encoding(zp_type: int, raw: bool) -> None:
    """Scale in raw bytes or float_data, zero point in raw bytes or int32_data, a negative int8 zero point, a
    per-channel pair that must be skipped, and a QuantizeLinear output."""
    zp_value = -7 if zp_type == TensorProto.INT8 else 131
    np_zp = np.array(zp_value, np.int8 if zp_type == TensorProto.INT8 else np.uint8)
    inits = [
        helper.make_tensor("s", TensorProto.FLOAT, [], np.array([0.0375], np.float32).tobytes() if raw else [0.0375],
                           raw=raw),
        helper.make_tensor("z", zp_type, [], np_zp.reshape(1).tobytes() if raw else [zp_value], raw=raw),
        helper.make_tensor("s2", TensorProto.FLOAT, [2], [0.5, 0.25]),
        helper.make_tensor("z2", zp_type, [2], [0, 0]),
        helper.make_tensor("so", TensorProto.FLOAT, [], [0.125]),
    ]  # fmt: skip
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w", "s2", "z2"], ["wf"], axis=0),
        helper.make_node("Add", ["xf", "xf"], ["yf"]),
        helper.make_node("QuantizeLinear", ["yf", "so"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", zp_type, [1, 4]), helper.make_tensor_value_info("w", zp_type, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4])],
        initializer=inits,
    )  # fmt: skip
    data = helper.make_model(graph).SerializeToString()
    got = quant_params(data, {"x", "w", "y"})
    assert got == oracle(data, {"x", "w", "y"})
    assert got == {"x": (pytest.approx(0.0375), zp_value), "y": (0.125, 0)}


def test_garbage_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="ONNX"):
        quant_params(b"\x3a\xff\xff\xff\x7f", {"x"})
