"""Benchmark: ``edge`` Model.run vs the bare runtime call, and U8S8 int8 vs float ONNX.

    python tests/bench/bench_models.py [--json PATH] [--quick]

For each test model (built in a temporary folder; nothing downloaded) the edge path (``model.run()`` on bound
buffers) and the bare path (``session.run(None, feeds)`` / ``set_tensor``+``invoke``+``get_tensor``) are timed in
alternating blocks in this process, on the same inputs, with 1 thread. Figures (``--json``):

* ``edge_overhead_us`` — worst (max over models) of edge p50 − bare p50, µs (negative: edge is faster);
* ``edge_vs_bare_time_ratio`` — worst edge p50 / bare p50 (< 1 is better);
* ``int8_vs_float_speedup_ratio`` — float p50 / U8S8 p50 through edge on the larger CNN (> 1 is better);
* per model ``<model>_edge_p50_us``, ``<model>_bare_p50_us``, ``<model>_edge_p99_us``, ``<model>_first_run_ms``.
Target: overhead ≤ max(5 µs, 3 % of the bare call).

Detectors (tests/bench/detect_figures.py): ``detect_postprocess_us`` and ``detect_postprocess_<case>_speedup_ratio``
for 896 SSD anchors and 8400 YOLO boxes, compiled kernels vs their NumPy twins (target ratio >= 10).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from detect_figures import postprocess_figures

from edge.models import load_model
from edge.models.bench import bench_model
from edge.tooling.model_builders import float_cnn_onnx, int8_tflite, u8s8_cnn_onnx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer runs, finishes in well under a minute")
    args = ap.parse_args()
    logging.getLogger("edge.models").setLevel(logging.WARNING)
    runs = 300 if args.quick else 3000
    hw, width = (64, 16) if args.quick else (96, 32)
    figures: dict[str, float] = {}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = {
            "float_onnx": float_cnn_onnx(tmp / "float.onnx", hw=hw, width=width),
            "u8s8_onnx": u8s8_cnn_onnx(tmp / "u8s8.onnx", hw=hw, width=width),
            "int8_tflite": int8_tflite(tmp / "int8.tflite", hw=16, channels=8),
        }
        results = {}
        for name, path in paths.items():
            model = load_model(path, threads=1, warmup=5)
            results[name] = fig = bench_model(model, runs=runs, warmup=max(runs // 10, 20), threads=1)
            e, b = fig["edge"], fig["bare"]
            rows.append(
                (
                    name,
                    e["p50_us"],
                    e["p99_us"],
                    b["p50_us"],
                    b["p99_us"],
                    fig["edge_vs_bare_time_ratio"],
                    fig["edge_overhead_us"],
                    fig["first_run_ms"],
                )
            )
            figures |= {
                f"{name}_edge_p50_us": e["p50_us"],
                f"{name}_bare_p50_us": b["p50_us"],
                f"{name}_edge_p99_us": e["p99_us"],
                f"{name}_first_run_ms": fig["first_run_ms"],
            }
    figures["edge_overhead_us"] = max(r["edge_overhead_us"] for r in results.values())
    figures["edge_vs_bare_time_ratio"] = max(r["edge_vs_bare_time_ratio"] for r in results.values())
    figures["int8_vs_float_speedup_ratio"] = (
        results["float_onnx"]["edge"]["p50_us"] / results["u8s8_onnx"]["edge"]["p50_us"]
    )
    print(
        f"{'model':14}{'edge p50':>10}{'edge p99':>10}{'bare p50':>10}{'bare p99':>10}{'ratio':>8}"
        f"{'overhead':>10}{'first ms':>10}   (µs unless stated; 1 thread, {runs} runs)"
    )
    for n, ep50, ep99, bp50, bp99, ratio, ov, first in rows:
        print(f"{n:14}{ep50:10.1f}{ep99:10.1f}{bp50:10.1f}{bp99:10.1f}{ratio:8.3f}{ov:+10.2f}{first:10.3f}")
    print(
        f"int8 (U8S8) vs float speedup through edge, CNN {hw}x{hw} width {width}: "
        f"{figures['int8_vs_float_speedup_ratio']:.2f}x"
    )
    worst_bare = min(r["bare"]["p50_us"] for r in results.values())
    ok = figures["edge_overhead_us"] <= max(5.0, 0.03 * worst_bare)
    print(
        f"target overhead <= max(5 µs, 3% of bare): {'met' if ok else 'NOT met'} "
        f"(worst {figures['edge_overhead_us']:+.2f} µs)"
    )
    det_figures, det_lines = postprocess_figures(args.quick)  # detectors: decode + NMS, compiled vs twin
    print("\n".join(det_lines))
    figures |= det_figures
    if args.json:
        args.json.write_text(json.dumps({"figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
