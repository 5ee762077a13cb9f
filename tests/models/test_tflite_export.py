"""ONNX → TFLite export (edge.tooling.tflite_export): a PilotNet-shaped model quantized to U8S8 QDQ by the toolchain,
converted, run by LiteRT and compared with onnxruntime on the same inputs; the float export; the NCHW → NHWC
flatten permutation; explicit pads; MatMul + Add; refusals; the CLI; and the loop's preprocessing into the int8 NHWC
input of a packaged TFLite model.

Reference for the int8 model: onnxruntime running the QDQ graph with graph optimizations off, i.e. what the QDQ
graph means (DequantizeLinear → float op → QuantizeLinear, the float maths exact to float32). Its optimized CPU path
(fused QLinearConv, U8S8) is not the reference: on x86 without VNNI it multiplies uint8 × int8 pairs with
``vpmaddubsw``, whose int16 sums saturate, and lands tens of output steps from the graph's meaning on noise-like
frames — a property of that kernel on this CPU, not of the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.errors import ModelError
from edge.models import load_model
from edge.tooling.model_builders import pilotnet_onnx
from edge.tooling.tflite_export import float_onnx_to_tflite, qdq_onnx_to_tflite
from edge.tooling.toolchain import normalize_frames, quantize_u8s8

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
SEED = 20261121
# int8 agreement bound, in output quantization steps. LiteRT requantizes each layer with a fixed-point multiplier
# (builtin kernels) or in float32 (XNNPACK), rounding ties away from zero; the reference rounds the float32 result
# half to even. So every requantization may land one step apart, and a one-step difference in a layer's input moves
# the next layer's accumulators by |w|·s_in/s_out, which compounds over PilotNet's 9 layers. Measured here (60
# frames): max 2 steps (XNNPACK, mean 0.03) and 4 (builtin kernels, mean 1.2); with other weight seeds up to 4 and 8
# (means 0.2 and 2.1). A wrong scale, zero point, layout or weight order is off by tens to hundreds of steps.
MAX_STEPS = 10
MEAN_STEPS = 3.0


def camera_frames(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """uint8 (n, H, W, 3): smooth random scenes (a bilinearly upsampled 6×12 grid of colours) plus sensor noise —
    closer to camera frames than white noise, which no camera produces."""
    h, w = hw
    grid = rng.uniform(0, 255, (n, 6, 12, 3))
    ys, xs = np.linspace(0, 5, h), np.linspace(0, 11, w)
    y0, x0 = np.minimum(ys.astype(int), 4), np.minimum(xs.astype(int), 10)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    top = grid[:, y0][:, :, x0] * (1 - fx) + grid[:, y0][:, :, x0 + 1] * fx
    bottom = grid[:, y0 + 1][:, :, x0] * (1 - fx) + grid[:, y0 + 1][:, :, x0 + 1] * fx
    img = top * (1 - fy) + bottom * fy + rng.normal(0, 4, (n, h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def reference_session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_qparams(path: Path, name: str) -> tuple[float, int]:
    """(scale, zero point) of the QDQ node reading/writing ``name``, read from the ONNX file itself."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load_model(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    node = next(
        n
        for n in m.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and (name in n.input[:1] or name in n.output)
    )
    return float(inits[node.input[1]]), int(inits[node.input[2]])


def build(tmp: Path, stem: str, hw: tuple[int, int], per_channel: bool = True, **kw) -> dict[str, Path]:
    rng = np.random.default_rng(SEED)
    fp = pilotnet_onnx(tmp / f"{stem}.float.onnx", hw=hw, seed=SEED, **kw)
    frames = camera_frames(rng, 24, hw)
    qdq = quantize_u8s8(fp, tmp / f"{stem}.qdq.onnx", frames, mean=MEAN, std=STD, per_channel=per_channel)
    return {
        "float": fp,
        "qdq": qdq,
        "int8_tflite": qdq_onnx_to_tflite(qdq, tmp / f"{stem}.int8.tflite"),
        "float_tflite": float_onnx_to_tflite(fp, tmp / f"{stem}.float.tflite"),
    }


