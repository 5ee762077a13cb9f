"""The import graph between areas runs one way: every import in ``edge/`` and ``sim/`` points to a lower layer.

Each module of ``edge/`` and ``sim/`` (installed as ``edge.sim``) is parsed with :mod:`ast`; every import counts,
those inside functions and under ``TYPE_CHECKING`` included. A module's area is the package right under ``edge``
(``edge.loop.runner`` → ``loop``), except the command-line modules (``edge/cli.py``, ``edge/__main__.py``, every
``<area>/cli.py`` and ``sim/demo.py``, the ``edge demo`` command), which form the ``cli`` area on top. An area may
import its own modules and any area of a lower layer, never one of its own layer or above; so the area graph cannot
have a cycle, which is asserted as well.

Where the layers come from (DESIGN.md, "Growing outward"): contracts ← kernels ← models ← loop ← telemetry ←
collector, sim and the CLI on top.

* ``drift`` (sketch façade, metrics, reference profile) imports only kernels and the bottom; telemetry, the collector
  and the tooling use it, so it sits right above kernels.
* ``device`` (the ``edge run`` service) wires the loop to telemetry: above both, beside the collector (neither
  imports the other), below the CLI.
* ``tooling`` (quantizer, exporters, test-model builders) and ``sim`` use the runtime and are used by nothing in it.
* ``_native`` (the compiled kernels) is bottom-level code that ``edge.kernels`` fronts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# command modules that are not named cli.py: sim/demo.py is `edge demo` (its parser, progress line and prints)
COMMAND_MODULES = ("edge.cli", "edge.__main__", "edge.sim.demo")

# lowest first; an area imports only from areas of lower layers (and from itself)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("edge", "config", "schema", "_kernel_checks", "contracts", "_native"),  # "edge": the package's own __init__
    ("kernels",),
    ("drift",),
    ("models",),
    ("loop",),
    ("telemetry", "io"),  # io: robot I/O adapters (sources, sinks, the recorder) over loop's SensorSlot
    ("device", "collector"),
    ("sim", "tooling"),
    ("cli",),
)


@dataclass(frozen=True)
class Import:
    """One import statement: ``module`` (dotted name of the importer) imports ``target`` at ``path:line``."""

    module: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}"


def area_of(module: str) -> str:
    """``edge.loop.runner`` → ``loop``; ``edge`` → ``edge``; the CLI modules → ``cli``."""
    parts = module.split(".")
    if module in COMMAND_MODULES or (len(parts) == 3 and parts[2] == "cli"):
        return "cli"
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(source: str, module: str, path: str, *, is_package: bool = False) -> list[Import]:
    """Every import of an ``edge`` module in ``source`` (the text of ``module``), wherever it stands.

    ``from edge import kernels`` counts as an import of ``edge.kernels``, ``from edge import __version__`` as one of
    ``edge``; relative imports are resolved against ``module`` (a package's ``__init__`` when ``is_package``).
    """
    found: list[Import] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, path, node.lineno) for a in node.names if _ours(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            if not _ours(base):
                continue
            if base == "edge":  # from edge import kernels, __version__: each name is a submodule or the root
                found += [Import(module, _root_name(a.name), path, node.lineno) for a in node.names]
            else:
                found.append(Import(module, base, path, node.lineno))
    return found


def _ours(name: str) -> bool:
    return name == "edge" or name.startswith("edge.")


def _root_name(name: str) -> str:
    return "edge" if name.startswith("__") else f"edge.{name}"


def violations(imports: list[Import], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """One line per import that does not point to the importer's own area or a lower layer, or whose area has
    no layer."""
    rank = {area: i for i, layer in enumerate(layers) for area in layer}
    out = []
    for imp in imports:
        src, dst = area_of(imp.module), area_of(imp.target)
        missing = [a for a in (src, dst) if a not in rank]
        if missing:
            out.append(f"{imp}: area {missing[0]!r} has no layer in tests/test_architecture.py LAYERS")
        elif src != dst and rank[dst] >= rank[src]:
            allowed = [a for layer in layers[: rank[src]] for a in layer]
            out.append(f"{imp}: {src} may import only {', '.join(allowed) or 'nothing'} (and itself), not {dst}")
    return out


def area_cycle(imports: list[Import]) -> list[str]:
    """A cycle of areas (``[a, b, ..., a]``) in the import graph, or ``[]`` when there is none."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        src, dst = area_of(imp.module), area_of(imp.target)
        if src != dst:
            graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(area: str) -> list[str]:
        state[area] = 1
        path.append(area)
        for nxt in sorted(graph.get(area, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[area] = 2
        return []

    for area in sorted(graph):
        if area not in state and (cycle := visit(area)):
            return cycle
    return []


def project_imports() -> list[Import]:
    """The imports of every module under ``edge/`` and ``sim/`` (``sim/`` is ``edge.sim``)."""
    found = []
    for top, package in (("edge", "edge"), ("sim", "edge.sim")):
        for file in sorted((REPO / top).rglob("*.py")):
            rel = file.relative_to(REPO / top).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            module = ".".join([package, *parts])
            path = str(file.relative_to(REPO))
            found += imports_of(file.read_text(), module, path, is_package=file.name == "__init__.py")
    return found


# ---------------------------------------------------------------------------------------------- the project


def test_every_import_between_areas_points_down() -> None:
    imports = project_imports()
    assert len(imports) > 100, "expected the project's imports, found almost none: is REPO right?"
    bad = violations(imports)
    assert not bad, "imports against the layering (LAYERS in tests/test_architecture.py):\n" + "\n".join(bad)


def test_the_area_graph_has_no_cycle() -> None:
    cycle = area_cycle(project_imports())
    assert not cycle, f"areas import each other in a cycle: {' -> '.join(cycle)}"


def test_every_area_on_disk_has_a_layer() -> None:
    areas = {p.name for p in (REPO / "edge").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    areas |= {p.stem for p in (REPO / "edge").glob("*.py") if p.stem not in ("__init__", "__main__", "cli")}
    placed = {a for layer in LAYERS for a in layer}
    assert areas - placed == set(), f"areas without a layer in LAYERS: {sorted(areas - placed)}"


# ---------------------------------------------------------------------------------------------- the checker


SYNTHETIC = {
    "edge.contracts.frame": "from edge.errors import ConfigError\n",
    "edge.loop.runner": "from edge.contracts import FrameContext\nfrom . import pipeline\n",
    "edge.telemetry.tap": "import numpy\n\ndef bind():\n    from edge.loop.runner import Loop\n",
    "edge.models.cli": "from edge import kernels, __version__\n",
}


def _synthetic(extra: dict[str, str]) -> list[Import]:
    found = []
    for module, source in {**SYNTHETIC, **extra}.items():
        found += imports_of(source, module, module.replace(".", "/") + ".py")
    return found


def test_checker_reads_every_kind_of_import() -> None:
    got = {(i.module, i.target, i.line) for i in _synthetic({})}
    assert got == {
        ("edge.contracts.frame", "edge.errors", 1),
        ("edge.loop.runner", "edge.contracts", 1),
        ("edge.loop.runner", "edge.loop", 2),  # relative: from . import pipeline
        ("edge.telemetry.tap", "edge.loop.runner", 4),  # inside a function
        ("edge.models.cli", "edge.kernels", 1),
        ("edge.models.cli", "edge", 1),
    }
    assert area_of("edge.models.cli") == area_of("edge.sim.cli") == area_of("edge.__main__") == "cli"
    assert area_of("edge.sim.demo") == "cli" and area_of("edge.sim.harness") == "sim"
    assert area_of("edge.loop.config") == "loop" and area_of("edge") == "edge"


def test_checker_passes_a_graph_that_points_down() -> None:
    imports = _synthetic({})
    assert violations(imports) == []
    assert area_cycle(imports) == []


def test_checker_names_the_module_and_the_import_that_points_up() -> None:
    imports = _synthetic({"edge.loop.frame_tap": "import os\n\n\ndef f():\n    from edge.telemetry.tap import bind\n"})
    assert violations(imports) == [
        "edge/loop/frame_tap.py:5: edge.loop.frame_tap imports edge.telemetry.tap: loop may import only errors, "
        "edge, config, schema, _kernel_checks, contracts, _native, kernels, drift, models (and itself), not telemetry"
    ]
    assert area_cycle(imports) == ["loop", "telemetry", "loop"]


def test_checker_refuses_an_import_within_one_layer_and_an_area_without_a_layer() -> None:
    imports = _synthetic({"edge.device.service": "from edge.collector.server import CollectorServer\n"})
    (line,) = violations(imports)
    assert line.startswith("edge/device/service.py:1: edge.device.service imports edge.collector.server: device may")
    assert line.endswith("not collector")
    (line,) = violations(_synthetic({"edge.robots.ros": "from edge.loop.runner import Loop\n"}))
    assert "edge.robots.ros imports edge.loop.runner: area 'robots' has no layer" in line


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ([("edge.a.x", "edge.b.y"), ("edge.b.y", "edge.c.z"), ("edge.c.z", "edge.a.w")], ["a", "b", "c", "a"]),
        ([("edge.a.x", "edge.b.y"), ("edge.a.x", "edge.c.z"), ("edge.b.y", "edge.c.z")], []),
        ([("edge.a.x", "edge.a.y"), ("edge.a.y", "edge.a.x")], []),  # within one area: not a cycle between areas
    ],
)
def test_checker_finds_a_cycle_between_areas(edges: list[tuple[str, str]], cycle: list[str]) -> None:
    assert area_cycle([Import(a, b, "x.py", 1) for a, b in edges]) == cycle
