"""Small ONNX models with dynamic dimensions, built in code for the shape, state and multi-input tests, and the real
silero-vad model found inside its installed wheel (``pip install --no-deps silero-vad==6.2.3``; never downloaded).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.tooling.model_builders import IR_VERSION, OPSET

SILERO_INSTALL = "pip install --no-deps 'silero-vad==6.2.3' (edge reads only the ONNX file inside its wheel)"


def silero_vad_path() -> Path | None:
    """``silero_vad/data/silero_vad.onnx`` of the installed silero-vad wheel (its package is not imported: that
    would need torch), or None when the wheel is not installed."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    return path if path.exists() else None


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    return path


def dynamic_scale_onnx(path: Path) -> Path:
    """``x[batch x 4] float32`` → ``y = 2 x`` (``[batch x 4]``): dynamic in and out."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "dyn_scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [two],
    )
    return _save(graph, path)


def reshape3_onnx(path: Path) -> Path:
    """``x[n] float32`` reshaped to ``[-1, 3]``: any ``n`` not divisible by 3 is rejected at run time."""
    shape = numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [shape],
    )
    return _save(graph, path)


def nonzero_onnx(path: Path) -> Path:
    """``x[4] float32`` → ``idx = NonZero(x)`` (``int64 [1 x count]``): an output whose shape depends on the values."""
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"])],
        "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "count"])],
    )
    return _save(graph, path)


def accumulator_onnx(path: Path, *, broken: bool = False) -> Path:
    """A stateful model: ``x[1 x n]``, ``gain`` (a float32 scalar constant input), ``state[1 x n]`` →
    ``y = state + gain * x`` and ``state_out = y`` (all float32): with ``state_out`` carried into ``state`` each
    frame, ``y`` is the running sum of ``gain * x``. ``n`` is dynamic. ``broken``: ``gain * x`` is divided by zero
    (infinite outputs, as a bad model version would give)."""
    fault = [helper.make_node("Div", ["gx0", "zero"], ["gx"])] if broken else []
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "gain"], ["gx0" if broken else "gx"]),
            *fault,
            helper.make_node("Add", ["state", "gx"], ["y"]),
            helper.make_node("Identity", ["y"], ["state_out"]),
        ],
        "accumulator",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"]),
            helper.make_tensor_value_info("gain", TensorProto.FLOAT, []),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, "n"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"]),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, "n"]),
        ],
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")] if broken else [],
    )
    return _save(graph, path)
