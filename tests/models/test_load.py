"""load_model on both backends: specs, exact equality with the bare runtime, bad input, providers, allocations."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError, ModelError, ShapeError, UnavailableError
from edge.models import RuntimeOptions, load_model
from edge.models.providers import resolve_ort


def _random_input(spec, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec.dtype.kind in "iu":
        info = np.iinfo(spec.dtype)
        return rng.integers(info.min, info.max, spec.shape, dtype=spec.dtype, endpoint=True)
    return rng.standard_normal(spec.shape).astype(spec.dtype)


def _bare(path: Path, x: np.ndarray) -> np.ndarray:
    if path.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_outputs_equal_bare_runtime_exactly(model_path: Path) -> None:
    model = load_model(model_path, threads=1)
    for seed in range(3):
        x = _random_input(model.inputs[0], seed)
        (out,) = model.run(x)
        np.testing.assert_array_equal(out, _bare(model_path, x))


def test_specs_and_backend(model_dir: Path) -> None:
    f = load_model(model_dir / "float.onnx")
    assert (f.backend, f.provider) == ("onnxruntime", "cpu")
    assert f.inputs[0].shape == (1, 3, 32, 32) and f.inputs[0].dtype == np.float32 and not f.inputs[0].quantized
    q = load_model(model_dir / "u8s8.onnx")
    spec = q.inputs[0]
    assert spec.dtype == np.uint8 and spec.scale > 0 and 0 <= spec.zero_point <= 255
    t = load_model(model_dir / "int8.tflite")
    assert (t.backend, t.provider) == ("litert", "xnnpack")
    assert t.inputs[0].dtype == np.int8 and t.inputs[0].scale == pytest.approx(1 / 128) and t.inputs[0].zero_point == -1
    assert t.outputs[0].dtype == np.int8 and t.outputs[0].zero_point == 3


def test_zero_copy_path_reads_bound_input_buffers(model_path: Path) -> None:
    model = load_model(model_path)
    x = _random_input(model.inputs[0], 7)
    model.input_buffers[0][...] = x
    out_a = model.run()
    first = out_a[0].copy()
    out_b = model.run(x)
    assert out_a is out_b and out_a[0] is model.output_buffers[0]
    np.testing.assert_array_equal(first, out_b[0])


def test_warmup_report(model_path: Path) -> None:
    m = load_model(model_path, warmup=4)
    assert m.report.warmup_runs == 4 and m.report.first_run_ms > 0 and m.report.warm_ms > 0
    assert len(m.report.sha256) == 64
    m0 = load_model(model_path, warmup=0)
    assert m0.report.first_run_ms is None


def test_wrong_dtype_and_shape_name_the_spec(model_path: Path) -> None:
    model = load_model(model_path)
    spec = model.inputs[0]
    wrong_dtype = np.zeros(spec.shape, np.float64)
    with pytest.raises(ShapeError, match=spec.name) as info:
        model.run(wrong_dtype)
    assert spec.dtype.name in str(info.value) and "float64" in str(info.value)
    with pytest.raises(ShapeError, match="expected"):
        model.run(np.zeros((2, *spec.shape[1:]), spec.dtype))
    with pytest.raises(ShapeError, match="1 input"):
        model.run(np.zeros(spec.shape, spec.dtype), np.zeros(spec.shape, spec.dtype))
    with pytest.raises(ValueError):  # ShapeError is also a ValueError
        model.run([0, 1])  # type: ignore[arg-type]


def test_steady_state_run_allocates_nothing(model_path: Path) -> None:
    model = load_model(model_path)
    x = _random_input(model.inputs[0])
    for _ in range(50):
        model.run(x)
        model.run()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(500):
            model.run(x)
            model.run()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if s.size_diff > 0 and "tracemalloc" not in str(s.traceback)
    )
    assert grown < 1024, f"{grown} bytes retained over 1000 runs"


@pytest.mark.parametrize("data", [b"", b"not a model at all", None])
def test_corrupt_or_truncated_model_is_a_model_error(model_dir: Path, tmp_path: Path, data: bytes | None) -> None:
    for name in ("float.onnx", "int8.tflite"):
        src = (model_dir / name).read_bytes()
        bad = tmp_path / name
        bad.write_bytes(src[: len(src) // 2] if data is None else data)
        with pytest.raises(ModelError, match=name):
            load_model(bad)


def test_unknown_file_type_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model file type"):
        load_model(tmp_path / "m.pt")
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "absent.onnx")


def test_strict_provider_missing_lists_available(model_dir: Path) -> None:
    with pytest.raises(UnavailableError, match=r"available:.*CPUExecutionProvider"):
        load_model(model_dir / "float.onnx", providers=["tensorrt"], strict=True)
    with pytest.raises(UnavailableError, match="available: xnnpack, cpu"):
        load_model(model_dir / "int8.tflite", providers=["cuda"], strict=True)


def test_fallback_logs_reason(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.models"):
        m = load_model(model_dir / "float.onnx", providers=["cuda", "cpu"])
    assert m.provider == "cpu"
    assert "'cuda'" in caplog.text and "falling back" in caplog.text
    t = load_model(model_dir / "int8.tflite", providers=["cpu"])
    assert t.provider == "cpu"


def test_provider_resolution_with_gpu_providers(tmp_path: Path) -> None:
    avail = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    opts = RuntimeOptions(trt_engine_cache_dir=str(tmp_path / "trt"), trt_fp16=True)
    chosen = resolve_ort(opts, avail)
    assert [n for n, _ in chosen] == avail
    trt = chosen[0][1]
    assert trt["trt_engine_cache_enable"] and trt["trt_fp16_enable"] and not trt["trt_int8_enable"]
    assert (tmp_path / "trt").is_dir()
    assert [n for n, _ in resolve_ort(RuntimeOptions(providers=["xnnpack"]), ["CPUExecutionProvider"])] == [
        "CPUExecutionProvider"
    ]
    with pytest.raises(ConfigError, match="provider"):
        resolve_ort(RuntimeOptions(providers=["tpu"]), avail)


@pytest.mark.parametrize(
    "bad", [{"threads": 0}, {"warmup": -1}, {"graph_optimization": "max"}, {"inter_op_threads": 0}]
)
def test_bad_options(model_dir: Path, bad: dict) -> None:
    with pytest.raises(ConfigError):
        load_model(model_dir / "float.onnx", **{"warmup": 3, **bad})
