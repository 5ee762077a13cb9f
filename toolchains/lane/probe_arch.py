"""Time candidate lane-network architectures, float32 vs U8S8 QDQ, with random weights (latency does not depend on
the values).

    .venv/bin/python toolchains/lane/probe_arch.py [--runs 1500] [--only NAME ...]

For each candidate: the float graph (lanenet.build_graph, batch 1) and its U8S8 QDQ version (quantize_u8s8, uint8
input, calibrated on random frames) are loaded with ``edge.models.load_model(threads=1)`` and ``run()`` on bound
buffers is timed in alternating blocks, as tests/bench/bench_model.py does. Prints p50 (µs) and float/int8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lanenet
import numpy as np
from lanenet import Architecture

from edge.models import load_model
from edge.tooling.toolchain import quantize_u8s8

FC = (100, 50, 10)
CANDIDATES = {
    "old-trunk": Architecture(((12, 5, 2), (16, 5, 2), (24, 3, 2)), dense=()),
    "pilotnet": lanenet.PILOTNET,
    "pilotnet-x1.5 (lanenet)": lanenet.LANENET,
    "pilotnet-x2": Architecture(((48, 5, 2), (72, 5, 2), (96, 5, 2), (128, 3, 1), (128, 3, 1)), FC),
    "pilotnet-c2w": Architecture(((24, 5, 2), (48, 5, 2), (64, 5, 2), (64, 3, 1), (64, 3, 1)), FC),
    "pilotnet-x1.25": Architecture(((32, 5, 2), (48, 5, 2), (64, 5, 2), (80, 3, 1), (80, 3, 1)), FC),
    "pilotnet-32": Architecture(((32, 5, 2), (48, 5, 2), (64, 5, 2), (64, 3, 1), (64, 3, 1)), FC),
}


def _time(models: dict[str, object], runs: int, block: int = 50) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(max(1, runs // block)):
        for name, m in models.items():
            for _ in range(block):
                t0 = time.perf_counter_ns()
                m.run()
                times[name].append((time.perf_counter_ns() - t0) * 1e-3)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1500)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (32, *lanenet.INPUT_HW, 3), dtype=np.uint8)
    print(f"{'architecture':<16}{'float p50 µs':>14}{'int8 p50 µs':>13}{'float/int8':>12}")
    with tempfile.TemporaryDirectory() as d:
        for name, arch in CANDIDATES.items():
            if args.only and name not in args.only:
                continue
            fp = lanenet.build_graph(Path(d) / f"{name}.onnx", arch, lanenet.random_weights(arch, 0))
            q = quantize_u8s8(fp, Path(d) / f"{name}.int8.onnx", calib, mean=lanenet.MEAN, std=lanenet.STD)
            models = {"float": load_model(fp, threads=1, warmup=20), "int8": load_model(q, threads=1, warmup=20)}
            for m in models.values():
                buf = m.input_buffers[0]
                buf[...] = rng.integers(0, 256, buf.shape) if buf.dtype == np.uint8 else rng.standard_normal(buf.shape)
            p50 = _time(models, args.runs)
            print(f"{name:<16}{p50['float']:>14.1f}{p50['int8']:>13.1f}{p50['float'] / p50['int8']:>12.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
