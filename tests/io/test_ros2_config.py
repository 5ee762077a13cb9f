"""``source = "ros2"`` and ``[sinks.ros2]`` in device.toml: what parses, what is refused and how the error reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.loop.config import Ros2SensorConfig, load_config

REPO = Path(__file__).resolve().parents[2]
BASE = """
[loop]
rate_hz = 20

[model]
package = "{package}"

[sensors.camera]
{camera}

[sensors.imu]
source = "ros2"
topic = "/imu/data"
type = "imu"
shape = [10]
dtype = "float64"

[policy]
kind = "regression"

{sinks}
"""
CAMERA = 'source = "ros2"\ntopic = "/camera/image_raw"\nshape = [66, 200, 3]'


def _load(tmp_path: Path, camera: str = CAMERA, sinks: str = "") -> object:
    p = tmp_path / "device.toml"
    p.write_text(BASE.format(package=REPO / "sim" / "models" / "lane-keeper.tgz", camera=camera, sinks=sinks))
    return load_config(p)


def test_ros2_sensors_and_sink_parse(tmp_path: Path) -> None:
    cfg = _load(tmp_path, CAMERA + "\ndomain_id = 7", "[sinks.ros2]\ncmd_topic = '/robot/cmd_vel'\nspeed_index = 0")
    camera, imu = cfg.sensors
    assert camera.ros2 == Ros2SensorConfig(topic="/camera/image_raw", type="image", domain_id=7)
    assert imu.ros2 == Ros2SensorConfig(topic="/imu/data", type="imu", domain_id=None)
    assert cfg.ros2_sink is not None and cfg.ros2_sink["cmd_topic"] == "/robot/cmd_vel"
    assert cfg.ros2_sink["diagnostics_topic"] == "/diagnostics" and cfg.ros2_sink["speed_index"] == 0


def test_without_ros2_nothing_changes(tmp_path: Path) -> None:
    cfg = _load(tmp_path, 'source = "push"\nshape = [66, 200, 3]')
    assert cfg.sensors[0].ros2 is None and cfg.ros2_sink is None


@pytest.mark.parametrize(
    ("camera", "sinks", "message"),
    [
        ('source = "ros2"\nshape = [66, 200, 3]', "", "sensors.camera.topic: required, but missing; expected a ROS 2"),
        (CAMERA + '\ntype = "pointcloud"', "", "sensors.camera.type: expected one of ['image', 'compressed_image'"),
        (CAMERA + "\ndomain_id = 300", "", "sensors.camera.domain_id: expected an integer"),
        ('source = "push"\ntopic = "/x"\nshape = [2]', "", "sensors.camera.topic: expected only with source 'ros2'"),
        (CAMERA, "[sinks.ros2]\ncmd_topik = '/x'", "sinks.ros2.cmd_topik: unknown key"),
        (CAMERA, "[sinks.ros2]\ndiagnostics_hz = 0", "sinks.ros2.diagnostics_hz: expected a number > 0"),
    ],
)
def test_bad_ros2_settings_name_the_key(tmp_path: Path, camera: str, sinks: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, camera, sinks)
    assert message in str(err.value)


def test_without_cyclonedds_the_service_says_what_to_install(tmp_path: Path) -> None:
    _load(tmp_path)  # writes device.toml
    code = (
        "import sys; sys.modules['cyclonedds'] = None\n"  # as if the package were not installed
        "from edge.device.service import build_service\n"
        "from edge.loop.config import load_config\n"
        "from edge.errors import ConfigError\n"
        f"cfg = load_config({str(tmp_path / 'device.toml')!r})\n"
        "try:\n    build_service(cfg)\nexcept ConfigError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "ROS 2 sources and sinks need the cyclonedds package" in out.stdout, out.stderr
    assert "pip install 'edge[ros2]'" in out.stdout


def test_the_readme_ros2_sample_parses(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### ROS 2") :]
    sample = section[section.index("```toml") + len("```toml") : section.index("```\n", section.index("```toml") + 7)]
    p = tmp_path / "device.toml"
    model = REPO / "sim" / "models" / "lane-keeper.tgz"
    p.write_text(f'[loop]\nrate_hz = 20\n[model]\npackage = "{model}"\n[policy]\nkind = "regression"\n{sample}')
    cfg = load_config(p)
    assert [s.ros2.type for s in cfg.sensors] == ["image", "imu"]
    assert cfg.ros2_sink is not None and cfg.ros2_sink["cmd_topic"] == "/cmd_vel"
