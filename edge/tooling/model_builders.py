"""Small models for tests and benchmarks, built in-process (no downloads, no TensorFlow).

* :func:`float_cnn_onnx` — a float32 CNN written with ``onnx.helper``.
* :func:`u8s8_cnn_onnx` — the same CNN quantized with ``onnxruntime.quantization.quantize_static`` to QDQ with
  uint8 activations and int8 weights (U8S8), then given a uint8 graph input (the input ``QuantizeLinear`` is
  removed), so the preprocessing kernel can quantize straight into it.
* :func:`int8_tflite` — a full-int8 TFLite model (CONV_2D + FULLY_CONNECTED) written with the flatbuffer schema
  that ships inside ``ai-edge-litert``.
* :func:`pilotnet_onnx` — a float32 PilotNet-shaped steering CNN (strided 5×5 convs + ReLU, 3×3 convs, Flatten,
  Gemm layers to one output), the shape of the lane-keeping model, for the ONNX → TFLite converter.

All weights come from ``numpy.random.default_rng(seed)``: the same seed gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["float_cnn_onnx", "int8_tflite", "pilotnet_onnx", "u8s8_cnn_onnx"]

IR_VERSION = 10  # onnx 1.23 writes IR 14 by default, which onnxruntime 1.31 rejects
OPSET = 17


def float_cnn_onnx(path: str | Path, *, hw: int = 32, width: int = 8, classes: int = 10, seed: int = 0) -> Path:
    """Write a float CNN: input ``images`` [1,3,hw,hw] → 3×(Conv 3×3 + Relu) → GlobalAveragePool → Gemm → ``logits``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    chans = [3, width, width * 2, width * 4]
    x = "images"
    for i in range(3):
        w = (rng.standard_normal((chans[i + 1], chans[i], 3, 3)) * np.sqrt(2 / (9 * chans[i]))).astype(np.float32)
        b = (rng.standard_normal(chans[i + 1]) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(
            helper.make_node(
                "Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1], strides=[1, 1] if i == 0 else [2, 2]
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    wf = (rng.standard_normal((chans[-1], classes)) * 0.3).astype(np.float32)
    inits += [numpy_helper.from_array(wf, "wf"), numpy_helper.from_array(np.zeros(classes, np.float32), "bf")]
    nodes.append(helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "edge_test_cnn",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        inits,
    )
    return _save(graph, path)


def u8s8_cnn_onnx(path: str | Path, *, hw: int = 32, width: int = 8, seed: int = 0, calib: int = 8) -> Path:
    """Write the U8S8 QDQ version of :func:`float_cnn_onnx` with a uint8 input (see the module docstring)."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    path = Path(path)
    fp = float_cnn_onnx(path.with_name(path.stem + ".float.onnx"), hw=hw, width=width, seed=seed)
    rng = np.random.default_rng(seed + 1)
    batches = [{"images": rng.uniform(-1, 1, (1, 3, hw, hw)).astype(np.float32)} for _ in range(calib)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    qdq = path.with_name(path.stem + ".qdq.onnx")
    quantize_static(
        fp,
        qdq,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=False,
    )
    model = onnx.load_model(qdq)
    g = model.graph
    q_in = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == "images")
    for n in g.node:  # consumers of the quantized input now read the uint8 graph input
        for i, name in enumerate(n.input):
            if name == q_in.output[0]:
                n.input[i] = "images"
    g.node.remove(q_in)
    g.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    fp.unlink()
    qdq.unlink()
    return path


def int8_tflite(path: str | Path, *, hw: int = 8, channels: int = 4, classes: int = 10, seed: int = 0) -> Path:
    """Write a full-int8 TFLite model: int8 ``input`` [1,hw,hw,3] → CONV_2D 3×3 SAME + RELU → FULLY_CONNECTED → int8
    ``logits`` [1,classes]. Weights int8 (zero point 0), biases int32 at input_scale × weight_scale."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(seed)
    in_s, in_zp, w_s, conv_s, conv_zp, fc_w_s, out_s, out_zp = 1 / 128, -1, 0.02, 0.05, -128, 0.01, 0.1, 3
    conv_w = rng.integers(-127, 128, (channels, 3, 3, 3), dtype=np.int8)
    conv_b = rng.integers(-500, 500, channels, dtype=np.int32)
    fc_w = rng.integers(-127, 128, (classes, hw * hw * channels), dtype=np.int8)
    fc_b = rng.integers(-2000, 2000, classes, dtype=np.int32)
    buffers = [s.BufferT()]

    def tensor(name: str, shape: list[int], ttype: int, scale: float, zp: int, data: np.ndarray | None = None):
        t = s.TensorT()
        t.name, t.shape, t.type = name, shape, ttype
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint = [scale], [zp]
        t.quantization = q
        b = s.BufferT()
        if data is not None:
            b.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
        buffers.append(b)
        t.buffer = len(buffers) - 1
        return t

    I8, I32 = s.TensorType.INT8, s.TensorType.INT32
    tensors = [
        tensor("input", [1, hw, hw, 3], I8, in_s, in_zp),
        tensor("conv_w", [channels, 3, 3, 3], I8, w_s, 0, conv_w),
        tensor("conv_b", [channels], I32, in_s * w_s, 0, conv_b),
        tensor("conv_out", [1, hw, hw, channels], I8, conv_s, conv_zp),
        tensor("fc_w", [classes, hw * hw * channels], I8, fc_w_s, 0, fc_w),
        tensor("fc_b", [classes], I32, conv_s * fc_w_s, 0, fc_b),
        tensor("logits", [1, classes], I8, out_s, out_zp),
    ]
    conv = s.OperatorT()
    conv.opcodeIndex, conv.inputs, conv.outputs = 0, [0, 1, 2], [3]
    conv.builtinOptionsType = s.BuiltinOptions.Conv2DOptions
    conv.builtinOptions = s.Conv2DOptionsT()
    conv.builtinOptions.padding, conv.builtinOptions.strideW, conv.builtinOptions.strideH = s.Padding.SAME, 1, 1
    conv.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU
    fc = s.OperatorT()
    fc.opcodeIndex, fc.inputs, fc.outputs = 1, [3, 4, 5], [6]
    fc.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    fc.builtinOptions = s.FullyConnectedOptionsT()
    codes = []
    for code, version in ((s.BuiltinOperator.CONV_2D, 3), (s.BuiltinOperator.FULLY_CONNECTED, 4)):
        oc = s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, code, version
        codes.append(oc)
    sg = s.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = tensors, [0], [6], [conv, fc], "main"
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [sg], buffers
    model.description = "edge.tooling.model_builders int8"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(builder.Output()))
    return path


# PilotNet (NVIDIA's end-to-end steering CNN): (out channels, kernel, stride) of its convolutions, then its dense widths
PILOTNET_CONVS = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))
PILOTNET_DENSE = (100, 50, 10)


