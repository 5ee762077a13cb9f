"""The exit-code table (README "Exit codes"), applied by ``edge.cli.main`` to every subcommand: one ``edge: Kind:
message`` line on stderr (never a traceback) for every error edge raises on purpose, the code of its class."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge import cli
from edge.cli import BAD_INPUT, CHECK_FAILED, INTERNAL_ERROR, INTERRUPTED, NOT_RUN, OK, main
from edge.errors import ConfigError, UnavailableError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sim" / "models" / "lane-keeper.tgz"


def _flipped(tmp_path: Path, at: float = 0.5) -> Path:
    data = bytearray(SHIPPED.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    out = tmp_path / "flipped.tgz"
    out.write_bytes(bytes(data))
    return out


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_the_table() -> None:
    assert (OK, CHECK_FAILED, BAD_INPUT, NOT_RUN, INTERNAL_ERROR, INTERRUPTED) == (0, 1, 2, 3, 4, 130)


def test_the_readme_documents_the_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.*)$", section, re.M))
    assert sorted(map(int, rows)) == [0, 1, 2, 3, 4, 130]
    for cls, code in cli.EXIT_CODES:
        assert cls.__name__ in rows[str(code)], (cls.__name__, code)


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "verify", "{pkg}"],
        ["model", "inspect", "{pkg}"],
        ["bench", "{pkg}", "--runs", "3", "--warmup", "1"],
        ["sim", "run", "nominal", "--quiet", "--package", "{pkg}"],
    ],
    ids=["verify", "inspect", "bench", "sim-run"],
)
@pytest.mark.parametrize("at", [0.0001, 0.5, 0.99999, None], ids=["header", "deflate", "trailer", "truncated"])
def test_a_malformed_package_is_one_line_and_exit_1(tmp_path, capsys, argv: list[str], at) -> None:
    if at is None:
        pkg = tmp_path / "cut.tgz"
        pkg.write_bytes(SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 3])
    else:
        pkg = _flipped(tmp_path, at)
    code, err = _run(capsys, *(a.format(pkg=pkg) for a in argv))
    line = _one_line(err)
    assert code == CHECK_FAILED, line
    assert line.startswith(f"edge: IntegrityError: {pkg}"), line


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "verify", "{d}/nosuch.tgz"],
        ["model", "inspect", "{d}/nosuch.tgz"],
        ["bench", "{d}/nosuch.tgz"],
        ["bench", "{d}/nosuch.onnx"],
    ],
)
def test_a_missing_file_says_it_is_missing_and_exit_2(tmp_path, capsys, argv: list[str]) -> None:
    code, err = _run(capsys, *(a.format(d=tmp_path) for a in argv))
    assert code == BAD_INPUT
    assert _one_line(err) == f"edge: ModelError: {tmp_path}/{Path(argv[-1]).name}: no such file or folder"


def test_sim_run_with_a_missing_package_says_it_is_missing_and_exit_2(tmp_path, capsys) -> None:
    code, err = _run(capsys, "sim", "run", "nominal", "--package", str(tmp_path / "nosuch.tgz"))
    line = _one_line(err)
    assert code == BAD_INPUT and f"expected {tmp_path}/nosuch.tgz to exist, got no such file" in line


def test_bad_input_exits_2(tmp_path, capsys) -> None:
    cfg = tmp_path / "device.toml"
    cfg.write_text("[loop]\nrate_hz = -3\n")
    code, err = _run(capsys, "run", str(cfg))
    assert code == BAD_INPUT and "ConfigError: " in _one_line(err) and "loop.rate_hz" in err
    cfg.write_text("[loop\n")
    code, err = _run(capsys, "run", str(cfg))
    assert code == BAD_INPUT and "ConfigError" in _one_line(err)
    code, err = _run(capsys, "keys", "gen", "--out", str(tmp_path), "--name", "../x")
    assert code == BAD_INPUT and "ConfigError" in _one_line(err)
    not_a_model = tmp_path / "m.onnx"
    not_a_model.write_bytes(b"this is not protobuf")
    code, err = _run(capsys, "model", "inspect", str(not_a_model))
    assert code == BAD_INPUT and _one_line(err).startswith("edge: ModelError: ")
    jetson = ROOT / "toolchains" / "jetson" / "profile.toml"  # trt_int8 = "auto": the graph is parsed before loading
    code, err = _run(capsys, "bench", str(not_a_model), "--profile", str(jetson))
    assert code == BAD_INPUT and _one_line(err).startswith("edge: ModelError: parsing ONNX model: DecodeError")


def test_usage_errors_exit_2(capsys) -> None:
    assert main([]) == BAD_INPUT
    assert main(["nosuchcommand"]) == BAD_INPUT
    assert "invalid choice: 'nosuchcommand'" in capsys.readouterr().err
    assert main(["bench"]) == BAD_INPUT
    assert "the following arguments are required: MODEL_OR_PACKAGE" in capsys.readouterr().err
    assert main(["--help"]) == OK and "exit codes: 0 ok" in capsys.readouterr().out


def test_a_strict_provider_missing_exits_3(capsys) -> None:
    code, err = _run(capsys, "bench", str(SHIPPED), "--provider", "tensorrt", "--strict", "--runs", "2")
    assert code == NOT_RUN and _one_line(err).startswith("edge: UnavailableError: strict provider mode")


def test_a_missing_area_or_extra_exits_3_naming_the_fix(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "edge.sim.cli", None)  # as if sim/ were not installed
    code, err = _run(capsys, "sim", "run", "nominal")
    assert code == NOT_RUN
    assert _one_line(err) == (
        "edge: UnavailableError: `edge sim` needs 'edge.sim.cli', which is not installed here: pip install 'edge[sim]'"
    )
    assert main(["--help"]) == OK and "closed-loop simulator runs" in capsys.readouterr().out  # still listed


def test_os_errors_reaching_main_are_mapped_in_one_place() -> None:
    missing = cli.foreign_error(FileNotFoundError(2, "No such file or directory", "/x/keys"), "keys")
    assert isinstance(missing, ConfigError) and str(missing) == "/x/keys: No such file or directory"
    refused = cli.foreign_error(PermissionError(13, "Permission denied", "/etc/edge"), "keys")
    assert isinstance(refused, UnavailableError) and cli.exit_code(refused) == NOT_RUN
    assert cli.foreign_error(ModuleNotFoundError("x", name="yaml"), "run") is None  # not optional: a bug
    assert cli.foreign_error(ValueError("x"), "run") is None


def test_a_bug_shows_its_traceback_and_exits_4(capsys, monkeypatch) -> None:
    import edge.models.cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(edge.models.cli, "_verify", broken)
    code, err = _run(capsys, "model", "verify", str(SHIPPED))
    assert code == INTERNAL_ERROR
    assert "Traceback" in err and "KeyError: 'a bug'" in err and err.strip().endswith("traceback above)")


def test_ctrl_c_exits_130(capsys, monkeypatch) -> None:
    import edge.models.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(edge.models.cli, "_verify", interrupted)
    assert _run(capsys, "model", "verify", str(SHIPPED)) == (INTERRUPTED, "edge: interrupted\n")


def test_the_entry_point_prints_one_line_and_exits_with_the_code(tmp_path) -> None:
    """Through the installed ``edge`` script: the flipped-byte .tgz that once dumped ``zlib.error``."""
    script = shutil.which("edge", path=str(Path(sys.executable).parent))
    assert script is not None
    pkg = _flipped(tmp_path)
    for argv, code in ((["model", "verify", str(pkg)], 1), (["bench", str(tmp_path / "nosuch.tgz")], 2)):
        proc = subprocess.run([script, *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == code and proc.stdout == "", proc
        _one_line(proc.stderr)
