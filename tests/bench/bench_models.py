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

Stateful models (the accumulator built in code with a 2x128 state, and silero-vad from its wheel when installed):

* ``stateful_overhead_us`` — the state carry per frame (``model.state.carry()``: output buffer → input buffer),
  p50 µs, the worst of the models; target ≤ 5 µs;
* ``stateful_carry_vs_copyto_time_ratio`` — that carry / a bare ``np.copyto`` of the same buffers (< 1 is better);
* ``stateful_edge_vs_bare_time_ratio`` — ``model.run()`` with the carry / ``session.run`` with the state carried
  by hand through the feeds dict (< 1 is better), on silero-vad when installed, else the accumulator.

Detectors (tests/bench/detect_figures.py): ``detect_postprocess_us`` and ``detect_postprocess_<case>_speedup_ratio``
for 896 SSD anchors and 8400 YOLO boxes, compiled kernels vs their NumPy twins (target ratio >= 10).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import _report
import numpy as np
from detect_figures import postprocess_figures

from edge.models import load_model
from edge.models.bench import bench_model
from edge.tooling.model_builders import float_cnn_onnx, int8_tflite, u8s8_cnn_onnx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer runs, finishes in well under a minute")
    args = ap.parse_args()
    machine = _report.start()
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
    with tempfile.TemporaryDirectory() as d:
        figures |= stateful_figures(Path(d), runs)
    det_figures, det_lines = postprocess_figures(args.quick)  # detectors: decode + NMS, compiled vs twin
    print("\n".join(det_lines))
    figures |= det_figures
    _report.write_json(args.json, figures, machine)
    return 0


def _per_call_us(fn, n: int, blocks: int = 15) -> tuple[float, float]:
    """(p50, p99) over ``blocks`` blocks of ``n`` calls, µs per call."""
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        times.append((time.perf_counter_ns() - t0) / n / 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def stateful_figures(tmp: Path, runs: int) -> dict[str, float]:
    """State carry through edge vs a bare copy, and a stateful run through edge vs bare onnxruntime with the carry
    done by hand (see the module doc)."""
    import onnxruntime as ort

    sys.path.append(str(Path(__file__).resolve().parents[1] / "models"))  # dynamic_models.py
    from dynamic_models import accumulator_onnx, silero_vad_path

    cases = {
        "accumulator": (
            accumulator_onnx(tmp / "acc.onnx"),
            {"x": (1, 256), "state": (1, 256)},
            {"state_out": "state"},
            {"gain": np.array(0.5, np.float32)},
        )
    }
    vad = silero_vad_path()
    if vad is not None:
        cases["silero_vad"] = (
            vad,
            {"input": (1, 576), "state": (2, 1, 128)},
            {"stateN": "state"},
            {"sr": np.array(16000, np.int64)},
        )
    rng = np.random.default_rng(0)
    rows, fig = [], {}
    carry_worst, carry_ratio_worst, run_ratio = 0.0, 0.0, float("nan")
    for name, (path, shapes, state, consts) in cases.items():
        model = load_model(path, shapes=shapes, state=state, threads=1, warmup=0)
        names = [s.name for s in model.inputs]
        feeds = {}
        for spec, buf in zip(model.inputs, model.input_buffers, strict=True):
            if spec.name in consts:
                buf[...] = consts[spec.name]
            elif spec.name not in state.values():
                buf[...] = (rng.standard_normal(spec.shape) * 0.1).astype(spec.dtype)
            feeds[spec.name] = buf.copy()
        model.run()  # binds the dynamic outputs (a real input, asked for here)
        out_i = [s.name for s in model.outputs].index(next(iter(state)))
        src, dst = model.output_buffers[out_i], model.input_buffers[names.index(next(iter(state.values())))]
        carry = model.state.carry
        n = max(runs, 1000)
        c50, c99 = _per_call_us(carry, n)
        b50, _ = _per_call_us(lambda dst=dst, src=src: np.copyto(dst, src), n)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        state_in, out_idx = next(iter(state.values())), out_i

        def bare(feeds=feeds, state_in=state_in, sess=sess, out_idx=out_idx) -> None:
            feeds[state_in] = sess.run(None, feeds)[out_idx]

        k = max(runs // 10, 50)
        e50, _ = _per_call_us(model.run, k)
        r50, _ = _per_call_us(bare, k)
        rows.append((name, c50, c99, b50, e50, r50))
        fig |= {f"{name}_state_carry_p50_us": c50, f"{name}_stateful_edge_p50_us": e50,
                f"{name}_stateful_bare_p50_us": r50}  # fmt: skip
        carry_worst = max(carry_worst, c50)
        carry_ratio_worst = max(carry_ratio_worst, c50 / b50)
        run_ratio = e50 / r50
    fig["stateful_overhead_us"] = carry_worst
    fig["stateful_carry_vs_copyto_time_ratio"] = carry_ratio_worst
    fig["stateful_edge_vs_bare_time_ratio"] = run_ratio
    print(f"\n{'stateful model':16}{'carry p50':>11}{'carry p99':>11}{'copyto p50':>12}{'edge run':>10}{'bare run':>10}"
          "   (µs; edge run = model.run() + carry, bare = session.run + carry by hand; 1 thread)")  # fmt: skip
    for name, c50, c99, b50, e50, r50 in rows:
        print(f"{name:16}{c50:11.2f}{c99:11.2f}{b50:12.2f}{e50:10.1f}{r50:10.1f}")
    verdict = "met" if carry_worst <= 5.0 else "NOT met"
    print(f"target state carry <= 5 µs per frame: {verdict} (worst {carry_worst:.2f} µs)")
    return fig


if __name__ == "__main__":
    sys.exit(main())
