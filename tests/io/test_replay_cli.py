"""``edge replay``: a recording made with [record] replays through the real loop with the same model to identical
decisions and a full report; a different model gives a report of the differences; a corrupt or config-less
recording is one clear line and exit code 2 (README "Exit codes")."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from io_media import device_toml, pattern

from edge.cli import main
from edge.device.service import build_service
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config

RECORD = '\n[record]\npath = "rec.mcap"\nqueue_frames = 128\n'


def record_run(folder: Path, package: Path, frames: int = 60) -> tuple[Path, list[dict]]:
    """A lockstep loop from a device.toml with [record], fed by pushes (new frames, reused frames, a stale gap)."""
    folder.mkdir(exist_ok=True)
    cfg_path = folder / "device.toml"
    cfg_path.write_text(device_toml(package, 'source = "push"\nstale_ms = 25', extra=RECORD))
    clock = LockstepClock(1_000_000_000)
    service = build_service(load_config(cfg_path), clock=clock)
    live = []
    try:
        loop, slot = service.loop, service.loop.slot("camera")
        for i in range(frames):
            if i % 3 != 2 and not 20 <= i < 30:
                slot.push(pattern(i), clock.now_ns())
            live.append(loop.step().snapshot())
    finally:
        service.close()
    return folder / "rec.mcap", live


@pytest.fixture(scope="module")
def other_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture as ``model_package`` with other weights (seed 7)."""
    from edge.models.manage import pack_model
    from edge.tooling.model_builders import u8s8_cnn_onnx

    d = tmp_path_factory.mktemp("other_model")
    return pack_model(u8s8_cnn_onnx(d / "cnn.onnx", seed=7), d / "cnn7.tgz", name="cnn7", version="2.0")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_same_model_replays_to_identical_decisions(tmp_path: Path, model_package: Path, capsys) -> None:
    rec, live = record_run(tmp_path / "run", model_package)
    (tmp_path / "run" / "device.toml").unlink()  # the recording holds its own device.toml
    report = tmp_path / "report"
    assert main(["replay", str(rec), "--package", str(model_package), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "60 frames, recorded by cnn@1.0, replayed with cnn@1.0" in out and "agreement 100.00 %" in out
    summary = json.loads((report / "summary.json").read_text())
    assert summary["frames"] == 60 and summary["agreement"] == 1.0 and summary["first_difference"] == -1
    assert summary["plot"] == "commands.png" and (report / "commands.png").stat().st_size > 1000
    rows = read_csv(report / "frames.csv")
    assert [int(r["seq"]) for r in rows] == [d["seq"] for d in live]
    assert [int(r["replayed_action"]) for r in rows] == [d["action"] for d in live]
    assert [r["replayed_health"] for r in rows] == [d["health"] for d in live]
    assert {r["agree"] for r in rows} == {"1"} and {r["recorded_health"] for r in rows} >= {"OK", "SAFE_STOP"}


def test_a_different_model_gives_a_report_of_the_differences(
    tmp_path: Path, model_package: Path, other_package: Path, capsys
) -> None:
    rec, live = record_run(tmp_path / "run", model_package)
    report = tmp_path / "report"
    code = main(["replay", str(rec), "--package", str(other_package), "--report", str(report)])
    assert code == 0
    assert "replayed with cnn7@2.0" in capsys.readouterr().out
    rows = read_csv(report / "frames.csv")
    assert [r["recorded_action"] for r in rows] == [str(d["action"]) for d in live]
    changed = [int(r["seq"]) for r in rows if r["recorded_action"] != r["replayed_action"]]
    assert changed, "seed 7 weights should change some decisions"
    assert all(r["agree"] == "0" for r in rows if int(r["seq"]) in changed)
    safe = [r for r in rows if r["recorded_health"] == "SAFE_STOP"]  # the stale gap: the safe action either way
    assert safe and all(r["agree"] == "1" and r["replayed_action"] == "0" for r in safe)
    summary = json.loads((report / "summary.json").read_text())
    agreeing = sum(r["agree"] == "1" for r in rows)
    assert summary["agreement"] == pytest.approx(agreeing / 60) and summary["agreement"] < 1.0
    assert summary["first_difference"] == changed[0] and summary["replayed_model"] == "cnn7@2.0"
    assert main(["replay", str(rec), "--package", str(other_package), "--min-agreement", "100"]) == 1


def test_corrupt_or_config_less_recordings_are_one_line_and_exit_2(tmp_path: Path, model_package: Path, capsys) -> None:
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 50)
    assert main(["replay", str(bad), "--package", str(model_package)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge: ConfigError: recording") and "bad.mcap: expected a readable MCAP file" in err
    assert len(err.splitlines()) == 1
    rec, _live = record_run(tmp_path / "run", model_package, frames=10)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(rec.read_bytes()[: rec.stat().st_size // 2])
    cfg = tmp_path / "run" / "device.toml"
    assert main(["replay", str(cut), "--package", str(model_package), "--config", str(cfg)]) == 2
    assert "cut.mcap: expected a readable MCAP file" in capsys.readouterr().err
    assert main(["replay", str(rec), "--package", str(tmp_path / "none.tgz")]) == 2
    assert "replay --package: expected a model package" in capsys.readouterr().err
