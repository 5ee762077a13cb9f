"""Kernel benchmark: preprocessing of a 640×480×3 frame and the per-frame sketch update.

Times, in the same run and on the same inputs:
  * preprocess 640×480×3 uint8 → 1×3×224×224 float32 (normalized) and → uint8 (quantized), with the frame's
    per-channel mean/std: the compiled kernel, its NumPy twin, and the best plain-NumPy code written for the job
    (separable bilinear resize with precomputed gathers, fused scale+bias, stats from per-channel bincounts);
  * the sketch update of 32 features per frame (16 bin edges each): compiled vs twin.

    python tests/bench/bench_kernels.py [--quick] [--json PATH]

Prints a table (median, p99, ratio to the baseline) and with --json writes {"figures": {...}} with
``preprocess_speedup_ratio`` (best plain NumPy time / native time, > 1 is better),
``preprocess_vs_twin_speedup_ratio`` (twin / native, target >= 8; on x86-64 with AVX2 also
``preprocess_baseline_build_vs_twin_speedup_ratio``, the build a CPU without AVX2 runs),
``preprocess_vs_memcpy_ratio`` (a time ratio, < 1 is better: native time / a plain copy of the same bytes in the same
run, the frame read once and the model input written once; target <= 3) and ``sketch_us_per_frame``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _report
import numpy as np

from edge.kernels import implementation, tables

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
H, W, SIZE = 480, 640, 224
Q_SCALE, Q_ZP = 0.0186, 114


def timings(fn: Callable[[], object], repeat: int, inner: int = 1) -> np.ndarray:
    """Seconds per call for ``repeat`` samples of ``inner`` calls each (after a warm-up)."""
    for _ in range(3):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out[i] = (time.perf_counter() - t0) / inner
    return out


class PlainNumpyPreprocess:
    """The best plain-NumPy preprocessing written for this benchmark: bilinear resize (pixel centres aligned, like
    OpenCV) as two precomputed gathers with float32 weights, normalization fused into one scale+bias, optional
    quantization, and the frame's per-channel mean/std from bincounts (exact, and faster than float sums)."""

    def __init__(self, quantized: bool) -> None:
        self.quantized = quantized
        self.y0, self.y1, self.wy = self._axis(H, SIZE)
        self.x0, self.x1, self.wx = self._axis(W, SIZE)
        self.scale = (1.0 / (255.0 * np.array(STD))).astype(np.float32)[:, None, None]
        self.bias = (-np.array(MEAN) / np.array(STD)).astype(np.float32)[:, None, None]
        self.values = np.arange(256, dtype=np.float64)

    @staticmethod
    def _axis(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0, src - 1)
        i0 = np.floor(f).astype(np.intp)
        return i0, np.minimum(i0 + 1, src - 1), (f - i0).astype(np.float32)

    def __call__(self, frame: np.ndarray, out: np.ndarray, stats: np.ndarray) -> None:
        flat = frame.reshape(-1, 3)
        for c in range(3):
            hist = np.bincount(flat[:, c], minlength=256)
            n = hist.sum()
            mean = hist @ self.values / n
            stats[0, c] = mean
            stats[1, c] = np.sqrt(hist @ (self.values - mean) ** 2 / n)
        chw = frame.transpose(2, 0, 1).astype(np.float32)  # (3, H, W)
        wy = self.wy[:, None]
        rows = chw[:, self.y0] * (1 - wy) + chw[:, self.y1] * wy
        x = rows[:, :, self.x0] * (1 - self.wx) + rows[:, :, self.x1] * self.wx
        x *= self.scale
        x += self.bias
        if self.quantized:
            np.clip(np.rint(x / Q_SCALE) + Q_ZP, 0, 255, out=x)
        out[0] = x


