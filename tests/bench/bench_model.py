"""Benchmark: the lane-keeping model, int8 (U8S8 QDQ ONNX) vs float32 — latency and closed-loop quality; and its
full-int8 TFLite variant on LiteRT (XNNPACK) vs the float model converted to TFLite.

    python tests/bench/bench_model.py [--json PATH] [--quick] [--tflite PKG]

Latency: ``model.run()`` on bound buffers (1 thread), float and int8 timed in alternating blocks in this process on
the same camera frame. Closed loop: the ``nominal`` scenario driven by each package in lockstep (the same world,
seed and telemetry), scored by lane-centre quality = the percentage of frames with |lateral error| < 0.25 m, and
the RMS lateral error. Figures (``--json``):

* ``int8_speedup_ratio`` — float p50 / int8 p50 (> 1 is better; target >= 1.5);
* ``closed_loop_error_int8_vs_float`` — quality points lost by int8 (float % − int8 %; target <= 1);
* ``int8_p50_us``, ``float_p50_us``, ``int8_p99_us``, ``float_p99_us``, ``int8_rms_lateral_cm``,
  ``float_rms_lateral_cm``, ``int8_quality_pct``, ``float_quality_pct``.

TFLite rows (LiteRT, XNNPACK delegate, 1 thread, timed in the same alternating blocks as ONNX): the int8 package
``sim/models/lane-keeper-tflite.tgz`` (or ``--tflite PKG``) and the float model of ``lane-keeper-float.tgz``
converted here with :func:`edge.tooling.tflite_export.float_onnx_to_tflite`. A row whose model is missing or cannot
be converted is skipped with the reason printed. Figures:

* ``tflite_int8_us`` — int8 TFLite p50 (µs); ``tflite_int8_p99_us``; ``tflite_float_us`` — float TFLite p50 (µs);
* ``tflite_int8_speedup_ratio`` — float TFLite p50 / int8 TFLite p50 (> 1 is better), when both exist;
* ``tflite_vs_onnx_int8_speedup_ratio`` — int8 ONNX p50 / int8 TFLite p50 (> 1: LiteRT faster);
* ``tflite_int8_quality_pct``, ``tflite_int8_rms_lateral_cm``, ``closed_loop_error_tflite_int8_vs_float`` — the
  int8 TFLite package driving the same closed loop (``--backend tflite``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import _report
import numpy as np
from edge.sim import builtin_scenario
from edge.sim.harness import HarnessOptions, builtin_models, run_scenario

from edge.errors import ModelError
from edge.models import load_model


def _latency(models: dict[str, object], runs: int, block: int = 50) -> dict[str, np.ndarray]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(max(1, runs // block)):
        for name, m in models.items():
            run = m.run
            for _ in range(block):
                t0 = time.perf_counter_ns()
                run()
                times[name].append((time.perf_counter_ns() - t0) * 1e-3)
    return {k: np.array(v) for k, v in times.items()}


def _tflite_models(args: argparse.Namespace, folder: Path, tmp: Path) -> dict[str, Path]:
    """The TFLite models to time: ``tflite_int8`` (the package) and ``tflite_float`` (converted from the float
    package's model), each only when it can be had; the reason is printed otherwise."""
    from edge.models.package import read_package
    from edge.tooling.tflite_export import float_onnx_to_tflite

    found: dict[str, Path] = {}
    pkg = args.tflite or folder / "lane-keeper-tflite.tgz"
    if pkg.exists():
        found["tflite_int8"] = pkg
    else:
        print(f"skipped the int8 TFLite rows: {pkg} does not exist (toolchains/lane/build.py writes it)")
    float_pkg = read_package(folder / "lane-keeper-float.tgz")
    onnx_path = tmp / float_pkg.model_name
    onnx_path.write_bytes(float_pkg.model_bytes)
    try:
        found["tflite_float"] = float_onnx_to_tflite(onnx_path, tmp / "lane_keeper.float.tflite")
    except ModelError as exc:
        print(f"skipped the float TFLite row: the float model does not convert ({exc})")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer runs and a 20-s scenario: under a minute")
    ap.add_argument("--tflite", type=Path, help="the int8 TFLite package (default sim/models/lane-keeper-tflite.tgz)")
    args = ap.parse_args()
    machine = _report.start()
    logging.getLogger("edge").setLevel(logging.WARNING)
    folder = builtin_models()
    packages = {"int8": folder / "lane-keeper.tgz", "float": folder / "lane-keeper-float.tgz"}
    tmp_dir = tempfile.TemporaryDirectory()
    tflite = _tflite_models(args, folder, Path(tmp_dir.name))
    models = {k: load_model(p, threads=1, warmup=20) for k, p in {**packages, **tflite}.items()}
    rng = np.random.default_rng(0)
    for m in models.values():  # any fixed input: latency does not depend on the values
        buf = m.input_buffers[0]
        if buf.dtype.kind in "iu":
            info = np.iinfo(buf.dtype)
            buf[...] = rng.integers(info.min, int(info.max) + 1, buf.shape)
        else:
            buf[...] = rng.standard_normal(buf.shape)
    lat = _latency(models, 600 if args.quick else 5000)
    figures: dict[str, float] = {}
    for k, v in lat.items():
        figures[f"{k}_p50_us"] = float(np.median(v))
        figures[f"{k}_p99_us"] = float(np.percentile(v, 99))
    figures["int8_speedup_ratio"] = figures["float_p50_us"] / figures["int8_p50_us"]
    for k in tflite:
        figures[f"{k}_us"] = figures[f"{k}_p50_us"]
    if "tflite_int8" in tflite:
        figures["tflite_vs_onnx_int8_speedup_ratio"] = figures["int8_p50_us"] / figures["tflite_int8_p50_us"]
        if "tflite_float" in tflite:
            figures["tflite_int8_speedup_ratio"] = figures["tflite_float_p50_us"] / figures["tflite_int8_p50_us"]

    scenario = builtin_scenario("nominal")
    if args.quick:
        scenario = dataclasses.replace(scenario, world=dataclasses.replace(scenario.world, duration_s=20.0))
    driving = {**packages, **{k: p for k, p in tflite.items() if k == "tflite_int8"}}
    with tempfile.TemporaryDirectory() as d:
        for k, p in driving.items():
            backend = "tflite" if k.startswith("tflite") else "onnx"
            res = run_scenario(scenario, HarnessOptions(workdir=Path(d) / k, package=p, backend=backend))
            lateral = res.trace.view("lateral_m")
            figures[f"{k}_quality_pct"] = float(100.0 * np.mean(np.abs(lateral) < 0.25))
            figures[f"{k}_rms_lateral_cm"] = 100.0 * res.rms_lateral_m
    tmp_dir.cleanup()
    figures["closed_loop_error_int8_vs_float"] = figures["float_quality_pct"] - figures["int8_quality_pct"]
    if "tflite_int8" in driving:
        figures["closed_loop_error_tflite_int8_vs_float"] = (
            figures["float_quality_pct"] - figures["tflite_int8_quality_pct"]
        )

    print(f"lane-keeper, 1 thread, {scenario.name} {scenario.world.duration_s:.0f} s closed loop")
    print(f"{'model':<13}{'p50 µs':>10}{'p99 µs':>10}{'quality %':>11}{'rms cm':>9}")
    for k in models:
        loop = f"{figures[k + '_quality_pct']:>11.1f}{figures[k + '_rms_lateral_cm']:>9.2f}" if k in driving else ""
        print(f"{k:<13}{figures[k + '_p50_us']:>10.1f}{figures[k + '_p99_us']:>10.1f}{loop}")
    print(f"int8 speedup (float p50 / int8 p50): {figures['int8_speedup_ratio']:.2f}x (target >= 1.5)")
    print(f"closed-loop quality lost by int8: {figures['closed_loop_error_int8_vs_float']:.2f} points (target <= 1)")
    if "tflite_int8_speedup_ratio" in figures:
        print(f"TFLite int8 speedup (float p50 / int8 p50): {figures['tflite_int8_speedup_ratio']:.2f}x")
    if "tflite_vs_onnx_int8_speedup_ratio" in figures:
        print(f"int8 TFLite vs int8 ONNX (ONNX p50 / TFLite p50): {figures['tflite_vs_onnx_int8_speedup_ratio']:.2f}x")
        loss = figures["closed_loop_error_tflite_int8_vs_float"]
        print(f"closed-loop quality lost by int8 TFLite: {loss:.2f} points")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
