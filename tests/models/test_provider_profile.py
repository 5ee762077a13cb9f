"""Provider profiles (toolchains/jetson/profile.toml): parsing, errors that name the key, the TensorRT/CUDA options
they resolve to, and a real load with the profile on this CPU-only machine (falls back, or fails in strict mode)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import ConfigError, UnavailableError
from edge.models import load_model
from edge.models.onnx_backend import has_qdq
from edge.models.options import RuntimeOptions
from edge.models.profile import PROFILE_KEYS, load_provider_profile
from edge.models.providers import resolve_ort

ROOT = Path(__file__).resolve().parents[2]
JETSON = ROOT / "toolchains" / "jetson" / "profile.toml"
ALL_GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _profile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "profile.toml"
    p.write_text(text)
    return p


def test_jetson_profile_sets_what_its_file_says() -> None:
    opts = load_provider_profile(JETSON)
    assert list(opts.providers) == ["tensorrt", "cuda", "cpu"]
    assert (opts.trt_fp16, opts.trt_int8, opts.trt_workspace_mb) == (True, "auto", 1024)
    assert opts.trt_engine_cache_dir == "/var/cache/edge/trt/engines"
    assert opts.trt_timing_cache_dir == "/var/cache/edge/trt/timing"
    assert (opts.cuda_device_id, opts.cudnn_conv_algo_search, opts.spinning) == (0, "HEURISTIC", False)


def test_profile_resolves_to_onnxruntime_tensorrt_and_cuda_options(tmp_path: Path) -> None:
    opts = RuntimeOptions(
        providers=["tensorrt", "cuda"],
        trt_engine_cache_dir=str(tmp_path / "e"),
        trt_timing_cache_dir=str(tmp_path / "t"),
        trt_fp16=True,
        trt_int8="auto",
        trt_workspace_mb=256,
        trt_builder_optimization_level=2,
        trt_dla_core=1,
        cuda_device_id=1,
        cuda_mem_limit_mb=512,
        cudnn_conv_algo_search="HEURISTIC",
    )
    chosen = dict(resolve_ort(opts, ALL_GPU, quantized=True))
    assert list(chosen) == ALL_GPU
    assert chosen["TensorrtExecutionProvider"] == {
        "device_id": 1,
        "trt_fp16_enable": True,
        "trt_int8_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path / "e"),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(tmp_path / "t"),
        "trt_max_workspace_size": 256 * 2**20,
        "trt_builder_optimization_level": 2,
        "trt_dla_enable": True,
        "trt_dla_core": 1,
    }
    assert chosen["CUDAExecutionProvider"] == {
        "device_id": 1,
        "gpu_mem_limit": 512 * 2**20,
        "cudnn_conv_algo_search": "HEURISTIC",
    }
    assert (tmp_path / "e").is_dir() and (tmp_path / "t").is_dir()
    float_trt = dict(resolve_ort(opts, ALL_GPU, quantized=False))["TensorrtExecutionProvider"]
    assert float_trt["trt_int8_enable"] is False


def test_int8_auto_follows_the_graph(model_dir: Path) -> None:
    assert has_qdq((model_dir / "u8s8.onnx").read_bytes())
    assert not has_qdq((model_dir / "float.onnx").read_bytes())


def test_relative_cache_dirs_are_taken_from_the_profile_folder(tmp_path: Path) -> None:
    p = _profile(tmp_path, '[tensorrt]\nengine_cache_dir = "cache/engines"\n')
    assert load_provider_profile(p).trt_engine_cache_dir == str(tmp_path / "cache" / "engines")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tensorrt]\nfp61 = true\n", "tensorrt.fp61: unknown key"),
        ("[gpu]\nx = 1\n", "unknown table [gpu]"),
        ("[tensorrt]\nworkspace_mb = 0\n", "tensorrt.workspace_mb: expected an integer >= 1"),
        ("[tensorrt]\nbuilder_optimization_level = 9\n", "tensorrt.builder_optimization_level: expected an integer in"),
        ("[tensorrt]\nint8 = 'sometimes'\n", "tensorrt.int8: expected true, false or 'auto'"),
        ("[tensorrt]\nfp16 = 1\n", "tensorrt.fp16: expected true or false"),
        ("[cuda]\ncudnn_conv_algo_search = 'FAST'\n", "cuda.cudnn_conv_algo_search: expected one of"),
        ("[runtime]\nthreads = 0\n", "runtime.threads: expected an integer >= 1"),
        ("[runtime\n", "not a valid TOML provider profile"),
    ],
)
def test_bad_profile_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_provider_profile(_profile(tmp_path, text))


def test_every_profile_key_maps_to_a_runtime_option() -> None:
    assert set(PROFILE_KEYS.values()) <= set(RuntimeOptions.__dataclass_fields__)


def test_uncreatable_cache_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    opts = RuntimeOptions(providers=["tensorrt"], trt_engine_cache_dir=str(tmp_path / "file" / "engines"))
    with pytest.raises(ConfigError, match="trt_engine_cache_dir: cannot create"):
        resolve_ort(opts, ALL_GPU)


def test_load_with_jetson_profile_on_a_cpu_machine(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime

    if "TensorrtExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has TensorRT: toolchains/jetson/check.py covers it")
    profile = _profile(tmp_path, JETSON.read_text().replace("/var/cache/edge/trt", str(tmp_path / "trt")))
    with caplog.at_level(logging.WARNING, logger="edge.models"):
        model = load_model(model_dir / "u8s8.onnx", profile=profile)
    assert model.provider == "cpu"
    assert "'tensorrt' (TensorrtExecutionProvider) is not installed" in caplog.text
    with pytest.raises(UnavailableError, match="strict provider mode"):
        load_model(model_dir / "u8s8.onnx", profile=profile, strict=True)


def test_jetson_check_script(tmp_path: Path) -> None:
    script = ROOT / "toolchains" / "jetson" / "check.py"
    out = subprocess.run(
        [sys.executable, str(script), "--providers", "cpu"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS") == 2
    import onnxruntime

    if not {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(onnxruntime.get_available_providers()):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 3 and "jetson check: NOT RUN" in out.stdout