def pilotnet_onnx(
    path: str | Path,
    *,
    hw: tuple[int, int] = (66, 200),
    convs: tuple[tuple[int, int, int], ...] = PILOTNET_CONVS,
    dense: tuple[int, ...] = PILOTNET_DENSE,
    pads: tuple[tuple[int, int, int, int] | None, ...] = (),
    matmul: bool = False,
    trans_b: bool = True,
    seed: int = 0,
) -> Path:
    """Write a float PilotNet-shaped CNN: ``images`` float32 [1,3,H,W] → per ``convs`` entry (out channels,
    kernel, stride) Conv + Relu → Flatten → per ``dense`` width Gemm + Relu → Gemm → ``steering`` [1,1]. He-scaled
    weights and small biases from ``seed``. ``pads[i]`` (top, left, bottom, right) gives conv ``i`` explicit padding
    (default none: VALID, as PilotNet); ``matmul``: the dense layers as MatMul + Add instead of Gemm; ``trans_b``:
    Gemm weights [out, in] with ``transB=1`` (as torch exports ``nn.Linear``), else [in, out]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes, x, cin = [], [], "images", 3
    for i, (cout, k, stride) in enumerate(convs):
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.05).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"conv{i}_w"), numpy_helper.from_array(b, f"conv{i}_b")]
        pad = pads[i] if i < len(pads) and pads[i] is not None else (0, 0, 0, 0)
        t, left, bottom, right = pad
        nodes.append(
            helper.make_node(
                "Conv", [x, f"conv{i}_w", f"conv{i}_b"], [f"conv{i}"], strides=[stride, stride],
                kernel_shape=[k, k], pads=[t, left, bottom, right],
            )
        )  # fmt: skip
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"conv{i}_relu"]))
        x, cin = f"conv{i}_relu", cout
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    h, w_ = hw
    for i, (_, k, stride) in enumerate(convs):
        t, left, bottom, right = pads[i] if i < len(pads) and pads[i] is not None else (0, 0, 0, 0)
        h, w_ = (h + t + bottom - k) // stride + 1, (w_ + left + right - k) // stride + 1
    x, fin = "flat", cin * h * w_
    widths = (*dense, 1)
    for i, fout in enumerate(widths):
        wd = (rng.standard_normal((fin, fout)) * np.sqrt(2.0 / fin)).astype(np.float32)
        bd = (rng.standard_normal(fout) * 0.05).astype(np.float32)
        out = "steering" if i == len(widths) - 1 else f"fc{i}"
        if matmul:
            inits += [numpy_helper.from_array(wd, f"fc{i}_w"), numpy_helper.from_array(bd, f"fc{i}_b")]
            nodes.append(helper.make_node("MatMul", [x, f"fc{i}_w"], [f"fc{i}_mm"]))
            nodes.append(helper.make_node("Add", [f"fc{i}_mm", f"fc{i}_b"], [out]))
        else:
            wg = wd.T.copy() if trans_b else wd
            inits += [numpy_helper.from_array(wg, f"fc{i}_w"), numpy_helper.from_array(bd, f"fc{i}_b")]
            nodes.append(helper.make_node("Gemm", [x, f"fc{i}_w", f"fc{i}_b"], [out], transB=int(trans_b)))
        if out != "steering":
            nodes.append(helper.make_node("Relu", [out], [f"fc{i}_relu"]))
            out = f"fc{i}_relu"
        x, fin = out, fout
    graph = helper.make_graph(
        nodes,
        "pilotnet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *hw])],
        [helper.make_tensor_value_info("steering", TensorProto.FLOAT, [1, 1])],
        inits,
    )
    return _save(graph, path)


def _save(graph, path: str | Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="edge.tooling.model_builders",
    )
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save_model(model, path)
    return path
