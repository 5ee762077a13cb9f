#!/usr/bin/env python3
"""Check the CUDA and TensorRT paths of the model runtime on an NVIDIA GPU (a Jetson module or any CUDA machine).

    python toolchains/jetson/check.py [--profile toolchains/jetson/profile.toml] [--cache DIR] [--json PATH]

For each GPU provider that the installed onnxruntime offers (TensorRT, CUDA) and each test model built in code
(float CNN, U8S8 QDQ CNN), it loads the model with the profile in strict mode (so a silent CPU fallback fails the
check), runs seeded inputs, compares the outputs with the CPU provider's, and, for TensorRT, loads the model a
second time to show that the engine cache turns a cold build into a warm start. Exit status: 0 pass, 1 fail,
3 NOT RUN (no GPU provider in this onnxruntime: install onnxruntime-gpu, see toolchains/jetson/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# Outputs may differ from the CPU's by fp16 rounding (TensorRT fp16) and by one quantization step (int8 kernels).
FLOAT_ATOL, QDQ_ATOL = 5e-2, 0.25


def _models(tmp: Path) -> dict[str, Path]:
    from edge.tooling.model_builders import float_cnn_onnx, u8s8_cnn_onnx

    return {"float": float_cnn_onnx(tmp / "float.onnx", hw=64), "u8s8": u8s8_cnn_onnx(tmp / "u8s8.onnx", hw=64)}


def _inputs(model: object, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for spec in model.inputs:  # type: ignore[attr-defined]
        if np.issubdtype(spec.dtype, np.integer):
            info = np.iinfo(spec.dtype)
            out.append(rng.integers(info.min, info.max, size=spec.shape, endpoint=True, dtype=spec.dtype))
        else:
            out.append(rng.standard_normal(spec.shape).astype(spec.dtype))
    return out


def _run(model: object, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.array(o, dtype=np.float64) for o in model.run(*inputs)]  # type: ignore[attr-defined]


def gpu_providers() -> list[str]:
    """The GPU providers the installed onnxruntime offers, best first (``"tensorrt"``, ``"cuda"``)."""
    import onnxruntime

    have = onnxruntime.get_available_providers()
    return [
        p for p, name in (("tensorrt", "TensorrtExecutionProvider"), ("cuda", "CUDAExecutionProvider")) if name in have
    ]


def check(profile: Path, cache: Path, providers: list[str]) -> list[dict]:
    """One row per (test model, provider): load in strict mode with the profile, compare with the CPU provider."""
    from edge.models import load_model
    from edge.models.profile import load_provider_profile

    opts = load_provider_profile(profile)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in _models(Path(tmp)).items():
            cpu = load_model(path, providers=["cpu"])
            inputs = _inputs(cpu, seed=7)
            want = _run(cpu, inputs)
            for provider in providers:
                fields = {"trt_engine_cache_dir": str(cache / "engines"), "trt_timing_cache_dir": str(cache / "timing")}
                t0 = time.perf_counter()
                model = load_model(path, options=opts, providers=[provider], strict=True, **fields)
                cold_s = time.perf_counter() - t0
                got = _run(model, inputs)
                err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
                row = {"model": kind, "provider": model.provider, "load_s": round(cold_s, 3), "max_abs_err": err}
                row["first_run_ms"] = model.report.first_run_ms
                row["warm_ms"] = model.report.warm_ms
                if provider == "tensorrt":
                    t0 = time.perf_counter()
                    load_model(path, options=opts, providers=[provider], strict=True, **fields)
                    row["cached_load_s"] = round(time.perf_counter() - t0, 3)
                    row["engine_files"] = len(list((cache / "engines").iterdir()))
                tol = QDQ_ATOL if kind == "u8s8" else FLOAT_ATOL
                row["ok"] = model.provider == provider and err <= tol and row.get("engine_files", 1) > 0
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", type=Path, default=HERE / "profile.toml")
    ap.add_argument("--cache", type=Path, help="TensorRT cache folder (default: a fresh temporary folder)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON here")
    ap.add_argument(
        "--providers",
        help="comma-separated providers to check (default: every GPU one installed); "
        "'cpu' exercises this script itself on a machine without a GPU",
    )
    args = ap.parse_args(argv)
    import onnxruntime

    have = onnxruntime.get_available_providers()
    providers = args.providers.split(",") if args.providers else gpu_providers()
    if not providers:
        print(
            f"jetson check: NOT RUN: onnxruntime {onnxruntime.__version__} offers {', '.join(have)}; "
            "no CUDA or TensorRT provider (install onnxruntime-gpu: toolchains/jetson/README.md)"
        )
        return 3
    with tempfile.TemporaryDirectory() as tmp:
        rows = check(args.profile, args.cache or Path(tmp), providers)
    print(f"onnxruntime {onnxruntime.__version__}; providers {', '.join(have)}")
    for r in rows:
        extra = (
            f" cached load {r['cached_load_s']} s, {r['engine_files']} engine file(s)" if "cached_load_s" in r else ""
        )
        print(
            f"{'PASS' if r['ok'] else 'FAIL'} {r['model']:5} on {r['provider']:8} load {r['load_s']} s, "
            f"warm {r['warm_ms'] or 0:.3f} ms, max |gpu-cpu| {r['max_abs_err']:.3g}{extra}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
