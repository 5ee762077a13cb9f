"""The shipped examples work out of the box: ``edge run examples/device.toml`` (a real subprocess) runs the shipped
lane model from the shipped video and publishes decisions that the example subscriber reads; recorded with
``--record``, the run replays through ``edge replay`` to identical decisions with the same model and to a report
with another; the video stays small and matches its regeneration script's format; ``examples/robot.toml`` is valid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest

from edge.cli import main
from edge.loop.config import load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
MODELS = REPO / "sim" / "models"


def test_the_example_video_is_small_and_at_the_models_input_size() -> None:
    video = EXAMPLES / "lane.mp4"
    assert video.stat().st_size < 1_000_000
    with av.open(str(video)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == 200 and frames[0].shape == (66, 200, 3)
    labels = (EXAMPLES / "lane_steering.csv").read_text().splitlines()
    assert labels[0] == "frame,t_s,expert_steering_rad" and len(labels) == 201


@pytest.fixture
def example_run(tmp_path: Path):
    """``edge run examples/device.toml --record`` as a subprocess; yields (process, recording); stops it with
    SIGTERM (and kills it if it does not stop within 30 s)."""
    rec = tmp_path / "example.mcap"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", str(EXAMPLES / "device.toml"), "--record", str(rec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc, rec
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_edge_run_examples_device_toml_publishes_decisions_that_replay(example_run, tmp_path: Path, capsys) -> None:
    proc, rec = example_run
    sub = subprocess.run(
        [sys.executable, str(EXAMPLES / "decision_subscriber.py"), "--count", "60", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert sub.returncode == 0, sub.stderr + err
    assert proc.returncode == 0, err
    assert "edge run: lane-keeper@1.0.0 at 20 Hz, sensors ['camera']" in out and "stopped cleanly on SIGTERM" in out
    assert (
        f"edge run: waiting for primary sensor 'camera' on video {EXAMPLES / 'lane.mp4'} (native rate, looping)" in out
    )
    lines = sub.stdout.splitlines()
    assert len(lines) == 60 and all(line.startswith("decision ") for line in lines)
    steering = [float(line.split()[2]) for line in lines if line.endswith(" OK")]
    assert len(steering) >= 40, lines  # the first frames may wait for the video (fallback)
    assert all(-0.55 <= s <= 0.55 for s in steering) and len(set(steering)) > 10

    same = tmp_path / "same"
    assert main(["replay", str(rec), "--package", str(MODELS / "lane-keeper.tgz"), "--report", str(same)]) == 0
    summary = json.loads((same / "summary.json").read_text())
    assert summary["frames"] >= 60 and summary["agreement"] == 1.0 and summary["max_command_diff"] == 0.0
    other = tmp_path / "other"
    assert main(["replay", str(rec), "--package", str(MODELS / "lane-keeper-next.tgz"), "--report", str(other)]) == 0
    summary = json.loads((other / "summary.json").read_text())
    assert summary["replayed_model"].startswith("lane-keeper") and summary["replayed_model"] != "lane-keeper@1.0.0"
    assert summary["max_command_diff"] > 0 and summary["rms_command_diff"] > 0
    assert (other / "frames.csv").read_text().count("\n") == summary["frames"] + 1
    printed = capsys.readouterr().out
    assert "agreement 100.00 %" in printed and "command difference: max" in printed


def test_the_robot_example_is_valid_and_runs_the_same_model() -> None:
    robot, device = load_config(EXAMPLES / "robot.toml"), load_config(EXAMPLES / "device.toml")
    assert robot.model.package == device.model.package and robot.model.package.exists()
    assert robot.ros2_sink is not None and robot.ros2_sink["cmd_topic"] == "/cmd_vel"
    assert robot.telemetry is not None and robot.telemetry["endpoint"].startswith("tcp://")
    assert [s.options["path"] for s in robot.sensors] == [EXAMPLES / "lane.mp4"]
