"""`edge run device.toml` as a real subprocess: frames in over a ZeroMQ PUB socket, decisions out on a SUB socket,
SIGTERM → exit status 0 and a clean stop message. `edge service unit` prints a systemd unit."""

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

from edge.cli import main
from edge.loop.zmq_source import encode_frame

DEVICE_TOML = """
[device]
id = "test-robot"

[loop]
rate_hz = 50

[model]
package = "{package}"
threads = 1

[sensors.camera]
source = "zmq"
endpoint = "{camera}"
shape = [48, 64, 3]
stale_ms = 500

[policy]
kind = "classification"
actions = {actions}

[fallback]
hold_frames = 2
safe_action = "a0"

[sinks]
zmq_endpoint = "{decisions}"

[watchdog]
timeout_ms = 1000
"""


@pytest.fixture
def device(tmp_path: Path, loop_models, zmq_ctx):
    """A device.toml, the camera PUB socket the service subscribes to, and the running `edge run` process."""
    camera, decisions = f"ipc://{tmp_path}/camera.ipc", f"ipc://{tmp_path}/decisions.ipc"
    actions = "[" + ", ".join(f'"a{i}"' for i in range(10)) + "]"
    cfg = tmp_path / "device.toml"
    text = DEVICE_TOML.format(package=loop_models["v1_pkg"], camera=camera, decisions=decisions, actions=actions)
    cfg.write_text(text)
    pub = zmq_ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(camera)
    sub = zmq_ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(decisions)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc, pub, sub
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
        pub.close(0)
        sub.close(0)


def test_edge_run_serves_decisions_until_sigterm(device, rng) -> None:
    proc, pub, sub = device
    frames = rng.integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
    got: list[dict] = []
    deadline = time.monotonic() + 60
    i = 0
    while len([d for d in got if not d["fallback"]]) < 5:  # decisions from the model, on frames we sent
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no model decisions in time; got {got[-3:]}"
        pub.send_multipart(encode_frame("camera", frames[i % 8], time.monotonic_ns()))
        i += 1
        while sub.poll(5):
            got.append(msgpack.unpackb(sub.recv()))
    good = [d for d in got if not d["fallback"]]
    assert all(d["health"] in ("OK", "DEGRADED") and d["source"] == "loop" for d in good)
    assert all(d["label"] == f"a{d['action']}" and 0 < d["confidence"] <= 1 for d in good)
    seqs = [d["seq"] for d in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "edge run: stopped cleanly on SIGTERM after" in out
    assert "edge run: cnn@v1.0 at 50 Hz" in out


def test_edge_run_with_a_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "device.toml"
    cfg.write_text("[loop]\nrate_hz = -3\n")
    assert main(["run", str(cfg)]) == 2
    assert "loop.rate_hz: expected a number > 0, got -3" in capsys.readouterr().err


def test_service_unit_prints_a_systemd_unit(tmp_path: Path, capsys) -> None:
    assert main(["service", "unit", "--config", str(tmp_path / "device.toml"), "--user", "robot"]) == 0
    unit = capsys.readouterr().out
    lines = unit.splitlines()
    assert lines[0] == "[Unit]" and "[Service]" in lines and "[Install]" in lines
    assert "Type=simple" in lines and "Restart=on-failure" in lines and "User=robot" in lines
    assert f"ExecStart={sys.executable} -m edge run {tmp_path / 'device.toml'}" in lines
    assert "WantedBy=multi-user.target" in lines


def test_edge_run_streams_telemetry_windows_to_a_collector(tmp_path: Path, loop_models, zmq_ctx, rng) -> None:
    """The loop and telemetry together: `edge run` with a [telemetry] table sends hello + window records to a real
    ROUTER collector; the windows count the frames the loop ran; SIGTERM still stops it cleanly."""
    from fake_collector import CollectorPeer, wait_for

    camera = f"ipc://{tmp_path}/camera.ipc"
    actions = "[" + ", ".join(f'"a{i}"' for i in range(10)) + "]"
    with CollectorPeer() as collector:
        text = DEVICE_TOML.format(
            package=loop_models["v1_pkg"], camera=camera, decisions=f"ipc://{tmp_path}/d.ipc", actions=actions
        )
        text += f'\n[telemetry]\nendpoint = "{collector.endpoint}"\nwindow_s = 0.2\nspool_dir = "spool"\n'
        cfg = tmp_path / "device.toml"
        cfg.write_text(text)
        pub = zmq_ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.bind(camera)
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            frames = rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)

            def windows_with_model_frames() -> bool:
                assert proc.poll() is None, proc.communicate()[1]
                pub.send_multipart(encode_frame("camera", frames[0], time.monotonic_ns()))
                wins = collector.of_kind("window")
                return len(wins) >= 2 and sum(w.body["counters"]["frames"] for w in wins) > 0

            wait_for(windows_with_model_frames, timeout_s=60, what="window records from edge run")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
            pub.close(0)
        assert proc.returncode == 0, err
        assert "stopped cleanly on SIGTERM" in out
        assert collector.hellos and collector.hellos[0].device == "test-robot"
        assert not collector.malformed and collector.duplicates == 0
        assert all(w.device == "test-robot" for w in collector.of_kind("window"))
        assert (tmp_path / "spool").is_dir()