@pytest.fixture(scope="module")
def pilotnet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PilotNet as NVIDIA drew it (24/36/48 5×5 stride 2, 64/64 3×3, FC 100/50/10/1) on a 66×200×3 input."""
    return build(tmp_path_factory.mktemp("pilotnet"), "pilotnet", (66, 200))


def int8_steps(paths: dict[str, Path], provider: str, frames: np.ndarray) -> np.ndarray:
    """|LiteRT − reference| per frame, in output quantization steps, on the same quantized inputs."""
    model = load_model(paths["int8_tflite"], providers=[provider], warmup=0)
    ref = reference_session(paths["qdq"])
    in_scale, in_zp = onnx_qparams(paths["qdq"], "images")
    q = np.clip(np.rint(normalize_frames(frames, MEAN, STD) / in_scale) + in_zp, 0, 255).astype(np.uint8)  # NCHW
    out = model.outputs[0]
    steps = []
    for x in q:
        want = ref.run(None, {"images": x[None]})[0].reshape(-1)
        model.input_buffers[0][...] = (x.transpose(1, 2, 0).astype(np.int16) - 128).astype(np.int8)[None]
        model.run()
        got = (model.output_buffers[0].reshape(-1).astype(np.float64) - out.zero_point) * out.scale
        steps.append(np.abs(got - want).max() / out.scale)
    return np.array(steps)


def test_int8_io_specs_carry_the_onnx_quantization(pilotnet: dict[str, Path]) -> None:
    model = load_model(pilotnet["int8_tflite"], warmup=0)
    (inp,), (out,) = model.inputs, model.outputs
    in_scale, in_zp = onnx_qparams(pilotnet["qdq"], "images")
    out_scale, out_zp = onnx_qparams(pilotnet["qdq"], "steering")
    assert (inp.name, inp.shape, inp.dtype) == ("images", (1, 66, 200, 3), np.int8)
    assert inp.scale == pytest.approx(in_scale, rel=1e-7) and inp.zero_point == in_zp - 128
    assert (out.name, out.shape, out.dtype) == ("steering", (1, 1), np.int8)
    assert out.scale == pytest.approx(out_scale, rel=1e-7) and out.zero_point == out_zp - 128


@pytest.mark.parametrize("provider", ["xnnpack", "cpu"])
def test_int8_tflite_agrees_with_the_qdq_onnx_model(pilotnet: dict[str, Path], provider: str) -> None:
    frames = camera_frames(np.random.default_rng(SEED + 1), 60, (66, 200))
    steps = int8_steps(pilotnet, provider, frames)
    assert steps.max() <= MAX_STEPS and steps.mean() <= MEAN_STEPS, (steps.max(), steps.mean())


def test_float_tflite_equals_the_float_onnx_model(pilotnet: dict[str, Path]) -> None:
    model = load_model(pilotnet["float_tflite"], warmup=0)
    assert model.inputs[0].shape == (1, 66, 200, 3) and model.inputs[0].dtype == np.float32
    ref = ort.InferenceSession(str(pilotnet["float"]), providers=["CPUExecutionProvider"])
    x = normalize_frames(camera_frames(np.random.default_rng(SEED + 2), 8, (66, 200)), MEAN, STD)
    for xi in x:
        want = ref.run(None, {"images": xi[None]})[0]
        model.input_buffers[0][...] = xi.transpose(1, 2, 0)[None]
        model.run()
        np.testing.assert_allclose(model.output_buffers[0], want, rtol=1e-4, atol=1e-4)  # float32 summation order


def tflite_ops(path: Path) -> list[str]:
    """The operators of a .tflite file in order, read with the flatbuffer schema."""
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAs(path.read_bytes(), 0))
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    return [names[model.operatorCodes[op.opcodeIndex].builtinCode] for op in model.subgraphs[0].operators]


def weight_scale_counts(path: Path) -> list[int]:
    """How many scales each CONV_2D / FULLY_CONNECTED weight tensor carries, in op order."""
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAs(path.read_bytes(), 0))
    sg, codes = model.subgraphs[0], model.operatorCodes
    wanted = (s.BuiltinOperator.CONV_2D, s.BuiltinOperator.FULLY_CONNECTED)
    ops = [op for op in sg.operators if codes[op.opcodeIndex].builtinCode in wanted]
    return [len(sg.tensors[op.inputs[1]].quantization.scale) for op in ops]


def tflite_tensor(path: Path, name: str) -> np.ndarray:
    from edge.models.litert_backend import interpreter_class

    interp = interpreter_class()[0](model_path=str(path))
    interp.allocate_tensors()
    index = next(d["index"] for d in interp.get_tensor_details() if d["name"] == name)
    return interp.get_tensor(index)


def test_flatten_order_is_undone_in_the_dense_weights(tmp_path: Path) -> None:
    """Conv → [1,6,5,7] feature map → Flatten → Gemm: TFLite flattens (h, w, c), ONNX (c, h, w). The first dense
    layer's weight columns must come out permuted, and only then do both runtimes agree. (Gemm weights [in, out]
    with transB=0 here: per-channel scales along axis 1.)"""
    paths = build(tmp_path, "flat", (12, 16), convs=((6, 3, 2),), dense=(5,), trans_b=False)
    assert weight_scale_counts(paths["int8_tflite"]) == [6, 5, 1]  # per output channel
    c, h, w = 6, 5, 7
    perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    import onnx
    from onnx import numpy_helper

    m = onnx.load_model(str(paths["float"]))
    onnx_w = next(numpy_helper.to_array(i) for i in m.graph.initializer if i.name == "fc0_w").T  # [out, in]
    assert onnx_w.shape == (5, c * h * w)
    np.testing.assert_array_equal(tflite_tensor(paths["float_tflite"], "fc0_weights"), onnx_w[:, perm])
    assert not np.array_equal(onnx_w[:, perm], onnx_w)
    # end to end, float and int8: a model with the columns left in ONNX order fails both
    test_float = load_model(paths["float_tflite"], warmup=0)
    ref = ort.InferenceSession(str(paths["float"]), providers=["CPUExecutionProvider"])
    for xi in normalize_frames(camera_frames(np.random.default_rng(SEED + 3), 6, (12, 16)), MEAN, STD):
        test_float.input_buffers[0][...] = xi.transpose(1, 2, 0)[None]
        test_float.run()
        np.testing.assert_allclose(test_float.output_buffers[0], ref.run(None, {"images": xi[None]})[0], atol=1e-4)
    steps = int8_steps(paths, "cpu", camera_frames(np.random.default_rng(SEED + 4), 30, (12, 16)))
    assert steps.max() <= MAX_STEPS, steps.max()


@pytest.mark.parametrize("provider", ["xnnpack", "cpu"])
def test_explicit_pads_same_pads_and_matmul_add(tmp_path: Path, provider: str) -> None:
    """Pads (1,1,1,1) on a stride-2 3×3 conv are not TF's SAME (which pads 0 before, 1 after on even sizes): a PAD
    op; pads (1,1,1,1) on a stride-1 3×3 conv are SAME; dense layers written as MatMul + Add; one weight scale per
    tensor (quantize_u8s8 per_channel=False)."""
    paths = build(
        tmp_path, "pads", (16, 20), convs=((5, 3, 2), (7, 3, 1)), dense=(6,),
        pads=((1, 1, 1, 1), (1, 1, 1, 1)), matmul=True, per_channel=False,
    )  # fmt: skip
    assert weight_scale_counts(paths["int8_tflite"]) == [1, 1, 1, 1]
    trunk = ["PAD", "CONV_2D", "CONV_2D", "RESHAPE"]
    # the QDQ graph requantizes each MatMul's output before its Add: an int8 ADD; in float the bias is folded
    assert tflite_ops(paths["int8_tflite"]) == [*trunk, "FULLY_CONNECTED", "ADD", "FULLY_CONNECTED", "ADD"]
    assert tflite_ops(paths["float_tflite"]) == [*trunk, "FULLY_CONNECTED", "FULLY_CONNECTED"]
    steps = int8_steps(paths, provider, camera_frames(np.random.default_rng(SEED + 5), 30, (16, 20)))
    assert steps.max() <= MAX_STEPS and steps.mean() <= MEAN_STEPS, (steps.max(), steps.mean())
    model = load_model(paths["float_tflite"], providers=[provider], warmup=0)
    ref = ort.InferenceSession(str(paths["float"]), providers=["CPUExecutionProvider"])
    for xi in normalize_frames(camera_frames(np.random.default_rng(SEED + 6), 4, (16, 20)), MEAN, STD):
        model.input_buffers[0][...] = xi.transpose(1, 2, 0)[None]
        model.run()
        np.testing.assert_allclose(model.output_buffers[0], ref.run(None, {"images": xi[None]})[0], atol=1e-4)


def test_an_unsupported_op_is_refused_by_name(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    fp = pilotnet_onnx(tmp_path / "pool.onnx", hw=(12, 16), convs=((4, 3, 1),), dense=(3,), seed=SEED)
    m = onnx.load_model(str(fp))
    g = m.graph
    relu = next(n for n in g.node if n.op_type == "Relu")
    pool = helper.make_node("MaxPool", [relu.output[0]], ["pooled"], kernel_shape=[2, 2], strides=[2, 2], name="pool")
    flat = next(n for n in g.node if n.op_type == "Flatten")
    flat.input[0] = "pooled"
    g.node.insert(list(g.node).index(relu) + 1, pool)
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    w = next(i for i in g.initializer if i.name == gemm.input[1])
    w.CopyFrom(onnx.numpy_helper.from_array(np.ones((3, 4 * 5 * 7), np.float32), w.name))
    onnx.checker.check_model(m)
    onnx.save_model(m, fp)
    qdq = quantize_u8s8(fp, tmp_path / "pool.qdq.onnx", camera_frames(np.random.default_rng(1), 4, (12, 16)))
    for convert, src in ((float_onnx_to_tflite, fp), (qdq_onnx_to_tflite, qdq)):
        dst = tmp_path / "pool.tflite"
        with pytest.raises(ModelError, match=r"node 'pool' \(MaxPool\): op MaxPool is not supported.*expected one of"):
            convert(src, dst)
        assert not dst.exists()


def test_the_wrong_kind_of_model_is_refused(pilotnet: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"input 'images': expected the uint8 input of a U8S8 QDQ model.*got FLOAT"):
        qdq_onnx_to_tflite(pilotnet["float"], tmp_path / "x.tflite")
    with pytest.raises(ModelError, match=r"input 'images': expected float32 \(a float model\), got UINT8"):
        float_onnx_to_tflite(pilotnet["qdq"], tmp_path / "x.tflite")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="expected an ONNX model"):
        qdq_onnx_to_tflite(tmp_path / "junk.onnx", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_cli_converts_and_reports_refusals(pilotnet: dict[str, Path], tmp_path: Path, capsys) -> None:
    from edge.cli import main

    out = tmp_path / "cli.tflite"
    assert main(["model", "tflite", str(pilotnet["qdq"]), str(out)]) == 0
    assert "full int8" in capsys.readouterr().out
    assert out.read_bytes() == pilotnet["int8_tflite"].read_bytes()
    assert main(["model", "tflite", "--float", str(pilotnet["float"]), str(tmp_path / "f.tflite")]) == 0
    assert load_model(tmp_path / "f.tflite", warmup=0).inputs[0].dtype == np.float32
    assert main(["model", "tflite", str(pilotnet["float"]), str(tmp_path / "bad.tflite")]) == 2
    assert "ModelError" in capsys.readouterr().err and not (tmp_path / "bad.tflite").exists()


def test_a_tflite_package_runs_through_the_loop_preprocessing(pilotnet: dict[str, Path], tmp_path: Path) -> None:
    """Packaged as the module docstring says (layout NHWC), the loop's stage quantizes a larger camera frame straight
    into the int8 NHWC input; the steering equals the QDQ ONNX package's, through the same stage, within the bound."""
    from edge.loop.pipeline import build_stage
    from edge.loop.policy import RegressionPolicy
    from edge.models.manage import pack_model

    pre = {"mean": list(MEAN), "std": list(STD), "channel_order": "RGB"}
    pkgs = {
        "onnx": pack_model(pilotnet["qdq"], tmp_path / "onnx.tgz", name="pn", version="1",
                           preprocess={**pre, "layout": "NCHW"}),
        "tflite": pack_model(pilotnet["int8_tflite"], tmp_path / "tflite.tgz", name="pn", version="1",
                             preprocess={**pre, "layout": "NHWC"}),
    }  # fmt: skip
    frames = camera_frames(np.random.default_rng(SEED + 7), 20, (99, 300))
    steering = {}
    for kind, pkg in pkgs.items():
        # onnx: the reference semantics of the QDQ graph, optimizations off (see the module docstring)
        model = load_model(pkg, warmup=0, graph_optimization="disable" if kind == "onnx" else "all")
        stage = build_stage(model, RegressionPolicy(1), frames.shape[1:])
        assert stage.layout == ("NHWC" if kind == "tflite" else "NCHW")
        stats, out = np.zeros((2, 3)), []
        for f in frames:
            stage.preprocess(f, stats)
            stage.infer()
            assert stage.postprocess()
            out.append(float(stage.policy.vals[0]))
        steering[kind] = np.array(out)
    step = load_model(pkgs["tflite"], warmup=0).outputs[0].scale
    diff = np.abs(steering["tflite"] - steering["onnx"]) / step
    assert diff.max() <= MAX_STEPS + 0.01 and diff.mean() <= MEAN_STEPS, (diff.max(), diff.mean())
    assert np.ptp(steering["tflite"]) > 10 * step  # the frames move the output: the comparison means something


