"""`edge run` as a real subprocess on a video source: a short run with a generated model package plays the whole
video once (as fast as the loop reads), stops by itself at its end, and records every frame and decision with
``--record``; configuration errors of the sources name the key or the file."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from io_media import FRAMES, H, W, device_toml, index_of
from mcap.reader import make_reader

from edge.cli import main
from edge.errors import ConfigError
from edge.loop.config import load_config


def edge_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_edge_run_plays_a_video_to_its_end_and_records_it(tmp_path: Path, videos, model_package: Path) -> None:
    cfg = tmp_path / "device.toml"
    sensor = f'source = "video"\npath = "{videos["ffv1_mkv"]}"\nrate = "as_fast_as_loop"\nstale_ms = 200'
    extra = '\n[record]\npath = "ignored.mcap"\nqueue_frames = 256\n'  # --record names the file; no drops
    cfg.write_text(device_toml(model_package, sensor, rate_hz=200, extra=extra))
    rec = tmp_path / "out.mcap"
    proc = edge_run(str(cfg), "--record", str(rec))
    assert proc.returncode == 0, proc.stderr
    assert "edge run: stopped cleanly on end of input after" in proc.stdout
    waiting = f"edge run: waiting for primary sensor 'camera' on video {videos['ffv1_mkv']} (as_fast_as_loop rate)\n"
    assert proc.stdout.count(waiting) == 1 and proc.stdout.index(waiting) < proc.stdout.index("stopped cleanly")
    assert f"edge run: video source 'camera' ({videos['ffv1_mkv']}): {FRAMES} delivered, 0 dropped, 0 errors" in (
        proc.stdout
    )
    images, decisions = [], []
    with rec.open("rb") as f:
        for _s, channel, m in make_reader(f).iter_messages():
            msg = json.loads(m.data)
            if channel.topic == "/edge/camera/image":
                raw = np.frombuffer(base64.b64decode(msg["data"]), np.uint8).reshape(H, W, 3)
                images.append(index_of(raw))
            elif channel.topic == "/edge/decision":
                decisions.append(msg)
    assert images == list(range(FRAMES))  # every frame of the video, once, in order
    assert not (tmp_path / "ignored.mcap").exists()
    frames_done = int(proc.stdout.split("after ")[1].split(" frames")[0])
    assert len(decisions) == frames_done >= FRAMES
    from_model = [d for d in decisions if not d["fallback"]]
    assert len(from_model) >= FRAMES - 2 and all(d["label"] == f"a{d['action']}" for d in from_model)


def test_record_table_and_source_keys_are_validated(tmp_path: Path, model_package: Path) -> None:
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(model_package, 'source = "video"'))
    with pytest.raises(ConfigError, match=r"sensors.camera.path: required, but missing; expected a file path"):
        load_config(cfg)
    cfg.write_text(device_toml(model_package, 'source = "video"\npath = "clip.mp4"\nrate = "turbo"'))
    with pytest.raises(ConfigError, match=r"sensors.camera.rate: expected one of \['native', 'as_fast_as_loop'\]"):
        load_config(cfg)
    cfg.write_text(device_toml(model_package, 'source = "camera"\npath = "/dev/video0"\nresolution = [640]'))
    with pytest.raises(ConfigError, match=r"sensors.camera.resolution: expected a list of 2 integers"):
        load_config(cfg)
    cfg.write_text(device_toml(model_package, 'source = "v4l2"\npath = "/dev/video0"\nfps = 30', extra="\n[record]\n"))
    with pytest.raises(ConfigError, match=r"record.path: required"):
        load_config(cfg)
    extra = '\n[record]\npath = "r.mcap"\nmax_bytes = 2000000\nkeep = 3\n'
    cfg.write_text(device_toml(model_package, 'source = "mcap"\npath = "r.mcap"\nloop = true', extra=extra))
    c = load_config(cfg)
    assert c.record.path == tmp_path / "r.mcap" and (c.record.max_bytes, c.record.keep) == (2_000_000, 3)
    assert c.sensors[0].options["path"] == tmp_path / "r.mcap" and c.sensors[0].options["loop"] is True


def test_edge_run_names_a_missing_video_and_a_missing_camera(tmp_path: Path, model_package: Path, capsys) -> None:
    cfg = tmp_path / "device.toml"
    cfg.write_text(device_toml(model_package, 'source = "video"\npath = "nope.mp4"'))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "video source 'camera'" in err and "nope.mp4" in err and "not found" in err
    cfg.write_text(device_toml(model_package, 'source = "camera"\npath = "/dev/video97"\nfps = 30'))
    assert main(["run", str(cfg)]) == 3  # a SensorFault: could not run here (README "Exit codes")
    assert "camera source 'camera' (/dev/video97): expected a V4L2 camera device" in capsys.readouterr().err
