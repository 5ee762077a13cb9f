"""What every ``tests/bench`` script writes with ``--json``: ``{"machine": {...}, "figures": {...}}``.

The machine block (:func:`edge.models.machine.machine_block`: CPU model, int8 features, cores, load average when the
benchmark started, versions) is taken by :func:`start` before any timing, so the load it records is the load the
figures were measured under. Scripts import this module as ``_report`` (``tests/bench`` is ``sys.path[0]`` when a
script runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.models.machine import format_features, machine_block

__all__ = ["start", "write_json"]


def start() -> dict[str, Any]:
    """The machine block now; prints the CPU line and the load so a pasted table carries them too."""
    machine = machine_block()
    print(format_features(machine))
    print(f"load      {machine['load_average_start']} (1/5/15 min) on {machine['cores_usable']} usable core(s)")
    return machine


def write_json(path: Path | None, figures: dict[str, Any], machine: dict[str, Any]) -> None:
    """Write ``{"machine": machine, "figures": figures}`` to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine, "figures": figures}, indent=2) + "\n")
    print(f"wrote {path}")
