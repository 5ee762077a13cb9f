"""ONNX → TFLite without TensorFlow: the full-int8 (and float) TFLite variants of a small ONNX CNN, written with the
flatbuffer schema that ships inside ``ai-edge-litert``.

* :func:`qdq_onnx_to_tflite` converts a U8S8 QDQ model as written by :func:`edge.tooling.toolchain.quantize_u8s8`
  (uint8 NCHW graph input [1,C,H,W] whose ``QuantizeLinear`` was removed; int8 weights, per output channel or per
  tensor, zero point 0, behind ``DequantizeLinear``; int32 biases; uint8 activations between Q/DQ pairs) into a
  full-int8 model: int8 NHWC input [1,H,W,C] (the uint8 zero point − 128, the same scale: the very same real
  values), int8 activations, int8 weights (``quantizedDimension`` 0), int32 biases at input_scale × weight_scale[c],
  int8 outputs (the last ``QuantizeLinear``'s scale, zero point − 128; the ONNX model's float outputs are that
  tensor dequantized, which the loop's policy does from the output spec).
* :func:`float_onnx_to_tflite` converts the float model of the same shape (float32 NHWC input, float32 output).

Ops: ``Conv`` (2-D, group 1, any kernel/stride/dilation; VALID, SAME or explicit pads — explicit pads that are not
TF's SAME become a ``PAD`` before a VALID conv) with an optional following ``Relu`` fused, ``Flatten``/``Reshape``
of a [1,C,H,W] feature map to [1,C·H·W] (TFLite flattens NHWC, so the next ``FULLY_CONNECTED``'s weight columns
are permuted to ONNX's C,H,W order and the result equals ONNX's), ``Gemm`` and ``MatMul`` + ``Add`` (+ ``Relu``)
as ``FULLY_CONNECTED`` (a QDQ graph requantizes the MatMul's output before the ``Add``: then an int8 ``ADD`` of
the quantized bias, as ONNX computes it), ``Relu`` on its own, ``Identity``. Anything else is refused with a
:class:`ModelError` naming the node and the op; so is a QDQ graph whose scales TFLite's int8 scheme cannot express.

**How to package the result** (``edge model pack`` / :func:`edge.models.manage.pack_model`): the ``.tflite`` takes
the same ``[preprocess]`` ``mean``/``std``/``channel_order`` as the ONNX model but ``layout = "NHWC"``; its input
is int8 [1,H,W,C] (``dtype = "int8"``, scale as the ONNX input, zero point − 128) and its output int8 with scale and
zero point — ``pack_model`` reads those IO specs from the model itself. The loop's preprocessing kernel quantizes a
camera frame straight into that int8 NHWC buffer (:func:`edge.kernels.tables.quantized_lut` with dtype int8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError
from edge.tooling._tflite_graph import Const, Flatbuffer, Pending, Value, same_pads, tfl_shape

__all__ = ["SUPPORTED_OPS", "float_onnx_to_tflite", "qdq_onnx_to_tflite"]

SUPPORTED_OPS = ("Conv", "Relu", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Identity")
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class _Converter:
    """One ONNX graph walked in order; node handlers are the ``_op_<OpType>`` methods."""

    def __init__(self, src: Path, quantized: bool) -> None:
        import onnx
        from onnx import helper, numpy_helper

        try:
            model = onnx.load_model(str(src))
        except Exception as exc:
            raise ModelError(f"{src}: expected an ONNX model, got a file onnx cannot read ({exc})") from exc
        self.src, self.quantized, self.graph = src, quantized, model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.attrs = lambda node: {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.fb = Flatbuffer()
        self.dtype = np.int8 if quantized else np.float32
        self.values: dict[str, Value] = {}
        self.consts: dict[str, Const] = {}
        self.pending: dict[str, Pending] = {}

    def _error(self, node: Any, what: str) -> ModelError:
        name = node.name or node.output[0]
        return ModelError(f"{self.src}: node {name!r} ({node.op_type}): {what}")

    def convert(self) -> bytes:
        in_index = self._graph_input()
        for node in self.graph.node:
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is None or (not self.quantized and node.op_type in _QDQ_OPS):
                extra = " and QuantizeLinear/DequantizeLinear" if self.quantized else " (a float model: no Q/DQ)"
                raise self._error(
                    node, f"op {node.op_type} is not supported by the TFLite export; expected one of "
                    f"{', '.join(SUPPORTED_OPS)}{extra}"
                )  # fmt: skip
            handler(node)
        outputs = []
        for out in self.graph.output:
            v = self._value(out.name, None)
            if len(v.shape) != 2:
                raise ModelError(f"{self.src}: output {out.name!r}: expected a 2-D output, got shape {list(v.shape)}")
            self.fb.tensors[v.index].name = out.name
            outputs.append(v.index)
        kind = "full-int8" if self.quantized else "float32"
        return self.fb.finish([in_index], outputs, f"edge.tooling.tflite_export {kind} from {self.src.name}")

    # -- values, constants and quantization parameters ----------------------------------------------------------
    def _act_qparams(self, node: Any) -> tuple[float, int]:
        """(scale, int8 zero point) of an activation Q/DQ node: per tensor; a uint8 zero point moves by −128."""
        scale = np.asarray(self.inits.get(node.input[1], np.nan), np.float64)
        zp = np.asarray(self.inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
        if scale.size != 1 or zp.size != 1 or not np.isfinite(scale).all() or float(scale.flat[0]) <= 0:
            raise self._error(node, f"expected a per-tensor activation scale > 0 and zero point, got {scale} / {zp}")
        if zp.dtype not in (np.uint8, np.int8):
            raise self._error(node, f"expected uint8 or int8 activations, got {zp.dtype}")
        return float(scale.flat[0]), int(zp.flat[0]) - (128 if zp.dtype == np.uint8 else 0)

    def _value(self, name: str, node: Any) -> Value:
        if name in self.pending:
            if self.quantized:
                where = "an output" if node is None else f"node {node.name or node.output[0]!r} ({node.op_type})"
                raise ModelError(
                    f"{self.src}: {where} reads {name!r}, the float output of {self.pending[name].node!r}: expected "
                    "a QuantizeLinear after it (a U8S8 QDQ model)"
                )
            self._finish(name, None)
        if name not in self.values:
            where = "an output" if node is None else f"node {node.name or node.output[0]!r} ({node.op_type})"
            raise ModelError(
                f"{self.src}: {where} reads {name!r}: expected the graph input or the output of a supported op"
            )
        return self.values[name]

    def _const(self, name: str, node: Any) -> Const:
        if name in self.consts:
            return self.consts[name]
        if name in self.inits:
            return Const(np.asarray(self.inits[name]))
        raise self._error(node, f"input {name!r}: expected a constant (an initializer, or a DequantizeLinear of one)")

    def _weights(self, name: str, node: Any, out_axis: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(weights, scales): int8 weights and their per-tensor or per-output-channel scales, or float weights."""
        c = self._const(name, node)
        if not self.quantized:
            if c.scale is not None or c.q.dtype.kind != "f":
                raise self._error(node, f"weights {name!r}: expected float weights, got {c.q.dtype} behind Q/DQ")
            return c.q.astype(np.float32), None
        if c.scale is None or c.q.dtype != np.int8 or np.any(c.zero_point != 0):
            raise self._error(
                node, f"weights {name!r}: expected int8 weights with zero point 0 behind a DequantizeLinear, got "
                f"{c.q.dtype}{'' if c.scale is not None else ' (not quantized)'}"
            )  # fmt: skip
        if c.scale.size != 1 and (c.axis % c.q.ndim != out_axis or c.scale.size != c.q.shape[out_axis]):
            raise self._error(
                node, f"weights {name!r}: expected per-tensor or per-output-channel scales (axis {out_axis}, "
                f"{c.q.shape[out_axis]} of them), got {c.scale.size} along axis {c.axis}"
            )  # fmt: skip
        return c.q, c.scale.astype(np.float32)

    def _bias(self, name: str | None, node: Any, n: int, in_scale: float | None, w_scale: np.ndarray | None) -> int:
        """The bias tensor: float32, or int32 at in_scale × w_scale[c] (ONNX's int32 bias kept when its scale is
        that product, else requantized from its real values)."""
        real = np.zeros(n) if name is None else self._const(name, node).real().reshape(-1)
        if real.size != n:
            raise self._error(node, f"bias {name!r}: expected {n} values, got {real.size}")
        tname = name or f"{node.output[0]}_bias"
        if not self.quantized:
            return self.fb.tensor(tname, [n], np.float32, data=real.astype(np.float32))
        assert in_scale is not None and w_scale is not None
        bscale = (np.float32(in_scale) * w_scale).astype(np.float32)
        c = self.consts.get(name or "")
        full = np.broadcast_to(bscale, (n,))
        if (c is not None and c.q.dtype == np.int32 and not np.any(c.zero_point != 0)
                and np.allclose(np.broadcast_to(c.scale, (n,)), full, rtol=1e-6, atol=0)):  # fmt: skip
            q = c.q.reshape(-1).astype(np.int64)
        else:
            q = np.rint(real / full.astype(np.float64))
        if np.any(np.abs(q) > 2**31 - 1):
            raise self._error(node, f"bias {tname!r}: does not fit int32 at scale input × weight scale")
        return self.fb.tensor(tname, [n], np.int32, bscale, np.zeros(bscale.size, np.int64), data=q.astype(np.int32))

    def _graph_input(self) -> int:
        from onnx import TensorProto

        ins = [i for i in self.graph.input if i.name not in self.inits]
        if len(ins) != 1:
            raise ModelError(f"{self.src}: expected one image input, got {[i.name for i in ins]}")
        name, tt = ins[0].name, ins[0].type.tensor_type
        shape = tuple(d.dim_value for d in tt.shape.dim)
        if len(shape) != 4 or shape[0] > 1 or min(shape[1:]) < 1:
            raise ModelError(f"{self.src}: input {name!r}: expected a [1,C,H,W] (NCHW) image, got {list(shape)}")
        shape = (1, *shape[1:])
        elem = TensorProto.DataType.Name(tt.elem_type)
        if not self.quantized:
            if elem != "FLOAT":
                raise ModelError(f"{self.src}: input {name!r}: expected float32 (a float model), got {elem}")
            index = self.fb.tensor(name, tfl_shape(shape), np.float32)
            self.values[name] = Value(index, shape, None, None)
            return index
        if elem not in ("UINT8", "INT8"):
            raise ModelError(
                f"{self.src}: input {name!r}: expected the uint8 input of a U8S8 QDQ model (quantize_u8s8 with "
                f"uint8_input=True), got {elem}"
            )
        dq = next((n for n in self.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == name), None)
        if dq is None:
            raise ModelError(f"{self.src}: input {name!r}: expected a DequantizeLinear reading it, got none")
        scale, zp = self._act_qparams(dq)
        index = self.fb.tensor(name, tfl_shape(shape), np.int8, scale, zp)
        self.values[name] = Value(index, shape, scale, zp)
        return index

    def _finish(self, name: str, qparams: tuple[float, int] | None, out_name: str | None = None) -> Value:
        """Make a pending op's output tensor (int8 with ``qparams``, else float32) and emit the op."""
        s = self.fb.s
        p = self.pending.pop(name)
        scale, zp = qparams if qparams is not None else (None, None)
        index = self.fb.tensor(out_name or name, p.tfl_shape, self.dtype, scale, zp)
        act = s.ActivationFunctionType.RELU if p.relu else s.ActivationFunctionType.NONE
        q = self.quantized
        if p.code == "CONV_2D":
            opt = s.Conv2DOptionsT()
            opt.padding, (opt.strideH, opt.strideW), opt.fusedActivationFunction = p.padding, p.stride, act
            opt.dilationHFactor, opt.dilationWFactor = p.dilation
            self.fb.op("CONV_2D", 3 if q else 1, p.inputs, [index], opt)
        elif p.code == "FULLY_CONNECTED":
            opt = s.FullyConnectedOptionsT()
            opt.fusedActivationFunction = act
            self.fb.op("FULLY_CONNECTED", 4 if q else 1, p.inputs, [index], opt)
        elif p.code == "ADD":
            opt = s.AddOptionsT()
            opt.fusedActivationFunction = act
            self.fb.op("ADD", 2 if q else 1, p.inputs, [index], opt)
        else:
            self.fb.op("RELU", 2 if q else 1, p.inputs, [index])
        v = Value(index, p.shape, scale, zp, p.chw)
        self.values[name] = v
        return v

    # -- node handlers ------------------------------------------------------------------------------------------
    def _op_Constant(self, node: Any) -> None:
        from onnx import numpy_helper

        value = self.attrs(node).get("value")
        if value is None:
            raise self._error(node, "expected a Constant with a tensor 'value'")
        self.inits[node.output[0]] = numpy_helper.to_array(value)

    def _op_DequantizeLinear(self, node: Any) -> None:
        x = node.input[0]
        if x in self.inits:
            scale = np.atleast_1d(np.asarray(self.inits[node.input[1]], np.float64))
            zp = np.atleast_1d(self.inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
            self.consts[node.output[0]] = Const(np.asarray(self.inits[x]), scale, zp, self.attrs(node).get("axis", 1))
            return
        v = self._value(x, node)
        scale, zp = self._act_qparams(node)
        if v.scale is None or not np.isclose(scale, v.scale, rtol=1e-6, atol=0) or zp != v.zero_point:
            raise self._error(node, f"expected the parameters of {x!r} ({v.scale}, {v.zero_point}), got {scale}, {zp}")
        self.values[node.output[0]] = v

    def _op_QuantizeLinear(self, node: Any) -> None:
        x, out = node.input[0], node.output[0]
        scale, zp = self._act_qparams(node)
        if x in self.pending:
            self.values[out] = self._finish(x, (scale, zp), out)
            return
        v = self._value(x, node)
        if v.scale is None:
            raise self._error(node, f"quantizes the float tensor {x!r}: expected Q/DQ only around supported ops")
        if np.isclose(scale, v.scale, rtol=1e-6, atol=0) and zp == v.zero_point:
            self.values[out] = v
            return
        index = self.fb.tensor(out, tfl_shape(v.shape), np.int8, scale, zp)
        self.fb.op("QUANTIZE", 2, [v.index], [index])  # int8 → int8 requantization
        self.values[out] = Value(index, v.shape, scale, zp, v.chw)

    def _op_Identity(self, node: Any) -> None:
        self.values[node.output[0]] = self._value(node.input[0], node)

    def _op_Relu(self, node: Any) -> None:
        x, out = node.input[0], node.output[0]
        p = self.pending.get(x)
        if p is not None and p.code != "RELU" and not p.relu:
            p.relu = True
            self.pending[out] = self.pending.pop(x)
            return
        v = self._value(x, node)
        self.pending[out] = Pending("RELU", [v.index], v.shape, tfl_shape(v.shape), node.name or out, chw=v.chw)

    def _op_Conv(self, node: Any) -> None:
        a = self.attrs(node)
        x = self._value(node.input[0], node)
        w, w_scale = self._weights(node.input[1], node, 0)
        if len(x.shape) != 4 or w.ndim != 4:
            raise self._error(node, f"expected a 2-D convolution of a [1,C,H,W] input, got input {list(x.shape)}")
        if a.get("group", 1) != 1:
            raise self._error(node, f"expected group 1, got group {a['group']} (grouped/depthwise convs)")
        cout, cin, kh, kw = w.shape
        _, c, h, wd = x.shape
        if cin != c:
            raise self._error(node, f"expected weights for {c} input channels, got {cin}")
        stride = tuple(a.get("strides", (1, 1)))
        dil = tuple(a.get("dilations", (1, 1)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            lower = auto == "SAME_LOWER"
            (t, b), (le, r) = same_pads(h, kh, stride[0], dil[0], lower), same_pads(wd, kw, stride[1], dil[1], lower)
        elif auto == "VALID":
            t = le = b = r = 0
        else:
            t, le, b, r = a.get("pads", (0, 0, 0, 0))
        same = (*same_pads(h, kh, stride[0], dil[0]), *same_pads(wd, kw, stride[1], dil[1]))
        s = self.fb.s
        padding = s.Padding.VALID
        if (t, b, le, r) == same and any(same):
            padding = s.Padding.SAME
        elif any((t, b, le, r)):  # explicit pads TF's SAME cannot express: a PAD (with the zero point) first
            pads = self.fb.tensor(f"{node.output[0]}_pads", [4, 2], np.int32,
                                  data=np.array([[0, 0], [t, b], [le, r], [0, 0]], np.int32))  # fmt: skip
            shape = (1, c, h + t + b, wd + le + r)
            index = self.fb.tensor(f"{node.output[0]}_padded", tfl_shape(shape), self.dtype, x.scale, x.zero_point)
            self.fb.op("PAD", 2 if self.quantized else 1, [x.index, pads], [index])
            x = Value(index, shape, x.scale, x.zero_point)
            h, wd = shape[2], shape[3]
            t = b = le = r = 0
        ho = (h + t + b - dil[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (wd + le + r - dil[1] * (kw - 1) - 1) // stride[1] + 1
        if ho < 1 or wo < 1:
            raise self._error(node, f"expected a kernel that fits the {h}x{wd} input, got {kh}x{kw}")
        wi = self.fb.tensor(node.input[1], [cout, kh, kw, cin], self.dtype, w_scale,
                            None if w_scale is None else np.zeros(w_scale.size, np.int64),
                            data=w.transpose(0, 2, 3, 1))  # fmt: skip
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        bi = self._bias(bias, node, cout, x.scale, w_scale)
        shape = (1, cout, ho, wo)
        self.pending[node.output[0]] = Pending(
            "CONV_2D", [x.index, wi, bi], shape, tfl_shape(shape), node.name or node.output[0],
            stride=stride, dilation=dil, padding=padding,
        )  # fmt: skip

    def _reshape(self, node: Any, x: Value, shape: tuple[int, ...]) -> None:
        out = node.output[0]
        if shape == x.shape:
            self.values[out] = x
            return
        if len(x.shape) != 4 or shape != (1, int(np.prod(x.shape[1:]))):
            raise self._error(
                node, f"expected a flatten of [1,C,H,W] to [1,C*H*W], got {list(x.shape)} → {list(shape)}"
            )
        _, c, h, w = x.shape
        new = self.fb.tensor(f"{out}_shape", [2], np.int32, data=np.array(shape, np.int32))
        index = self.fb.tensor(out, list(shape), self.dtype, x.scale, x.zero_point)
        opt = self.fb.s.ReshapeOptionsT()
        opt.newShape = list(shape)
        self.fb.op("RESHAPE", 1, [x.index, new], [index], opt)
        self.values[out] = Value(index, shape, x.scale, x.zero_point, chw=(c, h, w))  # NHWC order: see _fc

    def _op_Flatten(self, node: Any) -> None:
        x = self._value(node.input[0], node)
        axis = self.attrs(node).get("axis", 1) % max(len(x.shape), 1)
        self._reshape(node, x, (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))))

    def _op_Reshape(self, node: Any) -> None:
        x = self._value(node.input[0], node)
        want = [int(d) for d in self._const(node.input[1], node).q.reshape(-1)]
        want = [x.shape[i] if d == 0 and not self.attrs(node).get("allowzero", 0) else d for i, d in enumerate(want)]
        if want.count(-1) == 1:
            known = int(np.prod([d for d in want if d != -1]))
            want[want.index(-1)] = int(np.prod(x.shape)) // max(known, 1)
        self._reshape(node, x, tuple(want))

    def _fc(self, node: Any, x: Value, w: np.ndarray, w_scale: np.ndarray | None, bias: str | None) -> None:
        """A pending FULLY_CONNECTED: ``w`` [out, in]. After an NHWC flatten of (C, H, W) the activation holds
        element (h, w, c) where ONNX has (c, h, w): the weight columns are permuted to match, so the product
        equals ONNX's."""
        if len(x.shape) != 2 or w.shape[1] != x.shape[1]:
            raise self._error(node, f"expected a [1,{w.shape[1]}] input, got {list(x.shape)}")
        if x.chw is not None:
            c, h, wd = x.chw
            w = w[:, np.arange(c * h * wd).reshape(c, h, wd).transpose(1, 2, 0).reshape(-1)]
        n = w.shape[0]
        zps = None if w_scale is None else np.zeros(w_scale.size, np.int64)
        wi = self.fb.tensor(f"{node.output[0]}_weights", list(w.shape), self.dtype, w_scale, zps, data=w)
        bi = -1 if bias is None else self._bias(bias, node, n, x.scale, w_scale)
        self.pending[node.output[0]] = Pending(
            "FULLY_CONNECTED", [x.index, wi, bi], (1, n), [1, n], node.name or node.output[0], x.scale, w_scale
        )

    def _op_Gemm(self, node: Any) -> None:
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self._error(node, f"expected transA 0, alpha 1, beta 1, got {a}")
        x = self._value(node.input[0], node)
        trans_b = bool(a.get("transB", 0))
        w, w_scale = self._weights(node.input[1], node, 0 if trans_b else 1)
        if w.ndim != 2:
            raise self._error(node, f"expected 2-D weights, got {list(w.shape)}")
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        self._fc(node, x, w if trans_b else w.T, w_scale, bias)

    def _op_MatMul(self, node: Any) -> None:
        x = self._value(node.input[0], node)
        w, w_scale = self._weights(node.input[1], node, 1)
        if w.ndim != 2:
            raise self._error(node, f"expected 2-D weights, got {list(w.shape)}")
        self._fc(node, x, w.T, w_scale, None)

    def _op_Add(self, node: Any) -> None:
        """A bias: folded into a MatMul's FULLY_CONNECTED when it follows it directly (a float graph), else (a QDQ
        graph requantizes the MatMul's output first) an ADD of a constant vector to a [1,N] activation."""
        i = next((i for i, n in enumerate(node.input) if n in self.pending), None)
        p = None if i is None else self.pending[node.input[i]]
        if p is not None and p.code == "FULLY_CONNECTED" and p.inputs[2] == -1 and not p.relu:
            p.inputs[2] = self._bias(node.input[1 - i], node, p.shape[1], p.in_scale, p.w_scale)
            self.pending[node.output[0]] = self.pending.pop(node.input[i])
            return
        j = next((j for j, n in enumerate(node.input) if n in self.consts or n in self.inits), None)
        if j is None:
            raise self._error(node, "expected Add of a constant (a bias), got an Add of two activations")
        x, c = self._value(node.input[1 - j], node), self._const(node.input[j], node)
        n = x.shape[-1]
        if len(x.shape) != 2 or c.q.size != n:
            raise self._error(node, f"expected a {n}-vector added to a [1,{n}] activation, got {list(c.q.shape)}")
        if not self.quantized:
            ci = self.fb.tensor(node.input[j], [n], np.float32, data=c.real().reshape(-1))
        elif c.scale is None or c.scale.size != 1 or c.q.dtype not in (np.uint8, np.int8):
            raise self._error(node, f"constant {node.input[j]!r}: expected a per-tensor uint8/int8 QDQ constant")
        else:
            off = 128 if c.q.dtype == np.uint8 else 0
            data = (c.q.reshape(-1).astype(np.int16) - off).astype(np.int8)
            zp = int(c.zero_point.reshape(-1)[0]) - off
            ci = self.fb.tensor(node.input[j], [n], np.int8, c.scale.astype(np.float32), np.array([zp]), data=data)
        self.pending[node.output[0]] = Pending(
            "ADD", [x.index, ci], x.shape, tfl_shape(x.shape), node.name or node.output[0], chw=x.chw
        )


def _convert(src: str | Path, dst: str | Path, quantized: bool) -> Path:
    src, dst = Path(src), Path(dst)
    data = _Converter(src, quantized).convert()
    from edge.models.litert_backend import interpreter_class

    Interpreter, _, _ = interpreter_class()
    try:  # a model LiteRT cannot allocate is a converter bug: say so here, not on the device
        Interpreter(model_content=data).allocate_tensors()
    except Exception as exc:
        raise ModelError(f"{src}: the converted TFLite model does not load in LiteRT ({exc})") from exc
    tmp = dst.with_name(dst.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(dst)
    return dst


def qdq_onnx_to_tflite(src: str | Path, dst: str | Path) -> Path:
    """Write the full-int8 TFLite model of the U8S8 QDQ ONNX model ``src`` to ``dst`` (see the module docstring
    for what is supported and how the result is packaged); returns ``dst``. :class:`ModelError` names the node
    and the op the export cannot express; nothing is written then."""
    return _convert(src, dst, quantized=True)


def float_onnx_to_tflite(src: str | Path, dst: str | Path) -> Path:
    """Write the float32 TFLite model (float32 NHWC input [1,H,W,C], CONV_2D/FULLY_CONNECTED in float) of the
    float ONNX model ``src`` to ``dst``; same ops and errors as :func:`qdq_onnx_to_tflite`."""
    return _convert(src, dst, quantized=False)
