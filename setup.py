"""Build the Cython kernels in ``native/`` into the private namespace ``edge._native``.

Every ``native/<name>.pyx`` becomes the extension ``edge._native.<name>``; a ``native/<name>.pxd`` without a .pyx is
shared code (``wire_cursor.pxd``: the msgpack cursor of ``wire_accept`` and ``wire_digest``, inline functions each
module compiles in). The Cython compiler directives live in one place, ``cython_directives()`` below;
``EDGE_CYTHON_DEBUG=1`` turns on bounds checks, wraparound and line tracing and compiles with ``-O0 -g`` (CI builds
this flavour too).

A ``native/<name>_avx2.pyx`` is a second build of a kernel for a wider instruction set (``ISA_FLAGS``): compiled with
``-mavx2`` when the target is x86-64 and left out elsewhere (the aarch64 cross build); ``edge.kernels`` loads it only
on a CPU that runs it.

Where no C compiler (or no Cython) is available the extensions are optional: the package still installs and
``edge.kernels`` falls back, with a warning, to the pure-NumPy twins. Set ``EDGE_REQUIRE_NATIVE=1`` to turn a failed
native build into an error instead (CI does, so a broken kernel can never pass as "fell back to NumPy").
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent
NATIVE = HERE / "native"
DEBUG = os.environ.get("EDGE_CYTHON_DEBUG") == "1"
REQUIRE_NATIVE = os.environ.get("EDGE_REQUIRE_NATIVE") == "1"


def cython_directives(debug: bool) -> dict[str, object]:
    """The one place where Cython compiler directives are set."""
    directives: dict[str, object] = {
        "language_level": 3,
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        "nonecheck": False,
        "embedsignature": True,
    }
    if debug:
        directives.update(boundscheck=True, wraparound=True, initializedcheck=True, linetrace=True, profile=True)
    return directives


def compile_args(debug: bool) -> tuple[list[str], list[tuple[str, str | None]]]:
    # -ffp-contract=off: no fused multiply-add, so the compiled kernels round exactly like their NumPy twins on
    # every target (aarch64 GCC contracts a*b+c into FMA by default).
    args = ["-ffp-contract=off", "-fno-strict-aliasing"]
    macros: list[tuple[str, str | None]] = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]
    if debug:
        args += ["-O0", "-g"]
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    else:
        args += ["-O3"]
    return args, macros


# Builds for a wider instruction set: file-name suffix → compiler flags. x86-64 targets only.
ISA_FLAGS: dict[str, list[str]] = {"_avx2": ["-mavx2"]}


def isa_flags(pyx: Path) -> list[str] | None:
    """Extra flags for ``pyx``: [] for a baseline kernel, the ISA's flags for a variant, None to leave it out (a
    variant whose instruction set the target does not have). The target is sysconfig's platform, which a cross
    build sets (``_PYTHON_HOST_PLATFORM``), not the machine running setup.py."""
    for suffix, flags in ISA_FLAGS.items():
        if pyx.stem.endswith(suffix):
            return flags if sysconfig.get_platform().endswith(("x86_64", "amd64")) else None
    return []


def shared_code(pyx: Path) -> list[str]:
    """The lone ``native/*.pxd`` files (shared code, no .pyx of their own) that ``pyx`` cimports."""
    text = pyx.read_text()
    return [
        str(pxd.relative_to(HERE))
        for pxd in sorted(NATIVE.glob("*.pxd"))
        if not pxd.with_suffix(".pyx").exists() and re.search(rf"^\s*(from|cimport)\s+{pxd.stem}\b", text, re.M)
    ]


def native_extensions() -> list[Extension]:
    pyx_files = sorted(NATIVE.glob("*.pyx"))
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError as exc:  # no Cython or NumPy in the build environment: pure-NumPy install
        if REQUIRE_NATIVE:
            raise
        print(f"edge: building without native kernels ({exc}); the NumPy twins will be used", file=sys.stderr)
        return []
    args, macros = compile_args(DEBUG)
    extensions = [
        Extension(
            f"edge._native.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[numpy.get_include()],
            extra_compile_args=args + flags,
            define_macros=macros,
            depends=shared_code(pyx),  # rebuilt when the shared code it cimports changes
            optional=not REQUIRE_NATIVE,
        )
        for pyx in pyx_files
        if (flags := isa_flags(pyx)) is not None
    ]
    return cythonize(
        extensions,
        compiler_directives=cython_directives(DEBUG),
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        quiet=True,
    )


def packages() -> list[str]:
    """``edge*`` as plain packages (a namespace scan walks the whole checkout: venvs, build/, an arm64 root with /proc
    mounted), plus the simulator, whose folder is the top-level ``sim/`` (``package-dir`` in pyproject.toml) — when
    it is there: the aarch64 cross build runs this file in a copy holding only ``edge/`` and ``native/``."""
    simulator = ["edge.sim"] if (HERE / "sim" / "__init__.py").is_file() else []
    return [*find_packages(include=["edge", "edge.*"]), *simulator]


setup(ext_modules=native_extensions(), packages=packages())
