"""A device install: ``edge run``, ``edge bench`` and ``edge model`` work in a real venv that holds only edge's runtime
dependencies (numpy, onnxruntime, pyzmq, msgpack, onnx, cryptography and what they need) and the ``edge`` package
without ``edge.collector`` — no ``sim/`` (``edge.sim``), no scipy, no matplotlib; ``edge sim``, ``edge demo`` and
``edge collector`` exit 3 naming the extra to install. In the full venv, the device commands import none of them.

The venv is made with ``python -m venv --without-pip``; its site-packages gets symlinks to the top-level entries of
the runtime distributions (found from edge's own requirements, extras left out) and an ``edge`` folder of symlinks
to the repository's ``edge/`` entries except ``collector``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from edge.models.manage import pack_model
from edge.tooling.model_builders import float_cnn_onnx

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("scipy", "matplotlib", "edge.sim", "edge.collector")

DEVICE_TOML = """
[device]
id = "lazy-robot"
[loop]
rate_hz = 50
[model]
package = "cnn.tgz"
threads = 1
[sensors.camera]
source = "zmq"
endpoint = "ipc://{d}/camera.ipc"
shape = [48, 64, 3]
stale_ms = 500
[policy]
kind = "classification"
actions = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"]
[fallback]
safe_action = "a0"
[sinks]
zmq_endpoint = "ipc://{d}/decisions.ipc"
"""


def _runtime_entries() -> dict[str, Path]:
    """Top-level site-packages entries of edge's runtime requirements and theirs (no extras), by name."""
    todo = list(md.distribution("edge").requires or [])
    seen: set[str] = set()
    entries: dict[str, Path] = {}
    while todo:
        req = Requirement(todo.pop())
        name = canonicalize_name(req.name)
        if (req.marker and not req.marker.evaluate({"extra": ""})) or name in seen:
            continue
        seen.add(name)
        dist = md.distribution(req.name)
        todo += dist.requires or []
        for f in dist.files or []:
            if f.parts[0] not in ("..", "__pycache__"):
                entries.setdefault(f.parts[0], Path(dist.locate_file(f.parts[0])))
    assert not {"scipy", "matplotlib"} & {e.split("-")[0] for e in entries}, sorted(entries)
    return entries


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python`` of the device venv and ``dir``, a work folder with ``cnn.tgz`` and ``device.toml``."""
    d = tmp_path_factory.mktemp("device")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d / "venv")], check=True, timeout=120)
    site = next((d / "venv" / "lib").glob("python3*/site-packages"))
    for name, src in _runtime_entries().items():
        (site / name).symlink_to(src)
    (site / "edge").mkdir()
    for child in (ROOT / "edge").iterdir():
        if child.name not in ("collector", "__pycache__"):
            (site / "edge" / child.name).symlink_to(child)
    work = d / "work"
    work.mkdir()
    pack_model(float_cnn_onnx(d / "cnn.onnx"), work / "cnn.tgz", name="cnn", version="v1.0")
    (work / "device.toml").write_text(DEVICE_TOML.format(d=work))
    return {"python": d / "venv" / "bin" / "python", "dir": work}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} | {"PYTHONNOUSERSITE": "1"}


def _edge(device: dict[str, Path], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(device["python"]), "-m", "edge", *argv],
        cwd=device["dir"],  # not the repository root: its edge/ must not be on the path
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


def test_the_device_venv_really_lacks_the_extras(device: dict[str, Path]) -> None:
    code = (
        "import importlib, json\n"
        "def ok(m):\n"
        "    try:\n        importlib.import_module(m)\n        return True\n"
        "    except ImportError:\n        return False\n"
        f"print(json.dumps({{m: ok(m) for m in {[*EXTRAS, 'edge.models', 'edge.loop', 'edge.telemetry']!r}}}))"
    )
    proc = subprocess.run([str(device["python"]), "-c", code], cwd=device["dir"], capture_output=True, text=True,
                          env=_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found == {**dict.fromkeys(EXTRAS, False), "edge.models": True, "edge.loop": True, "edge.telemetry": True}


def test_model_and_bench_work_without_the_extras(device: dict[str, Path]) -> None:
    help_ = _edge(device, "--help")
    assert help_.returncode == 0 and "sim " in help_.stdout and "collector" in help_.stdout, help_.stderr
    verify = _edge(device, "model", "verify", "cnn.tgz")
    assert verify.returncode == 0 and verify.stdout.startswith("OK cnn.tgz: cnn v1.0"), verify.stderr
    inspect = _edge(device, "model", "inspect", "cnn.tgz", "--json")
    assert inspect.returncode == 0 and json.loads(inspect.stdout)["package"]["name"] == "cnn", inspect.stderr
    bench = _edge(device, "bench", "cnn.tgz", "--runs", "5", "--warmup", "1", "--threads", "1", "--json")
    assert bench.returncode == 0 and json.loads(bench.stdout)["runs"] == 5, bench.stderr
    (device["dir"] / "cut.tgz").write_bytes((device["dir"] / "cnn.tgz").read_bytes()[:300])
    cut = _edge(device, "model", "verify", "cut.tgz")
    assert cut.returncode == 1 and cut.stderr.count("\n") == 1 and "truncated" in cut.stderr, cut.stderr


@pytest.mark.parametrize(
    ("argv", "extra"), [(["sim", "run", "nominal"], "sim"), (["demo"], "sim"), (["collector"], "collector")]
)
def test_commands_of_a_missing_area_exit_3_naming_the_extra(
    device: dict[str, Path], argv: list[str], extra: str
) -> None:
    proc = _edge(device, *argv)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("edge: UnavailableError: ") and f"pip install 'edge[{extra}]'" in proc.stderr


def test_edge_run_runs_without_the_extras(device: dict[str, Path]) -> None:
    """The loop starts, publishes decisions (fallback ones: no camera frames are sent) and stops on SIGTERM."""
    ctx = zmq.Context()
    decisions = ctx.socket(zmq.SUB)
    decisions.setsockopt(zmq.LINGER, 0)
    decisions.setsockopt(zmq.SUBSCRIBE, b"")
    decisions.connect(f"ipc://{device['dir']}/decisions.ipc")
    proc = subprocess.Popen(
        [str(device["python"]), "-m", "edge", "run", "device.toml"],
        cwd=device["dir"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        first = _read_line(proc, timeout_s=120)
        assert first.startswith("edge run: cnn@v1.0 at 50 Hz"), (first, proc.stderr.read() if not first else "")
        assert decisions.poll(60_000), "no decision from the running loop"
        assert msgpack.unpackb(decisions.recv())["source"] in ("loop", "fallback")
        proc.send_signal(signal.SIGTERM)  # the loop is running: its stop is not lost before Loop.run starts
        out, err = proc.communicate(timeout=60)
    finally:
        decisions.close()
        ctx.term()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "edge run: stopped cleanly on SIGTERM after" in out


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The first stdout line of ``proc``, or ``""`` when it exits or stays silent for ``timeout_s``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                return proc.stdout.readline()
    return ""


def test_device_commands_import_no_extra_in_the_full_venv(tmp_path: Path) -> None:
    """In the development venv, where everything is installed: what the device commands leave in sys.modules."""
    pkg = pack_model(float_cnn_onnx(tmp_path / "m.onnx"), tmp_path / "m.tgz", name="m", version="1")
    runs = [
        ["--help"],
        ["run", "--help"],
        ["model", "verify", str(pkg)],
        ["model", "inspect", str(pkg)],
        ["bench", str(pkg), "--runs", "3"],
        ["service", "unit"],
        ["keys", "gen", "--out", str(tmp_path), "--name", "k"],
    ]
    code = (
        "import contextlib, io, json, sys\n"
        "from edge.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(json.loads(sys.argv[1]))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'matplotlib') "
        "or m.startswith(('edge.sim', 'edge.collector')))\n"
        "print(json.dumps([rc, bad]))\n"
    )
    for argv in runs:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1]) == [0, []], (argv, proc.stdout, proc.stderr)


def test_the_command_table_matches_what_each_area_registers() -> None:
    """``edge --help`` shows :data:`edge.cli.COMMANDS` without importing the areas: its names and help lines must be
    the ones each area's ``register`` adds."""
    import argparse
    import importlib

    from edge.cli import COMMANDS

    registered: dict[str, tuple[str, str | None]] = {}
    for module in dict.fromkeys(c.module for c in COMMANDS.values()):
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered |= {a.dest: (module, a.help) for a in sub._choices_actions}
    assert registered == {name: (c.module, c.help) for name, c in COMMANDS.items()}
