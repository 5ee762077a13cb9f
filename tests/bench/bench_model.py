"""Benchmark: the lane-keeping model, int8 (U8S8 QDQ ONNX) vs float32 — latency and closed-loop quality.

    python tests/bench/bench_model.py [--json PATH] [--quick]

Latency: ``model.run()`` on bound buffers (1 thread), float and int8 timed in alternating blocks in this process on
the same camera frame. Closed loop: the ``nominal`` scenario driven by each package in lockstep (the same world,
seed and telemetry), scored by lane-centre quality = the percentage of frames with |lateral error| < 0.25 m, and
the RMS lateral error. Figures (``--json``):

* ``int8_speedup_ratio`` — float p50 / int8 p50 (> 1 is better; target >= 1.5);
* ``closed_loop_error_int8_vs_float`` — quality points lost by int8 (float % − int8 %; target <= 1);
* ``int8_p50_us``, ``float_p50_us``, ``int8_p99_us``, ``float_p99_us``, ``int8_rms_lateral_cm``,
  ``float_rms_lateral_cm``, ``int8_quality_pct``, ``float_quality_pct``.

The TFLite variant is not built yet (see toolchains/lane/build.py), so only ONNX is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from edge.sim import builtin_scenario
from edge.sim.harness import HarnessOptions, builtin_models, run_scenario

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer runs and a 20-s scenario: under a minute")
    args = ap.parse_args()
    logging.getLogger("edge").setLevel(logging.WARNING)
    folder = builtin_models()
    packages = {"int8": folder / "lane-keeper.tgz", "float": folder / "lane-keeper-float.tgz"}
    models = {k: load_model(p, threads=1, warmup=20) for k, p in packages.items()}
    rng = np.random.default_rng(0)
    for m in models.values():  # any fixed input: latency does not depend on the values
        buf = m.input_buffers[0]
        buf[...] = rng.integers(0, 256, buf.shape) if buf.dtype == np.uint8 else rng.standard_normal(buf.shape)
    lat = _latency(models, 600 if args.quick else 5000)
    figures: dict[str, float] = {}
    for k, v in lat.items():
        figures[f"{k}_p50_us"] = float(np.median(v))
        figures[f"{k}_p99_us"] = float(np.percentile(v, 99))
    figures["int8_speedup_ratio"] = figures["float_p50_us"] / figures["int8_p50_us"]

    scenario = builtin_scenario("nominal")
    if args.quick:
        scenario = dataclasses.replace(scenario, world=dataclasses.replace(scenario.world, duration_s=20.0))
    with tempfile.TemporaryDirectory() as d:
        for k, p in packages.items():
            res = run_scenario(scenario, HarnessOptions(workdir=Path(d) / k, package=p))
            lateral = res.trace.view("lateral_m")
            figures[f"{k}_quality_pct"] = float(100.0 * np.mean(np.abs(lateral) < 0.25))
            figures[f"{k}_rms_lateral_cm"] = 100.0 * res.rms_lateral_m
    figures["closed_loop_error_int8_vs_float"] = figures["float_quality_pct"] - figures["int8_quality_pct"]

    print(f"lane-keeper, 1 thread, {scenario.name} {scenario.world.duration_s:.0f} s closed loop")
    print(f"{'model':<8}{'p50 µs':>10}{'p99 µs':>10}{'quality %':>11}{'rms cm':>9}")
    for k in packages:
        print(
            f"{k:<8}{figures[k + '_p50_us']:>10.1f}{figures[k + '_p99_us']:>10.1f}"
            f"{figures[k + '_quality_pct']:>11.1f}{figures[k + '_rms_lateral_cm']:>9.2f}"
        )
    print(f"int8 speedup (float p50 / int8 p50): {figures['int8_speedup_ratio']:.2f}x (target >= 1.5)")
    print(f"closed-loop quality lost by int8: {figures['closed_loop_error_int8_vs_float']:.2f} points (target <= 1)")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