def bench_preprocess(quick: bool) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    plan = tables.resize_plan((H, W), (SIZE, SIZE))
    cmap = tables.channel_map("RGB", "RGB")
    stats = np.empty((2, 3))
    repeat = 15 if quick else 60
    native, twin = implementation("native"), implementation("numpy")
    baseline = implementation("native", baseline=True)  # the same as native where no AVX2 build runs
    results: dict[str, dict[str, np.ndarray]] = {}
    for kind, dtype, lut in (
        ("float32", np.float32, tables.normalize_lut(MEAN, STD)),
        ("uint8", np.uint8, tables.quantized_lut(MEAN, STD, Q_SCALE, Q_ZP, np.uint8)),
    ):
        out = np.empty((1, 3, SIZE, SIZE), dtype)
        plain = PlainNumpyPreprocess(quantized=dtype == np.uint8)
        frame_copy, out_src, out_copy = np.empty_like(frame), np.ones_like(out), np.empty_like(out)

        def memcpy(frame_copy=frame_copy, out_src=out_src, out_copy=out_copy) -> None:
            np.copyto(frame_copy, frame)  # read the frame once, and write the model input's bytes once
            np.copyto(out_copy, out_src)

        results[kind] = {
            "memcpy (same bytes)": timings(memcpy, repeat, inner=5),
            "plain numpy": timings(lambda plain=plain, out=out: plain(frame, out, stats), repeat),
            "twin (numpy)": timings(
                lambda out=out, lut=lut: twin["preprocess_frame"](frame, out, "NCHW", lut, plan, cmap, stats), repeat
            ),
            "native": timings(
                lambda out=out, lut=lut: native["preprocess_frame"](frame, out, "NCHW", lut, plan, cmap, stats),
                repeat,
                inner=5,
            ),
        }
        if baseline["preprocess_frame"] is not native["preprocess_frame"]:
            results[kind]["native, baseline build"] = timings(
                lambda out=out, lut=lut: baseline["preprocess_frame"](frame, out, "NCHW", lut, plan, cmap, stats),
                repeat,
                inner=5,
            )
    return results


def bench_sketch(quick: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    edges = np.cumsum(rng.uniform(0.1, 1.0, (32, 16)), axis=1) - 8.0
    rows = list(rng.normal(0.0, 3.0, (2000, 32)))
    results = {}
    for name, impl in (("twin (numpy)", implementation("numpy")), ("native", implementation("native"))):
        counts = np.zeros((32, 18), np.int64)
        moments = np.zeros((32, 5))
        update = impl["SketchAccumulator"](edges, counts, moments).update
        frames = rows[:100] if name.startswith("twin") else rows

        def run(update=update, frames=frames) -> None:
            for x in frames:
                update(x)

        results[name] = timings(run, 5 if quick else 20) / len(frames)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (finishes in well under a minute)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    machine = _report.start()

    pre = bench_preprocess(args.quick)
    sketch = bench_sketch(args.quick)
    figures: dict[str, float] = {}
    print(f"{'case':<34}{'median':>12}{'p99':>12}{'vs best numpy':>16}")

    def row(label: str, t: np.ndarray, unit: float, suffix: str, ratio: float) -> None:
        med, p99 = np.median(t) * unit, np.percentile(t, 99) * unit
        print(f"{label:<34}{med:>10.3f}{suffix}{p99:>10.3f}{suffix}{ratio:>15.2f}x")

    for kind, rows in pre.items():
        best_numpy = min(np.median(rows["plain numpy"]), np.median(rows["twin (numpy)"]))
        copy = rows.pop("memcpy (same bytes)")
        for name, t in rows.items():
            row(f"preprocess {kind} / {name}", t, 1e3, "ms", best_numpy / np.median(t))
        key = "preprocess" if kind == "float32" else "preprocess_uint8"
        figures[f"{key}_speedup_ratio"] = float(best_numpy / np.median(rows["native"]))
        figures[f"{key}_native_ms"] = float(np.median(rows["native"]) * 1e3)
        figures[f"{key}_best_numpy_ms"] = float(best_numpy * 1e3)
        native = float(np.median(rows["native"]))
        figures[f"{key}_vs_twin_speedup_ratio"] = float(np.median(rows["twin (numpy)"]) / native)
        figures[f"{key}_vs_memcpy_ratio"] = native / float(np.median(copy))
        figures[f"{key}_memcpy_ms"] = float(np.median(copy) * 1e3)
        if "native, baseline build" in rows:  # what a CPU without AVX2 would get from the same source
            base = float(np.median(rows["native, baseline build"]))
            figures[f"{key}_baseline_build_ms"] = base * 1e3
            figures[f"{key}_baseline_build_vs_twin_speedup_ratio"] = float(np.median(rows["twin (numpy)"]) / base)
        print(
            f"preprocess {kind}: native {native * 1e3:.3f} ms = {figures[f'{key}_vs_twin_speedup_ratio']:.1f}x the "
            f"twin (target >= 8), {figures[f'{key}_vs_memcpy_ratio']:.1f}x a plain copy of the same bytes "
            f"({np.median(copy) * 1e3:.3f} ms; target <= 3)"
        )
    for name, t in sketch.items():
        row(f"sketch 32 features / {name}", t, 1e6, "us", np.median(sketch["twin (numpy)"]) / np.median(t))
    figures["sketch_us_per_frame"] = float(np.median(sketch["native"]) * 1e6)
    twin_us = np.median(sketch["twin (numpy)"]) * 1e6
    figures["sketch_native_vs_twin_speedup_ratio"] = float(twin_us / figures["sketch_us_per_frame"])
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
