"""tap_from_config: the [telemetry] table's errors name telemetry.<key> with what was expected and what arrived;
device and boot ids; `edge keys gen`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import ConfigError
from edge.telemetry import parse_telemetry, tap_from_config
from edge.telemetry.tap import default_device_id


@pytest.mark.parametrize(
    "table,message",
    [
        ({}, "telemetry.endpoint: required, but missing; expected tcp://host:port or ipc://path"),
        ({"endpoint": 7}, "telemetry.endpoint: expected tcp://host:port or ipc://path, got 7"),
        ({"endpoint": "http://x"}, "telemetry.endpoint: expected tcp://host:port or ipc://path, got 'http://x'"),
        ({"endpoint": "tcp://h:1", "window_s": 0}, "telemetry.window_s: expected a number of seconds > 0, got 0"),
        ({"endpoint": "tcp://h:1", "window_s": "1s"}, "telemetry.window_s: expected a number of seconds > 0, got '1s'"),
        (
            {"endpoint": "tcp://h:1", "fsync": "often"},
            "telemetry.fsync: expected one of ['always', 'every_n', 'interval', 'never'], got 'often'",
        ),
        ({"endpoint": "tcp://h:1", "queue_size": 1}, "telemetry.queue_size: expected an integer >= 2, got 1"),
        ({"endpoint": "tcp://h:1", "batch_max": 65}, "telemetry.batch_max: expected an integer >= 1 and <= 64, got 65"),
        (
            {"endpoint": "tcp://h:1", "windw_s": 1.0},
            "telemetry.windw_s: unknown key; expected one of ['ack_timeout_s', ",
        ),
        ({"endpoint": "tcp://h:1", "curve_keypair": "a"}, "telemetry.collector_public_key: expected it together"),
        ({"endpoint": "tcp://h:1", "curve_keypair": ""}, "telemetry.collector_public_key: expected it together"),
        ({"endpoint": "tcp://h:1", "spool_max_bytes": 1024, "segment_bytes": 1024}, "telemetry.spool_max_bytes"),
        ({"endpoint": "tcp://h:1", "capture": {"pool": 0}}, "telemetry.capture.pool: expected an integer >= 1, got 0"),
        (
            {"endpoint": "tcp://h:1", "capture": {"enabled": "yes"}},
            "telemetry.capture.enabled: expected true or false, got 'yes'",
        ),
        ({"endpoint": "tcp://h:1", "capture": {"sampel": 1}}, "telemetry.capture.sampel: unknown key; expected one of"),
        ({"endpoint": "tcp://h:1", "capture": {"min_interval_s": -1}}, "telemetry.capture.min_interval_s: expected"),
    ],
)
def test_config_errors_name_the_key(table, message, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_telemetry(table, tmp_path)
    assert message in str(info.value)


def test_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    s = parse_telemetry({"endpoint": "tcp://h:1", "spool_dir": "var/spool", "window_s": 2}, tmp_path)
    assert s.spool_dir == (tmp_path / "var" / "spool").resolve()
    assert s.link.window_s == 2.0 and s.fsync == "interval"
    assert parse_telemetry({"endpoint": "tcp://h:1"}, tmp_path).spool_dir == (tmp_path / "telemetry-spool").resolve()


def test_missing_key_files_are_config_errors(tmp_path: Path) -> None:
    table = {"endpoint": "tcp://127.0.0.1:9", "curve_keypair": "nope.key_secret", "collector_public_key": "c.key"}
    with pytest.raises(ConfigError, match=r"telemetry\.curve_keypair: expected a ZeroMQ certificate file"):
        tap_from_config(table, device_id="d", base_dir=tmp_path)
    main(["keys", "gen", "--out", str(tmp_path), "--name", "c"])
    table["curve_keypair"] = "c.key"  # a public key where the secret one belongs
    with pytest.raises(ConfigError, match="expected a secret key file"):
        tap_from_config(table, device_id="d", base_dir=tmp_path)


def test_device_id_default_and_a_new_boot_id_per_tap(tmp_path: Path) -> None:
    assert default_device_id()
    taps = [
        tap_from_config({"endpoint": "tcp://127.0.0.1:9", "spool_dir": f"s{i}"}, device_id=None, base_dir=tmp_path)
        for i in range(2)
    ]
    try:
        assert taps[0].device_id == taps[1].device_id == default_device_id()
        assert taps[0].boot_id != taps[1].boot_id
    finally:
        for t in taps:
            t.close(timeout_s=0.1)


def test_keys_gen_writes_a_pair_with_a_private_secret(tmp_path: Path, capsys) -> None:
    assert main(["keys", "gen", "--out", str(tmp_path / "k"), "--name", "robot-7"]) == 0
    public, secret = tmp_path / "k" / "robot-7.key", tmp_path / "k" / "robot-7.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "public-key" in public.read_text() and "secret-key" not in public.read_text()
    assert "secret-key" in secret.read_text()
    assert "robot-7.key_secret" in capsys.readouterr().out
    assert main(["keys", "gen", "--out", str(tmp_path / "k"), "--name", "../evil"]) == 2


def test_readme_example_table_is_valid(tmp_path: Path) -> None:
    import tomllib

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("## Telemetry")[1].split("```toml")[1].split("```")[0]
    s = parse_telemetry(tomllib.loads(block)["telemetry"], tmp_path)
    assert s.capture.enabled and s.capture.drift_above == 0.25 and s.curve_keypair.name == "robot-7.key_secret"
