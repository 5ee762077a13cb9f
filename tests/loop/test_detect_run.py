"""`edge run device.toml` (a real subprocess) with the real BlazeFace detector: portrait frames in over ZeroMQ,
a "brake" decision with the face's detection out on the decision socket; a blank frame releases it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from test_detect_blazeface import MODEL, pytestmark  # noqa: F401  (skips without the mediapipe wheel)

from edge.loop.zmq_source import encode_frame

DEVICE_TOML = """
[loop]
rate_hz = 20

[model]
package = "{model}"
threads = 1
mean = 0.5
std = 0.5

[sensors.camera]
source = "zmq"
endpoint = "{camera}"
shape = [600, 512, 3]
stale_ms = 2000

[policy]
kind = "detection"
format = "ssd"
labels = ["face"]
boxes_output = "regressors"
scores_output = "classificators"
box_order = "xywh"
box_scales = [128, 128, 128, 128]
exp_size = false
trigger_classes = ["face"]
roi = [0, 0, 512, 300]
min_inside = 0.3
trigger_frames = 3

[policy.anchors]
input_size_height = 128
input_size_width = 128
num_layers = 4
strides = [8, 16, 16, 16]
min_scale = 0.1484375
max_scale = 0.75
fixed_anchor_size = true

[fallback]
safe_action = "brake"

[sinks]
zmq_endpoint = "{decisions}"
"""


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).copy()


def test_edge_run_brakes_on_a_face_from_a_real_detector(tmp_path: Path, zmq_ctx, portrait) -> None:
    camera, decisions = f"ipc://{tmp_path}/camera.ipc", f"ipc://{tmp_path}/decisions.ipc"
    cfg = tmp_path / "device.toml"
    cfg.write_text(DEVICE_TOML.format(model=MODEL, camera=camera, decisions=decisions))
    pub = zmq_ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(camera)
    sub = zmq_ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(decisions)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    blank = np.full_like(portrait, 128)
    try:
        got: list[dict] = []

        def until(pred, frame: np.ndarray, what: str) -> dict:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, f"no {what} in time; got {got[-3:]}"
                pub.send_multipart(encode_frame("camera", frame, time.monotonic_ns()))
                while sub.poll(20):
                    d = msgpack.unpackb(sub.recv())
                    got.append(d)
                    if not d["fallback"] and pred(d):
                        return d

        brake = until(lambda d: d["label"] == "brake", portrait, "brake decision")
        (face,) = brake["detections"]
        x1, y1, x2, y2 = face["box"]
        assert face["label"] == "face" and face["score"] > 0.8 and 100 < x1 < x2 < 420 and 60 < y1 < y2 < 420
        go = until(lambda d: d["label"] == "go", blank, "release on a blank frame")
        assert go["detections"] == []
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        pub.close(0)
        sub.close(0)
