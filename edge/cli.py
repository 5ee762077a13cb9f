"""The ``edge`` command line: a thin layer that parses arguments and calls into the package.

Each area adds its subcommands through a ``register(subparsers)`` function listed in ``_COMMAND_MODULES``, so this
file stays small.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edge import __version__

# modules that contribute subcommands: each has register(subparsers: argparse._SubParsersAction) -> None
_COMMAND_MODULES: tuple[str, ...] = (
    "edge.models.cli",
    "edge.loop.cli",
    "edge.telemetry.cli",
    "edge.collector.cli",
    "edge.sim.cli",
)


def version_line() -> str:
    """``edge <version> (kernels: native|numpy, numpy <version>, python <version>)``."""
    import numpy

    from edge import kernels

    py = ".".join(map(str, sys.version_info[:3]))
    return f"edge {__version__} (kernels: {kernels.BACKEND}, numpy {numpy.__version__}, python {py})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="print the version and the active kernel backend")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge", description="Embedded edge-inference runtime for vehicles and robots."
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
