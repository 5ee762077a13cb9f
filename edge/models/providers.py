"""Execution provider resolution for ONNX Runtime, and the session options that go with it.

The caller gives an ordered preference; it is resolved against what the installed onnxruntime offers. In strict
mode a missing first choice is an error that lists what is available; otherwise the next available choice (CPU
when none is) is used and the reason is logged (INFO for the built-in default list, WARNING when the caller asked
for the missing one).
CPU is always appended last, because ONNX Runtime places nodes a provider cannot run on the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, UnavailableError
from edge.models.options import RuntimeOptions

__all__ = ["DEFAULT_PREFERENCE", "ORT_NAMES", "canonical", "resolve_ort", "session_options"]

log = logging.getLogger("edge.models")

DEFAULT_PREFERENCE = ("tensorrt", "cuda", "xnnpack", "cpu")
ORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_SHORT = {v: k for k, v in ORT_NAMES.items()}


def canonical(name: str) -> str:
    """``"CUDAExecutionProvider"`` or ``"CUDA"`` → ``"cuda"``; unknown names raise :class:`ConfigError`."""
    key = _SHORT.get(name, name.lower())
    if key not in ORT_NAMES:
        raise ConfigError(f"provider: expected one of {sorted(ORT_NAMES)} (or their ONNX Runtime names), got {name!r}")
    return key


def _provider_options(key: str, opts: RuntimeOptions, quantized: bool) -> dict[str, Any]:
    if key == "tensorrt":
        return _tensorrt_options(opts, quantized)
    if key == "cuda":
        out: dict[str, Any] = {"device_id": opts.cuda_device_id}
        if opts.cuda_mem_limit_mb is not None:
            out["gpu_mem_limit"] = opts.cuda_mem_limit_mb * 1024 * 1024
        if opts.cudnn_conv_algo_search is not None:
            out["cudnn_conv_algo_search"] = opts.cudnn_conv_algo_search
        return out
    if key == "xnnpack" and opts.threads:
        return {"intra_op_num_threads": opts.threads}
    return {}


def _tensorrt_options(opts: RuntimeOptions, quantized: bool) -> dict[str, Any]:
    """TensorRT execution provider options (ONNX Runtime's ``trt_*`` names) for ``opts``."""
    int8 = quantized if opts.trt_int8 == "auto" else bool(opts.trt_int8)
    out: dict[str, Any] = {"device_id": opts.cuda_device_id, "trt_fp16_enable": opts.trt_fp16, "trt_int8_enable": int8}
    if opts.trt_engine_cache_dir:
        _make_dir("trt_engine_cache_dir", opts.trt_engine_cache_dir)
        out |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(opts.trt_engine_cache_dir)}
    if opts.trt_timing_cache_dir:
        _make_dir("trt_timing_cache_dir", opts.trt_timing_cache_dir)
        out |= {"trt_timing_cache_enable": True, "trt_timing_cache_path": str(opts.trt_timing_cache_dir)}
    if opts.trt_workspace_mb is not None:
        out["trt_max_workspace_size"] = opts.trt_workspace_mb * 1024 * 1024
    if opts.trt_builder_optimization_level is not None:
        out["trt_builder_optimization_level"] = opts.trt_builder_optimization_level
    if opts.trt_dla_core is not None:
        out |= {"trt_dla_enable": True, "trt_dla_core": opts.trt_dla_core}
    return out


def _make_dir(field: str, path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{field}: cannot create the cache folder {path} ({exc.strerror})") from exc


def resolve_ort(
    opts: RuntimeOptions, available: Sequence[str] | None = None, *, quantized: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(provider, options)`` list to hand to ``InferenceSession``, best first, CPU last.

    ``available`` defaults to ``onnxruntime.get_available_providers()``. ``quantized`` says whether the graph has
    QuantizeLinear/DequantizeLinear nodes (it decides ``trt_int8="auto"``). Raises :class:`UnavailableError` in strict
    mode when the first choice is missing.
    """
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    asked = opts.providers is not None
    prefs = [canonical(p) for p in (opts.providers if asked else DEFAULT_PREFERENCE)]  # type: ignore[union-attr]
    if not prefs:
        raise ConfigError("providers: expected at least one provider, got an empty list")
    have = [ORT_NAMES[k] for k in prefs if ORT_NAMES[k] in available]
    if ORT_NAMES[prefs[0]] not in available:
        msg = f"provider {prefs[0]!r} ({ORT_NAMES[prefs[0]]}) is not installed; available: {', '.join(available)}"
        if opts.strict:
            raise UnavailableError(f"strict provider mode: {msg}")
        log.log(logging.WARNING if asked else logging.INFO, "%s; falling back to %s", msg, (have or ["CPU"])[0])
    chosen = [(name, _provider_options(_SHORT[name], opts, quantized)) for name in have]
    if "CPUExecutionProvider" not in have:
        chosen.append(("CPUExecutionProvider", {}))
    return chosen


def session_options(opts: RuntimeOptions) -> Any:
    """``onnxruntime.SessionOptions`` for ``opts``: threads, spinning off by default, optimization level."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if opts.threads is not None:
        so.intra_op_num_threads = opts.threads
    so.inter_op_num_threads = opts.inter_op_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if opts.spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    for key, value in opts.session_config.items():
        so.add_session_config_entry(key, str(value))
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opts.graph_optimization]
    so.log_severity_level = 3
    return so
