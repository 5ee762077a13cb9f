"""Detections as drift features: per-class detection counts and best scores sketched by the real telemetry tap
(its publisher running, spooling to tmp_path) from a detection loop; the profile validates the new source kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_detect import FRAME, _frame, _step, colour_grid_yolo

from edge.drift.profile import profile_from_json
from edge.errors import ConfigError
from edge.loop.clock import LockstepClock
from edge.loop.detect import DetectionPolicy, RoiRule, YoloDecoder
from edge.loop.runner import Loop
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Timing
from edge.models import load_model
from edge.telemetry import TelemetryTap
from edge.telemetry.config import parse_telemetry

PROFILE = {
    "schema": 1,
    "features": [
        {"name": "red_count", "source": {"kind": "detection_count", "class": 0}, "edges": [0.5, 1.5, 2.5]},
        {"name": "red_score", "source": {"kind": "detection_score", "class": 0}, "edges": [0.25, 0.5, 0.75, 1.0]},
        {"name": "green_score", "source": {"kind": "detection_score", "class": 1}, "edges": [0.25, 0.5, 0.75, 1.0]},
    ],
}


def test_per_class_counts_and_score_histograms_are_sketched(tmp_path: Path) -> None:
    settings = parse_telemetry(
        {"spool_dir": "spool", "endpoint": "tcp://127.0.0.1:9", "window_s": 60.0, "fsync": "never"}, tmp_path
    )
    tap = TelemetryTap(settings, device_id="dev-1", profile=profile_from_json(PROFILE))
    policy = DetectionPolicy(YoloDecoder(), FRAME[:2], labels=("red", "green", "blue"), rule=RoiRule())
    model = load_model(colour_grid_yolo(tmp_path / "m.onnx", layout="rows"), threads=1)
    loop = Loop(
        model, policy, [SensorSlot("camera", FRAME)], clock=LockstepClock(), timing=Timing(rate_hz=100), taps=[tap]
    )
    two_red = np.maximum(_frame(0, 0, 0), _frame(3, 3, 0))
    frames = [_frame(1, 2, 0)] * 4 + [two_red] * 2 + [np.zeros(FRAME, np.uint8)] * 3
    try:
        with loop:
            for f in frames:
                _step(loop, f)
            sketch = tap._ring.current.features  # the open window (60 s): every frame above is in it
            counts = {name: sketch.counts[i].tolist() for i, name in enumerate(sketch.names)}
    finally:
        tap.close(timeout_s=0.2)
    # sketch layout: underflow, bins, overflow, NaN
    assert counts["red_count"][:5] == [3, 4, 2, 0, 0]  # 0 red boxes ×3, 1 ×4, 2 ×2 (rows padded to the widest)
    assert counts["red_score"] == [0, 0, 0, 0, 6, 3]  # score 1.0 (≥ the last edge) ×6, none (NaN) ×3
    assert counts["green_score"] == [0, 0, 0, 0, 0, 9]


def test_a_detection_source_without_a_class_is_refused() -> None:
    bad = {**PROFILE, "features": [{"name": "x", "source": {"kind": "detection_score"}, "edges": [0.0, 1.0]}]}
    with pytest.raises(ConfigError, match=r"features\[0\]\.source: expected an integer class index >= 0"):
        profile_from_json(bad)
