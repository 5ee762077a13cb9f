"""``edge model ...`` and ``edge bench`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main


def test_pack_sign_verify_inspect(
    model_path: Path, tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "p.tgz"
    assert (
        main(
            [
                "model",
                "pack",
                str(model_path),
                "-o",
                str(pkg),
                "--name",
                "cnn",
                "--version",
                "1",
                "--mean",
                "0.5,0.5,0.5",
                "--layout",
                "NCHW",
            ]
        )
        == 0
    )
    assert main(["model", "verify", str(pkg)]) == 0
    assert main(["model", "verify", str(pkg), "--trust-key", str(keys["trust"])]) == 1
    assert "not signed" in capsys.readouterr().err
    assert main(["model", "sign", str(pkg), "--key", str(keys["signing"])]) == 0
    assert main(["model", "verify", str(pkg), "--trust-key", str(keys["trust"])]) == 0
    capsys.readouterr()
    assert main(["model", "inspect", str(pkg), "--json", "--trust-key", str(keys["trust"])]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["package"]["signed"] and info["package"]["signature_verified_with"]
    assert info["package"]["preprocess"] == {"mean": [0.5, 0.5, 0.5], "layout": "NCHW"}


def test_inspect_bare_models(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "inspect", str(model_dir / "u8s8.onnx"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["opset"] == {"ai.onnx": 17} and info["operators"]["Conv"] == 3
    assert info["quantization"].startswith("QDQ activations uint8") and "int8" in info["quantization"]
    assert info["inputs"][0]["dtype"] == "uint8" and "scale" in info["inputs"][0]
    assert main(["model", "inspect", str(model_dir / "int8.tflite")]) == 0
    out = capsys.readouterr().out
    assert "full int8" in out and "CONV_2D×1" in out and "FULLY_CONNECTED×1" in out


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.bin").write_bytes(b"x")
    assert main(["model", "inspect", str(tmp_path / "m.bin")]) == 2  # bad input (README "Exit codes")
    assert "ModelError" in capsys.readouterr().err


def test_bench_json(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(model_path), "--runs", "30", "--warmup", "5", "--threads", "1", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    for key in ("edge_overhead_us", "edge_vs_bare_time_ratio", "first_run_ms", "peak_rss_bytes"):
        assert key in fig
    assert fig["edge"]["p50_us"] > 0 and fig["bare"]["max_us"] >= fig["bare"]["p99_us"]
    assert "avx512_vnni" in fig["machine"]["int8_features"] or "asimddp" in fig["machine"]["int8_features"]
    assert main(["bench", str(model_path), "--runs", "10", "--warmup", "2"]) == 0
    out = capsys.readouterr().out
    assert "overhead" in out
    assert out.startswith("cpu ")  # the CPU and its int8 features come first