def _variant(path: Path, variant: str) -> Path:
    """A small PilotNet-shaped float model rewritten to exercise one more way of writing the same ops."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    fp = pilotnet_onnx(path, hw=(15, 22), convs=((5, 3, 2), (6, 3, 1)), dense=(4,), seed=SEED)
    m = onnx.load_model(str(fp))
    g = m.graph
    conv0, conv1 = (n for n in g.node if n.op_type == "Conv")
    if variant in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        for conv in (conv0, conv1):
            del conv.attribute[:]
            conv.attribute.extend(
                [
                    helper.make_attribute("strides", [2, 2] if conv is conv0 else [1, 1]),
                    helper.make_attribute("auto_pad", variant),
                ]
            )
    elif variant == "dilation":
        conv1.attribute.append(helper.make_attribute("dilations", [2, 2]))
    elif variant == "reshape":  # Reshape [1,-1] with the shape from a Constant node, then an Identity
        i = next(i for i, n in enumerate(g.node) if n.op_type == "Flatten")
        flat = g.node[i]
        shape = helper.make_node("Constant", [], ["flat_shape"], value=numpy_helper.from_array(np.array([1, -1])))
        reshape = helper.make_node("Reshape", [flat.input[0], "flat_shape"], ["reshaped"], name="reshape")
        identity = helper.make_node("Identity", ["reshaped"], list(flat.output))
        g.node.remove(flat)
        for j, n in enumerate((shape, reshape, identity)):
            g.node.insert(i + j, n)
    # the first dense layer's input width follows the feature map's new size
    g.ClearField("value_info")
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    inferred = shape_inference.infer_shapes(m)
    relu1 = next(n for n in g.node if n.op_type == "Relu" and n.input[0] == conv1.output[0])
    dims = next(v for v in inferred.graph.value_info if v.name == relu1.output[0]).type.tensor_type.shape.dim
    width = int(np.prod([d.dim_value for d in dims]))
    w = next(i for i in g.initializer if i.name == gemm.input[1])
    new_w = (np.random.default_rng(SEED).standard_normal((4, width)) * 0.1).astype(np.float32)
    w.CopyFrom(numpy_helper.from_array(new_w, w.name))
    onnx.checker.check_model(m)
    onnx.save_model(m, fp)
    return fp


@pytest.mark.parametrize("variant", ["SAME_UPPER", "SAME_LOWER", "VALID", "dilation", "reshape"])
def test_graph_variants_convert_exactly(tmp_path: Path, variant: str) -> None:
    """auto_pad (SAME_LOWER pads the extra row before: not TF's SAME, so a PAD), dilations, Reshape to [1,-1] (a
    Constant shape) + Identity: the float export equals onnxruntime."""
    fp = _variant(tmp_path / f"{variant}.onnx", variant)
    tfl = float_onnx_to_tflite(fp, tmp_path / f"{variant}.tflite")
    assert ("PAD" in tflite_ops(tfl)) == (variant == "SAME_LOWER")
    model = load_model(tfl, warmup=0)
    ref = ort.InferenceSession(str(fp), providers=["CPUExecutionProvider"])
    for xi in normalize_frames(camera_frames(np.random.default_rng(SEED + 8), 4, (15, 22)), MEAN, STD):
        model.input_buffers[0][...] = xi.transpose(1, 2, 0)[None]
        model.run()
        np.testing.assert_allclose(model.output_buffers[0], ref.run(None, {"images": xi[None]})[0], atol=1e-4)


@pytest.mark.skipif(
    __import__("edge.kernels", fromlist=["BACKEND"]).BACKEND != "native",
    reason="the NumPy twins (EDGE_PUREPYTHON=1) allocate temporaries by nature; the claim is for the native kernels",
)
def test_loop_frames_on_the_int8_tflite_model_allocate_nothing(tmp_path: Path) -> None:
    """The loop (preprocess into the int8 NHWC buffer, LiteRT invoke, dequantize, policy) over 4000 frames after a
    warm-up: no net growth and a bounded transient peak, as tests/loop/test_allocation.py asks of the ONNX path."""
    import gc
    import tracemalloc

    from edge.loop.clock import LockstepClock
    from edge.loop.policy import RegressionPolicy
    from edge.loop.runner import Loop, Timing
    from edge.loop.sensors import SensorSlot
    from edge.models.manage import pack_model

    paths = build(tmp_path, "alloc", (12, 16), convs=((4, 3, 2),), dense=(4,))
    pkg = pack_model(paths["int8_tflite"], tmp_path / "alloc.tgz", name="alloc", version="1",
                     preprocess={"mean": list(MEAN), "std": list(STD), "layout": "NHWC"})  # fmt: skip
    camera = SensorSlot("camera", (24, 32, 3), stale_ns=25_000_000)
    loop = Loop(
        load_model(pkg, threads=1), RegressionPolicy(1), [camera], clock=LockstepClock(), timing=Timing(rate_hz=100)
    )
    frames = camera_frames(np.random.default_rng(SEED + 9), 16, (24, 32))
    i = [0]

    def step() -> None:
        k = i[0] = (i[0] + 1) % len(frames)
        camera.push(frames[k], loop.schedule.next_ns)
        loop.step()

    with loop:
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            for _ in range(500):
                step()
            c0 = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for _ in range(4000):
                step()
            c1, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            gc.enable()
        assert loop.ctx.fallbacks == 0 and loop.model_errors == 0
    assert c1 - c0 <= 256, f"kept {c1 - c0} B over 4000 frames"  # CPython free-list jitter, not a per-frame leak
    assert peak - c0 <= 8192, f"transient peak {peak - c0} B within a frame"  # the kernels' argument-check views
