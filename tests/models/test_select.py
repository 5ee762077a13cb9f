"""``edge model select``: variants timed on this machine, the accuracy gate, the record beside the package, and
``load_model`` running the recorded variant (or the package's model file when the record no longer fits)."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import ModelError
from edge.models import load_model
from edge.models.integrity import sha256_hex
from edge.models.manage import pack_model
from edge.models.package import read_package
from edge.models.select import apply_selection, select_variant, selection_path
from edge.tooling.model_builders import float_cnn_onnx


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The U8S8 model, its float original (same weights) and an unrelated float model of the same shape."""
    d = tmp_path_factory.mktemp("select")
    other = float_cnn_onnx(d / "other.onnx", seed=5)
    return pack_model(
        model_dir / "u8s8.onnx", d / "pkg", name="cnn", version="1",
        extra_files=(model_dir / "float.onnx", other, model_dir / "int8.tflite"),
    )  # fmt: skip


def test_every_variant_is_tried_and_the_gate_holds(package: Path) -> None:
    trials, chosen = select_variant(read_package(package), runs=20, min_agreement=0.8)
    by = {(t.file, t.options): t for t in trials}
    assert {"default", "qdq_as_float", "x64_quant_precision"} <= {o for f, o in by if f == "u8s8.onnx"}
    assert [o for f, o in by if f == "float.onnx"] == ["default"]  # no QDQ graph: session options not tried
    assert by["u8s8.onnx", "default"].agreement == 1.0  # the reference agrees with itself
    assert by["float.onnx", "default"].agreement >= 0.8  # the float original of the same weights (30/32 here)
    assert not by["other.onnx", "default"].passed  # other weights: other answers
    assert "input shape" in (by["int8.tflite", "default"].error or "")  # 8×8 input: not a variant of this model
    assert chosen is not None and chosen.passed
    assert chosen.p50_us == min(t.p50_us for t in trials if t.passed)


def test_cli_records_the_choice_and_load_model_uses_it(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "select", str(package), "--runs", "20", "--min-agreement", "0.8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu ") and "chose " in out
    doc = tomllib.loads(selection_path(package).read_text())
    pkg = read_package(package)
    assert doc["select"]["sha256"] == sha256_hex(pkg.files[doc["select"]["file"]])
    model = load_model(package, threads=1, warmup=0)
    assert model.report.sha256 == doc["select"]["sha256"]
    assert model.options.session_config == doc["session_config"]


def test_a_record_from_another_cpu_is_ignored(package: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pkg = read_package(package)
    record = selection_path(tmp_path / "pkg")
    sha = sha256_hex(pkg.files["float.onnx"])
    record.write_text(f'[select]\nfile = "float.onnx"\nsha256 = "{sha}"\ncpu_model = "Imaginary CPU 9000"\n')
    from edge.models.options import RuntimeOptions

    opts = RuntimeOptions()
    with caplog.at_level(logging.WARNING, logger="edge.models"):
        _, data, got = apply_selection(tmp_path / "pkg", pkg, pkg.format, pkg.model_bytes, opts)
    assert data is pkg.model_bytes and got is opts
    assert "Imaginary CPU 9000" in caplog.text


def test_a_broken_record_is_a_model_error(package: Path, tmp_path: Path) -> None:
    pkg = read_package(package)
    selection_path(tmp_path / "pkg").write_text("[select]\nfile = 3\n")
    from edge.models.options import RuntimeOptions

    with pytest.raises(ModelError, match="edge model select"):
        apply_selection(tmp_path / "pkg", pkg, pkg.format, pkg.model_bytes, RuntimeOptions())


def test_no_variant_passing_is_an_error(tmp_path: Path, model_dir: Path) -> None:
    pkg = pack_model(model_dir / "u8s8.onnx", tmp_path / "p", name="cnn", version="1")
    assert main(["model", "select", str(pkg), "--runs", "5", "--min-agreement", "1.5"]) == 2
    assert not selection_path(pkg).exists()
