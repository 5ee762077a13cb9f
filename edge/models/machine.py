"""The machine a figure was measured on: CPU model, the instructions int8 inference depends on, cores, load.

Whether an int8 model beats its float twin depends on the CPU: x86 runs int8 convolutions fastest with VNNI
(``avx512_vnni``, ``avx_vnni``), ARM with the dot-product (``asimddp``) and int8 matrix (``i8mm``) extensions.
Every benchmark JSON carries :func:`machine_block` so figures from different machines are never compared blindly,
and ``edge bench`` prints :func:`format_features`.

Reads ``/proc/cpuinfo`` and ``/proc/loadavg`` (Linux); elsewhere the fields are empty, never an error.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["INT8_FEATURES", "cpu_info", "format_features", "machine_block", "parse_cpuinfo"]

# flags that decide int8 speed, per architecture family, in the spelling of /proc/cpuinfo
INT8_FEATURES: dict[str, tuple[str, ...]] = {
    "x86": ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"),
    "arm": ("asimd", "asimddp", "i8mm", "sve", "bf16"),
}

_VERSIONS = ("numpy", "onnxruntime", "ai-edge-litert")


def _family(arch: str) -> str:
    return "arm" if arch.startswith(("aarch64", "arm")) else "x86"


def parse_cpuinfo(text: str, arch: str) -> dict[str, Any]:
    """``{"cpu_model", "arch", "int8_features": {flag: bool}}`` from the text of ``/proc/cpuinfo``.

    x86 lists ``flags`` and ``model name``; ARM lists ``Features`` and, at best, ``CPU implementer``/``CPU part``
    (no model name), which are reported as the model then.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in fields:
            fields[key] = value.strip()
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or fields.get("hardware") or ""
    if not model and "cpu implementer" in fields:
        model = f"implementer {fields['cpu implementer']} part {fields.get('cpu part', '?')}"
    family = _family(arch)
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "arch": arch,
        "int8_features": {f: f in flags for f in INT8_FEATURES[family]},
    }


def cpu_info() -> dict[str, Any]:
    """:func:`parse_cpuinfo` of this machine (empty features where ``/proc/cpuinfo`` cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text, platform.machine())


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_block() -> dict[str, Any]:
    """CPU model and int8 features, cores (all and usable by this process), load average now (1, 5, 15 min), the
    Python and runtime versions and the kernel backend (and its instruction set: ``"avx2"`` where the AVX2 builds are
    in use, else ``"baseline"``). Call it when a benchmark starts: the load is the load then."""
    from edge.kernels import BACKEND, ISA

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        **cpu_info(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "load_average_start": load,
        "python": sys.version.split()[0],
        "versions": {d: _version(d) for d in _VERSIONS},
        "kernel_backend": BACKEND,
        "kernel_isa": ISA,
    }


def format_features(info: dict[str, Any]) -> str:
    """One line: ``cpu  AMD EPYC (x86_64): avx2 yes, avx512_vnni no, ...``."""
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["int8_features"].items())
    return f"cpu       {info['cpu_model']} ({info['arch']}): {flags}"
