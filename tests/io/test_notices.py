"""``edge run`` says which sensor it waits on and where, and rate-limits its fallback warnings (deterministic: the
rate limit runs on the decisions' loop time, driven here by hand and by a lockstep loop)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from io_media import H, W, device_toml, pattern

from edge.device.notices import FallbackLog, sensor_origin, waiting_lines
from edge.device.service import build_service
from edge.errors import ConfigError
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config
from edge.loop.decision import Decision
from edge.loop.sensors import SensorSlot

PERIOD_NS = 50_000_000  # 20 Hz


def decide(sink: FallbackLog, d: Decision, seq: int, *, fallback: bool) -> None:
    d.seq, d.tick_ns, d.fallback = seq, 1_000_000_000 + seq * PERIOD_NS, fallback
    d.health, d.label = (2, "stop") if fallback else (0, "go")
    sink.deliver(d)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "edge.loop"]


def test_fallback_warnings_at_most_every_interval_and_the_first_frame_once(caplog) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    sink = FallbackLog(10, slot, "zmq connect tcp://127.0.0.1:5555", interval_s=5.0)
    d = Decision()
    caplog.set_level(logging.INFO, logger="edge.loop")
    for seq in range(240):  # 12 s of fallbacks with no frame: warnings at 0 s, 5 s, 10 s
        decide(sink, d, seq, fallback=True)
    warned = messages(caplog, logging.WARNING)
    assert len(warned) == 3 and sink.warnings == 3 and sink.folded == 39
    assert warned[0] == (
        "still waiting for sensor 'camera' on zmq connect tcp://127.0.0.1:5555: decision 0 is a SAFE_STOP fallback "
        "(fallback warnings at most every 5 s)"
    )
    assert warned[1] == (
        "still waiting for sensor 'camera' on zmq connect tcp://127.0.0.1:5555: decision 100 is a SAFE_STOP "
        "fallback; 99 more fallbacks since the last warning"
    )
    caplog.clear()
    slot.push(pattern(0), 0)
    for seq in range(240, 260):
        decide(sink, d, seq, fallback=False)
    info = messages(caplog, logging.INFO)
    assert info[0] == "first frame of sensor 'camera' after 12000 ms (zmq connect tcp://127.0.0.1:5555)"
    assert info[1:] == ["decision 240: go OK conf nan", "decision 250: go OK conf nan"]
    caplog.clear()
    for seq in range(260, 321):  # fallbacks after the frame: the next warning 5 s after the last (seq 200)
        decide(sink, d, seq, fallback=True)
    sink.close()
    assert messages(caplog, logging.WARNING) == [
        "decision 300: SAFE_STOP fallback stop (flags 0x0); 79 more fallbacks since the last warning",
        "20 more fallbacks since the last warning",
    ]


def test_bad_settings_are_config_errors() -> None:
    slot = SensorSlot("camera", (H, W, 3))
    with pytest.raises(ConfigError, match=r"sinks\.log_every: expected an integer >= 0"):
        FallbackLog(-1, slot, "x")
    with pytest.raises(ConfigError, match="expected > 0 s"):
        FallbackLog(1, slot, "x", interval_s=0)


def test_a_loop_waiting_on_its_endpoint_says_so_once_per_interval(tmp_path: Path, model_package: Path, caplog) -> None:
    cfg_path = tmp_path / "device.toml"
    sensor = 'source = "zmq"\nendpoint = "tcp://127.0.0.1:9"\nstale_ms = 50'  # nothing ever publishes there
    extra = '\n[sensors.speed]\nsource = "push"\nshape = [1]\ndtype = "float32"\n'
    cfg_path.write_text(device_toml(model_package, sensor, extra=extra))
    cfg = load_config(cfg_path)
    assert waiting_lines(cfg) == [
        "edge run: waiting for primary sensor 'camera' on zmq connect tcp://127.0.0.1:9",
        "edge run: waiting for sensor 'speed' on pushes from the Python API (SensorSlot.push)",
    ]
    caplog.set_level(logging.INFO, logger="edge.loop")
    clock = LockstepClock(1_000_000_000)
    service = build_service(cfg, clock=clock)
    try:
        for _ in range(1100):  # 11 s at 100 Hz, every decision a fallback
            assert service.loop.step().fallback
    finally:
        service.close()
    warned = [m for m in messages(caplog, logging.WARNING) if "fallback" in m]
    assert len(warned) == 4, warned  # at 0, 5 and 10 s, and the count folded in since then at close
    assert all("still waiting for sensor 'camera' on zmq connect tcp://127.0.0.1:9" in m for m in warned[:3])
    assert warned[3] == "99 more fallbacks since the last warning"


def test_sensor_origins_name_the_file_device_or_topic(tmp_path: Path, model_package: Path) -> None:
    cfg_path = tmp_path / "device.toml"
    bodies = {
        'source = "video"\npath = "clip.mp4"\nloop = true': f"video {tmp_path / 'clip.mp4'} (native rate, looping)",
        'source = "camera"\npath = "/dev/video0"': "camera /dev/video0",
        'source = "mcap"\npath = "r.mcap"': f"MCAP recording {tmp_path / 'r.mcap'}",
        'source = "ros2"\ntopic = "/camera/image_raw"\ndomain_id = 7': (
            "ROS 2 topic /camera/image_raw (image, DDS domain 7)"
        ),
        'source = "zmq"\nendpoint = "tcp://*:5555"\nbind = true': "zmq bind tcp://*:5555",
    }
    for body, origin in bodies.items():
        cfg_path.write_text(device_toml(model_package, body))
        assert sensor_origin(load_config(cfg_path).sensors[0]) == origin
