"""device.toml validation: a complete sample parses; every bad value is refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.device.service import build_service
from edge.errors import ConfigError
from edge.loop.config import load_config

SAMPLE = """
[device]
id = "robot-7"

[loop]
rate_hz = 50
deadline_ms = 15
cpus = [0]

[loop.budgets_ms]
infer = 8

[model]
package = "models/cnn.tgz"
threads = 1

[sensors.camera]
source = "zmq"
endpoint = "tcp://127.0.0.1:5550"
shape = [480, 640, 3]
channel_order = "BGR"
stale_ms = 100
frozen_frames = 30

[sensors.speed]
source = "push"
shape = [1]
dtype = "float32"
min = -1.0
max = 40.0

[sync]
mode = "approximate"
max_skew_ms = 20

[policy]
kind = "classification"
actions = ["stop", "slow", "go"]

[fallback]
hold_frames = 5
recover_frames = 10
safe_action = "stop"

[sinks]
zmq_endpoint = "tcp://127.0.0.1:5551"
log_every = 100

[watchdog]
timeout_ms = 200
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "device.toml"
    p.write_text(text)
    return p


def test_sample_parses_into_frozen_dataclasses(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, SAMPLE))
    assert cfg.device_id == "robot-7" and cfg.loop.rate_hz == 50 and cfg.loop.deadline_ms == 15
    assert cfg.loop.cpus == (0,) and cfg.loop.fifo_priority == 0 and cfg.loop.budgets_ms == {"infer": 8}
    assert cfg.model.package == tmp_path / "models" / "cnn.tgz" and cfg.model.threads == 1
    cam, speed = cfg.sensors
    assert (cam.name, cam.source, cam.shape, cam.channel_order, cam.stale_ms, cam.primary) == (
        "camera", "zmq", (480, 640, 3), "BGR", 100, True
    )  # fmt: skip
    assert (speed.dtype, speed.lo, speed.hi, speed.primary) == ("float32", -1.0, 40.0, False)
    assert cfg.sync_mode == "approximate" and cfg.max_skew_ms == 20
    assert cfg.policy.actions == ("stop", "slow", "go") and cfg.safe_action == "stop"
    assert (cfg.hold_frames, cfg.recover_frames, cfg.watchdog_ms) == (5, 10, 200)
    assert cfg.telemetry is None and cfg.shadow is None
    with pytest.raises(AttributeError):
        cfg.loop.rate_hz = 10  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("stale_ms = 100", "stale_ms = 'x'", "sensors.camera.stale_ms: expected a number > 0, got 'x'"),
        ("stale_ms = 100", "stale_ms = -1", "sensors.camera.stale_ms: expected a number > 0, got -1"),
        ("rate_hz = 50", "rate_hz = 0", "loop.rate_hz: expected a number > 0, got 0"),
        ("rate_hz = 50", "", "loop.rate_hz: required, but missing"),
        (
            'kind = "classification"',
            'kind = "vibes"',
            "policy.kind: expected one of ['classification', 'regression', 'detection']",
        ),
        ("hold_frames = 5", "hold_frames = 1.5", "fallback.hold_frames: expected an integer >= 0, got 1.5"),
        ("shape = [480, 640, 3]", "shape = [480, 0, 3]", "sensors.camera.shape: expected positive dimensions"),
        ("shape = [480, 640, 3]", "shape = 'big'", "sensors.camera.shape: expected a non-empty list of integers"),
        ('source = "zmq"', 'source = "serial"', "sensors.camera.source: expected one of ['zmq', 'push', "),
        ("frozen_frames = 30", "frozen_framez = 30", "sensors.camera.frozen_framez: unknown key; expected one of ["),
        ("max_skew_ms = 20", "", "sync.max_skew_ms: required, but missing"),
        ("cpus = [0]", "cpus = [true]", "loop.cpus: expected a non-empty list of integers, got [True]"),
        ("[watchdog]", "[watchdog]\nendpoint = 5", "watchdog.endpoint: expected a string, got 5"),
        ("infer = 8", "infer = 0", "loop.budgets_ms.infer: expected a number > 0, got 0"),
        ("infer = 8", "render = 8", "loop.budgets_ms.render: unknown key; expected one of ['sensor', 'preprocess',"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SAMPLE
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, SAMPLE.replace(old, new, 1)))
    assert message in str(err.value)


def test_unreadable_and_invalid_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_config(_write(tmp_path, "[loop\nrate_hz = 1"))


def test_a_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, SAMPLE.replace('source = "zmq"', 'source = "push"')))
    with pytest.raises(ConfigError, match=r"model\.package: expected a model package or model file, got .*cnn\.tgz"):
        build_service(cfg)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('actions = ["stop", "slow", "go"]', "", "policy.actions: required, but missing; expected a non-empty list"),
        ('endpoint = "tcp://127.0.0.1:5550"', "", "sensors.camera.endpoint: required, but missing; expected a string"),
        ("cpus = [0]", "fifo_priority = 100", "loop.fifo_priority: expected an integer >= 0 and <= 99, got 100"),
        ('[device]\nid = "robot-7"', "telemetry = 3", "telemetry: expected a table, got 3"),
    ],
)
def test_errors_name_the_file_then_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SAMPLE
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, SAMPLE.replace(old, new, 1)))
    assert str(err.value).startswith(f"device.toml: {message}")
