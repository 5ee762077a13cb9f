"""The detection policy with a YOLO-style model built in code (ONNX, run by ONNX Runtime): decoding both layouts,
boxes in frame pixels, the ROI brake rule over consecutive frames, hold-last of detections, refusal of configs that
do not match the outputs, MediaPipe anchor generation, and zero allocation per frame."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from test_allocation import _check, _measure

from edge import kernels
from edge.errors import ConfigError
from edge.loop.clock import LockstepClock
from edge.loop.config import parse_config
from edge.loop.detect import DetectionPolicy, RoiRule, SsdAnchorOptions, YoloDecoder, policy_from_config, ssd_anchors
from edge.loop.health import FallbackConfig
from edge.loop.runner import Loop
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Timing
from edge.models import load_model

LABELS = ("red", "green", "blue")
FRAME = (64, 64, 3)  # the model input is 32×32: frame pixels = 2 × model pixels
CELL = 8  # the model's grid: 4×4 cells of 8×8 model pixels, one box each


def colour_grid_yolo(path: Path, *, layout: str) -> Path:
    """A YOLO-style detector built in code: input float32 [1, 3, 32, 32]; for each 8×8 cell (row-major) one box
    (cx, cy, w, h) = (cell centre, 8, 8) in model pixels and three class scores = the mean of R, G and B over the
    cell. Output ``dets`` [1, 7, 16] (``layout="columns"``) or its transpose [1, 16, 7] (``"rows"``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    centres = np.array([(c * CELL + CELL / 2, r * CELL + CELL / 2) for r in range(4) for c in range(4)], np.float32)
    boxes = np.concatenate([centres.T, np.full((2, 16), CELL, np.float32)])[None]  # [1, 4, 16]
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Reshape", ["pooled", "shape"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["cols" if layout == "rows" else "dets"], axis=1),
    ]
    if layout == "rows":
        nodes.append(helper.make_node("Transpose", ["cols"], ["dets"], perm=[0, 2, 1]))
    out_shape = [1, 16, 7] if layout == "rows" else [1, 7, 16]
    graph = helper.make_graph(
        nodes,
        "colour_grid",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(boxes, "boxes"), numpy_helper.from_array(np.array([1, 3, 16], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    return path


@pytest.fixture(scope="module")
def yolo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("yolo")
    return {lay: colour_grid_yolo(d / f"{lay}.onnx", layout=lay) for lay in ("rows", "columns")}


def _frame(row: int = 1, col: int = 2, colour: int = 0) -> np.ndarray:
    """A black frame with one full-intensity square of ``colour`` filling model cell (row, col)."""
    f = np.zeros(FRAME, np.uint8)
    s = 2 * CELL
    f[row * s : (row + 1) * s, col * s : (col + 1) * s, colour] = 255
    return f


def _loop(model_path: Path, rule: RoiRule, **kw) -> Loop:
    policy = DetectionPolicy(
        YoloDecoder(layout=kw.pop("layout", "auto")),
        FRAME[:2],
        labels=LABELS,
        score_threshold=0.5,
        max_detections=4,
        rule=rule,
    )
    camera = SensorSlot("camera", FRAME, stale_ns=25_000_000)
    return Loop(
        load_model(model_path, threads=1), policy, [camera], clock=LockstepClock(), timing=Timing(rate_hz=100), **kw
    )


def _step(loop: Loop, frame: np.ndarray | None):
    if frame is not None:
        loop.primary.push(frame, loop.schedule.next_ns)
    return loop.step()


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_yolo_detection_in_frame_pixels_both_layouts(yolo_models, layout) -> None:
    loop = _loop(yolo_models[layout], RoiRule())
    with loop:
        d = _step(loop, _frame(row=1, col=2, colour=0))
        det = d.detections
        assert det.count == 1 and d.flags == 0
        # cell (1, 2): model box (16, 8)–(24, 16) → ×2 in the 64×64 frame
        assert det.boxes[0].tolist() == [32.0, 16.0, 48.0, 32.0]
        assert det.classes[0] == 0 and det.scores[0] == pytest.approx(1.0, abs=1e-6)
        assert d.snapshot()["detections"] == [
            {"class": 0, "label": "red", "score": det.scores.item(0), "box": [32.0, 16.0, 48.0, 32.0]}
        ]
        d = _step(loop, _frame(row=3, col=0, colour=2))
        assert det.count == 1 and det.boxes[0].tolist() == [0.0, 48.0, 16.0, 64.0] and det.classes[0] == 2
        d = _step(loop, np.zeros(FRAME, np.uint8))
        assert det.count == 0 and d.label == "go"


def test_roi_brake_rule(yolo_models) -> None:
    # ROI: the right half of the frame; trigger on red only; 3 consecutive frames
    rule = RoiRule(classes=("red",), roi=(32.0, 0.0, 64.0, 64.0), min_inside=0.5, min_score=0.5, frames=3)
    loop = _loop(yolo_models["columns"], rule)
    red_in = _frame(row=1, col=2, colour=0)  # x 32..48: inside the ROI
    red_out = _frame(row=1, col=0, colour=0)  # x 0..16: outside
    blue_in = _frame(row=1, col=3, colour=2)  # inside, but not a trigger class
    seq = [red_in, red_in, red_out, red_in, red_in, red_in, red_in, blue_in, red_in]
    with loop:
        labels = [_step(loop, f).label for f in seq]
    assert labels == ["go", "go", "go", "go", "go", "brake", "brake", "go", "go"]


def test_detections_are_held_with_the_decision_on_a_stale_frame(yolo_models) -> None:
    rule = RoiRule(frames=1)
    loop = _loop(yolo_models["rows"], rule, fallback=FallbackConfig(hold_frames=3, recover_frames=1))
    with loop:
        d = _step(loop, _frame(row=0, col=0, colour=1))
        assert d.detections.count == 1 and d.label == "brake"
        loop.clock.advance(30_000_000)  # no new capture: the camera goes stale → hold-last
        d = _step(loop, None)
        assert d.fallback and d.label == "brake"
        assert d.detections.count == 1 and d.detections.boxes[0].tolist() == [0.0, 0.0, 16.0, 16.0]


def test_config_that_does_not_match_the_outputs_is_refused(yolo_models) -> None:
    model = load_model(yolo_models["columns"], threads=1)
    cam = [SensorSlot("camera", FRAME)]
    with pytest.raises(ConfigError, match=r"policy\.labels: expected 3 names .*dets\[1x7x16\] float32.*got 2"):
        Loop(
            model,
            DetectionPolicy(YoloDecoder(layout="columns"), FRAME[:2], labels=("a", "b")),
            cam,
            clock=LockstepClock(),
        )
    with pytest.raises(
        ConfigError,
        match=r"policy\.output: expected one of the model's outputs \(dets\[1x7x16\] float32\), got 'boxes'",
    ):
        Loop(model, DetectionPolicy(YoloDecoder(output="boxes"), FRAME[:2]), cam, clock=LockstepClock())
    with pytest.raises(ConfigError, match=r"policy\.layout: .* got 'auto' for dets\[1x7x16\] float32"):
        Loop(model, DetectionPolicy(YoloDecoder(), FRAME[:2], labels=tuple("abcdef")), cam, clock=LockstepClock())
    with pytest.raises(ConfigError, match=r"policy\.trigger_classes: expected names from policy\.labels"):
        DetectionPolicy(YoloDecoder(), FRAME[:2], labels=LABELS, rule=RoiRule(classes=("cat",)))


def test_mediapipe_anchor_generation_hand_worked() -> None:
    # BlazeFace short range: stride 8 → 16×16 cells × 2 anchors, strides 16,16,16 → 8×8 cells × 6 anchors
    a = ssd_anchors(SsdAnchorOptions(128, 128, 4, (8, 16, 16, 16), 0.1484375, 0.75, fixed_anchor_size=True))
    assert a.shape == (896, 4)
    assert a[0].tolist() == a[1].tolist() == [1 / 32, 1 / 32, 1.0, 1.0]  # (yc, xc, h, w) of cell (0, 0)
    assert a[2].tolist() == [1 / 32, 3 / 32, 1.0, 1.0]  # cell (0, 1)
    assert a[512].tolist() == a[517].tolist() == [1 / 16, 1 / 16, 1.0, 1.0]
    assert a[-1].tolist() == [15 / 16, 15 / 16, 1.0, 1.0]
    # not fixed: sizes from the scales (layer 0 of 2: scale 0.1, interpolated sqrt(0.1 * 0.9) for ratio 1)
    b = ssd_anchors(SsdAnchorOptions(64, 64, 2, (32, 64), 0.1, 0.9))
    assert b.shape == (2 * 2 * 2 + 1 * 1 * 2, 4)
    assert b[0, 2:].tolist() == pytest.approx([0.1, 0.1]) and b[1, 2:].tolist() == pytest.approx([0.3, 0.3])
    with pytest.raises(ConfigError, match=r"policy\.anchors\.strides: expected num_layers \(3\) strides"):
        ssd_anchors(SsdAnchorOptions(64, 64, 3, (32, 64), 0.1, 0.9))


DEVICE_TOML = """
[loop]
rate_hz = 30
[model]
package = "m.onnx"
[sensors.camera]
shape = [64, 64, 3]
[policy]
kind = "detection"
format = "yolo"
labels = ["red", "green", "blue"]
max_detections = 4
trigger_classes = ["red"]
roi = [32, 0, 64, 64]
trigger_frames = 2
"""


def test_device_toml_detection_policy(yolo_models, tmp_path) -> None:
    cfg = parse_config(tomllib.loads(DEVICE_TOML), tmp_path / "device.toml")
    assert cfg.policy.kind == "detection" and cfg.policy.actions == ("go", "brake")
    policy = policy_from_config(cfg.policy.detection, cfg.policy.actions, (64, 64))
    loop = Loop(
        load_model(yolo_models["rows"], threads=1), policy, [SensorSlot("camera", FRAME)], clock=LockstepClock()
    )
    with loop:
        labels = [_step(loop, _frame(1, 2, 0)).label for _ in range(3)]
    assert labels == ["go", "brake", "brake"]
    bad = DEVICE_TOML.replace('format = "yolo"', 'format = "ssd"')
    with pytest.raises(ConfigError, match=r"policy\.anchors: required, but missing"):
        parse_config(tomllib.loads(bad), tmp_path / "device.toml")
    bad = DEVICE_TOML.replace("trigger_frames = 2", "trigger_frames = 0")
    with pytest.raises(ConfigError, match=r"policy\.trigger_frames"):
        parse_config(tomllib.loads(bad), tmp_path / "device.toml")


@pytest.mark.skipif(kernels.BACKEND != "native", reason="the NumPy twins allocate temporaries by nature")
def test_detection_frames_allocate_nothing(yolo_models) -> None:
    rule = RoiRule(classes=("red",), roi=(32.0, 0.0, 64.0, 64.0), frames=2)
    loop = _loop(yolo_models["columns"], rule)
    frames = [_frame(1, 2, 0), _frame(2, 3, 1), np.zeros(FRAME, np.uint8), _frame(0, 0, 2)]
    i = [0]

    def step() -> None:
        i[0] += 1
        _step(loop, frames[i[0] % len(frames)])

    with loop:
        net1, peak1, net2, peak2 = _measure(step)
        assert loop.ctx.fallbacks == 0 and loop.model_errors == 0
    _check(net1, peak1, net2, peak2)


def test_zmq_decision_message_carries_the_detections(yolo_models) -> None:
    import msgpack

    from edge.loop.sinks import decision_message

    loop = _loop(yolo_models["rows"], RoiRule())
    with loop:
        d = _step(loop, _frame(row=2, col=1, colour=1))
    msg = msgpack.unpackb(decision_message(d))
    assert msg["label"] == "brake"
    assert msg["detections"] == [{"class": 1, "label": "green", "score": 1.0, "box": [16.0, 32.0, 32.0, 48.0]}]
