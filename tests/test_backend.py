"""Backend selection: EDGE_PUREPYTHON forces the twins, a missing extension falls back loudly, and both backends
export the same kernel API; `edge --version` reports the active one."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import edge.kernels
from edge.kernels import KERNEL_API, implementation


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "EDGE_PUREPYTHON"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=60)


def test_purepython_env_forces_the_twins() -> None:
    result = _python("import edge.kernels as k; print(k.BACKEND, k.preprocess_frame.__module__)", EDGE_PUREPYTHON="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "edge.kernels.reference"]


def test_missing_extension_falls_back_with_a_warning_that_says_how_to_build() -> None:
    code = (
        "import sys, warnings\n"
        "sys.modules['edge._native.sketch'] = None  # as if the extension had not been built\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import edge.kernels as k\n"
        "print(k.BACKEND)\n"
        "print([(w.category.__name__, str(w.message)) for w in caught])\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    backend, warnings_seen = result.stdout.splitlines()
    assert backend == "numpy"
    assert "NativeKernelsMissing" in warnings_seen and "pip install -e ." in warnings_seen


def test_both_backends_export_the_same_api_with_the_same_signatures() -> None:
    twin = implementation("numpy")
    try:
        native = implementation("native")
    except ImportError:
        if os.environ.get("EDGE_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip("native kernels not built")
    names = {n for group in KERNEL_API.values() for n in group}
    assert set(twin) == set(native) == names
    assert set(edge.kernels.__all__) >= names
    for name in names - {"SketchAccumulator"}:
        assert list(inspect.signature(native[name]).parameters) == list(inspect.signature(twin[name]).parameters), name


@pytest.mark.parametrize("purepython", ["0", "1"])
def test_version_reports_the_active_backend(purepython: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"EDGE_PUREPYTHON": purepython},
    )
    assert result.returncode == 0, result.stderr
    expected = "numpy" if purepython == "1" else _native_or_numpy()
    assert result.stdout.startswith("edge ") and f"kernels: {expected}" in result.stdout


def _native_or_numpy() -> str:
    try:
        implementation("native")
        return "native"
    except ImportError:
        return "numpy"


def test_a_compiled_module_imports_on_its_own() -> None:
    """Importing edge._native.* first must not run into the backend selection in edge.kernels (an import cycle)."""
    try:
        implementation("native")
    except ImportError:
        pytest.skip("native kernels not built")
    result = _python("import edge._native.preprocess as m; import edge.kernels as k; print(k.BACKEND)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "native"


WIRE = {"wire_accept": ("window_envelope", "window_accept"), "wire_digest": ("window_digest_block",)}


def test_the_wire_readers_are_kernels() -> None:
    """The collector's readers of untrusted network bytes are part of the one kernel API, each with its twin."""
    for module, names in WIRE.items():
        assert KERNEL_API[module] == names
        assert set(names) <= set(edge.kernels.__all__)
    assert implementation("numpy")["window_envelope"].__module__ == "edge.kernels.reference_wire"
    assert implementation("numpy")["window_accept"].__module__ == "edge.kernels.reference_wire"
    assert implementation("numpy")["window_digest_block"].__module__ == "edge.kernels.reference_wire"


_ORIGINS = (
    "import edge.kernels as k\n"
    "from edge.cli import version_line\n"
    "print(k.BACKEND)\n"
    "print(version_line())\n"
    "print(sorted({getattr(k, n).__module__.rsplit('.', 1)[0] for g in k.KERNEL_API.values() for n in g}))\n"
)


@pytest.mark.parametrize("purepython", ["0", "1"])
def test_every_kernel_comes_from_the_reported_backend(purepython: str) -> None:
    result = _python(_ORIGINS, EDGE_PUREPYTHON=purepython)
    assert result.returncode == 0, result.stderr
    backend, version, packages = result.stdout.splitlines()
    assert backend == ("numpy" if purepython == "1" else _native_or_numpy())
    assert f"kernels: {backend}" in version
    assert packages == str(["edge._native" if backend == "native" else "edge.kernels"])


@pytest.mark.parametrize("missing", ["wire_accept", "wire_digest", "sketch"])
def test_a_partial_build_never_mixes_backends(missing: str) -> None:
    """One compiled module missing (the others built): the whole API falls back to the twins, says which module is
    missing, and `edge --version` reports numpy."""
    try:
        implementation("native")
    except ImportError:
        pytest.skip("native kernels not built")
    code = (
        "import sys, warnings\n"
        f"sys.modules['edge._native.{missing}'] = None  # as if this one extension had not been built\n"
        "warnings.simplefilter('always')\n" + _ORIGINS
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    backend, version, packages = result.stdout.splitlines()
    assert (backend, packages) == ("numpy", str(["edge.kernels"]))
    assert "kernels: numpy" in version
    assert "NativeKernelsMissing" in result.stderr and f"edge._native.{missing}" in result.stderr


def _imports_native(path: Path) -> bool:
    return any("edge._native" in line and "import" in line for line in path.read_text().splitlines())


def test_only_edge_kernels_imports_the_compiled_modules() -> None:
    """STYLE.md habit 1: edge._native.* is imported by edge.kernels alone (and the kernels import nothing above them:
    no telemetry, no collector)."""
    root = Path(edge.kernels.__file__).parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("edge", "sim")
        for path in (root / folder).rglob("*.py")
        if path.parent.name not in ("kernels", "_native") and _imports_native(path)
    ]
    assert offenders == []
    result = _python(
        "import sys, edge.kernels as k; k.implementation('numpy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('edge.telemetry', 'edge.collector'))))",
        EDGE_PUREPYTHON="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
