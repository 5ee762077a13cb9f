"""Fixtures for kernel tests: both backends side by side.

``kernel_pair`` yields (native, numpy) implementations of the kernel API; tests compare them, with the NumPy twin as
the oracle. Where the native kernels are not built the comparison tests are skipped — except under CI
(``EDGE_REQUIRE_NATIVE=1``), where a missing native build is an error, never a silent skip.
"""

from __future__ import annotations

import os

import pytest

from edge.kernels import implementation


def _native_or_skip(baseline: bool = False) -> dict[str, object]:
    try:
        return implementation("native", baseline=baseline)
    except ImportError as exc:
        if os.environ.get("EDGE_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"native kernels not built: {exc}")


@pytest.fixture(params=["selected", "baseline"], scope="session")
def native_build(request: pytest.FixtureRequest) -> dict[str, object]:
    """The native kernels as edge.kernels selects them for this CPU, then their baseline builds where those differ
    (an AVX2 build on x86-64): modules with a second build run their parity tests on both."""
    selected = _native_or_skip()
    if request.param == "selected":
        return selected
    baseline = _native_or_skip(baseline=True)
    if baseline == selected:
        pytest.skip("one native build here: no wider-instruction-set build for this CPU")
    return baseline


@pytest.fixture(scope="session")
def native() -> dict[str, object]:
    return _native_or_skip()


@pytest.fixture(scope="session")
def twin() -> dict[str, object]:
    return implementation("numpy")


@pytest.fixture(params=["native", "numpy"], scope="session")
def impl(request: pytest.FixtureRequest) -> dict[str, object]:
    """Each behaviour test runs once per backend."""
    if request.param == "native":
        return _native_or_skip()
    return implementation("numpy")
