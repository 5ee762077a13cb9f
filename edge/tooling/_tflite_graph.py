"""The pieces of a TFLite graph as :mod:`edge.tooling.tflite_export` writes it: the flatbuffer under construction
(tensors, buffers, operators; serialized with the schema classes that ship inside ``ai-edge-litert``), the values
that stand for ONNX tensors, constants, ops waiting for their output quantization, and the shape/padding maths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Const", "Flatbuffer", "Pending", "Value", "same_pads", "tfl_shape"]


@dataclass
class Value:
    """A TFLite tensor standing for an ONNX tensor: ``index``; ``shape`` the ONNX (NCHW) shape; ``scale`` and
    ``zero_point`` (int8) or None for float; ``chw`` (C, H, W) when this 2-D tensor is an NHWC flatten."""

    index: int
    shape: tuple[int, ...]
    scale: float | None
    zero_point: int | None
    chw: tuple[int, int, int] | None = None


@dataclass
class Const:
    """An initializer, behind a ``DequantizeLinear`` (``q`` the integers, ``scale``/``zero_point`` arrays, ``axis``)
    or plain float (``scale`` None)."""

    q: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int = 0

    def real(self) -> np.ndarray:
        if self.scale is None:
            return self.q.astype(np.float64)
        shape = [1] * self.q.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        zp = self.zero_point.astype(np.float64).reshape(shape) if self.zero_point is not None else 0.0
        return (self.q.astype(np.float64) - zp) * self.scale.astype(np.float64).reshape(shape)


@dataclass
class Pending:
    """A CONV_2D / FULLY_CONNECTED / ADD / RELU whose output tensor is made once its quantization is known (the
    next ``QuantizeLinear``; in a float model, its first consumer); a following ``Relu`` sets ``relu`` (fused)."""

    code: str
    inputs: list[int]
    shape: tuple[int, ...]  # ONNX shape of the output
    tfl_shape: list[int]
    node: str
    in_scale: float | None = None
    w_scale: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: int = 1  # Padding.VALID
    relu: bool = False
    chw: tuple[int, int, int] | None = None


class Flatbuffer:
    """Tensors, buffers and operators of one TFLite subgraph; :meth:`finish` serializes the model."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as s

        self.s = s
        self.buffers: list[Any] = [s.BufferT()]
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.codes: dict[int, tuple[int, int]] = {}

    def tensor(self, name: str, shape: list[int], dtype: Any, scale: Any = None, zero_point: Any = None,
               data: np.ndarray | None = None) -> int:  # fmt: skip
        s = self.s
        t = s.TensorT()
        t.name, t.shape = name, [int(d) for d in shape]
        t.type = {np.int8: s.TensorType.INT8, np.int32: s.TensorType.INT32, np.float32: s.TensorType.FLOAT32}[dtype]
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(v) for v in np.atleast_1d(zero_point)]
            q.quantizedDimension = 0
            t.quantization = q
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: str, version: int, inputs: list[int], outputs: list[int], options: Any = None) -> None:
        s = self.s
        builtin = getattr(s.BuiltinOperator, code)
        if builtin not in self.codes:
            self.codes[builtin] = (len(self.codes), version)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes[builtin][0], inputs, outputs
        if options is not None:
            o.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        import flatbuffers

        s = self.s
        codes = []
        for builtin, (_, version) in sorted(self.codes.items(), key=lambda kv: kv[1][0]):
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), version
            codes.append(oc)
        sg = s.SubGraphT()
        sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = self.tensors, inputs, outputs, self.operators, "main"
        model = s.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [sg], self.buffers
        model.description = description
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def tfl_shape(shape: tuple[int, ...]) -> list[int]:
    """The TFLite shape of an ONNX shape: NCHW feature maps are NHWC, everything else as is."""
    return [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)


def same_pads(size: int, k: int, stride: int, dilation: int, lower: bool = False) -> tuple[int, int]:
    """TF/ONNX SAME padding (before, after) of one spatial axis: output = ceil(size / stride)."""
    eff = dilation * (k - 1) + 1
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)
