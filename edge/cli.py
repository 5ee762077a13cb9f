"""The ``edge`` command line: a thin layer that parses arguments and calls into the package.

Each area adds its subcommands through a ``register(subparsers)`` function in its own cli module; :data:`COMMANDS`
names, for every top-level command, that module, its one-line help and the extra it needs. Only the module of the
command being run is imported (``edge --help`` imports none), so ``edge run``, ``edge bench`` and ``edge model``
start on a device install without ``sim/``, the collector, scipy or matplotlib.

:func:`main` is the one place that turns errors into exit codes (the README's "Exit codes"): handlers raise
:class:`~edge.errors.EdgeError`\\ s and return 0 or :data:`CHECK_FAILED`; ``main`` prints one ``edge: Kind: message``
line on stderr and exits with the code of the error's class in :data:`EXIT_CODES`. Any other exception is a bug: its
traceback is printed and the code is :data:`INTERNAL_ERROR`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from edge import __version__
from edge.errors import ConfigError, EdgeError, IntegrityError, SensorFault, UnavailableError

OK = 0
CHECK_FAILED = 1  # the command ran and its check said no: package integrity, a scenario's assertions
BAD_INPUT = 2  # usage, configuration, a missing or unreadable file, a model the runtime refuses
NOT_RUN = 3  # something the command needs is missing here: an extra, a runtime, a provider (strict), a sensor,
# or the system refused it (a permission, a read-only disk)
INTERNAL_ERROR = 4  # a bug in edge: the traceback is printed
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

# an error's exit code: the first class it is an instance of, most specific first
EXIT_CODES: tuple[tuple[type[EdgeError], int], ...] = (
    (IntegrityError, CHECK_FAILED),
    (UnavailableError, NOT_RUN),
    (SensorFault, NOT_RUN),
    (EdgeError, BAD_INPUT),  # ConfigError, ModelError, ShapeError, ProtocolError
)


@dataclass(frozen=True)
class Command:
    """A top-level command: the module whose ``register`` adds it, its help line, the extra it needs (if any)."""

    module: str
    help: str
    extra: str | None = None


COMMANDS: dict[str, Command] = {
    "model": Command("edge.models.cli", "prepare and check a model package"),
    "bench": Command("edge.models.cli", "latency of a model through edge and bare through its runtime"),
    "run": Command("edge.loop.cli", "run the on-device loop described by a device.toml until SIGTERM"),
    "service": Command("edge.loop.cli", "service helpers (systemd)"),
    "replay": Command(
        "edge.io.cli", "replay an MCAP recording through the loop with a candidate model and compare decisions"
    ),
    "captures": Command("edge.io.cli", "the collector's captured frames", "collector"),
    "keys": Command("edge.telemetry.cli", "CURVE key pairs for the encrypted telemetry link"),
    "collector": Command(
        "edge.collector.cli", "run the fleet drift collector (ingest, store, drift, alerts, HTTP)", "collector"
    ),
    "sim": Command("edge.sim.cli", "closed-loop simulator runs", "sim"),
    "demo": Command("edge.sim.cli", "collector + dashboard + the car in nominal weather, then fog", "sim"),
}

# optional modules and the extra that installs them (a command's own extra is named first)
_OPTIONAL = {
    "edge.sim": "sim",
    "matplotlib": "sim",
    "scipy": "collector",
    "edge.collector": "collector",
    "ai_edge_litert": "tflite",
}


def version_line() -> str:
    """``edge <version> (kernels: native|numpy[ avx2], numpy <version>, python <version>)``."""
    import numpy

    from edge import kernels

    py = ".".join(map(str, sys.version_info[:3]))
    isa = " avx2" if kernels.ISA == "avx2" else ""
    return f"edge {__version__} (kernels: {kernels.BACKEND}{isa}, numpy {numpy.__version__}, python {py})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="print the version and the active kernel backend")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(version_line())
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``edge`` parser listing every command of :data:`COMMANDS`; only ``command``'s module is imported and
    registers its real subparsers, the others stay one-line placeholders."""
    parser = argparse.ArgumentParser(
        prog="edge",
        description="Embedded edge-inference runtime for vehicles and robots.",
        epilog="exit codes: 0 ok, 1 a check failed, 2 bad input, 3 could not run here, 4 internal error (a bug)",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = COMMANDS[command].module if command in COMMANDS else None
    for name, cmd in COMMANDS.items():
        if cmd.module == chosen:
            importlib.import_module(cmd.module).register(subparsers)
            chosen = None  # registered: its module's other commands are in already
        elif name not in subparsers.choices:
            subparsers.add_parser(name, help=cmd.help, add_help=False)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The top-level command in ``argv`` (its first word that is not an option), or ``None``."""
    return next((a for a in argv if not a.startswith("-")), None)


def unavailable(exc: ModuleNotFoundError, command: str | None) -> UnavailableError | None:
    """The :class:`UnavailableError` naming the fix when ``exc`` is an optional module missing here, else ``None``."""
    missing = exc.name or ""
    extra = next((e for mod, e in _OPTIONAL.items() if missing == mod or missing.startswith(mod + ".")), None)
    if extra is None:
        return None
    cmd = COMMANDS.get(command or "")
    extra = (cmd.extra if cmd else None) or extra
    what = f"`edge {command}`" if command else "edge"
    return UnavailableError(f"{what} needs {missing!r}, which is not installed here: pip install 'edge[{extra}]'")


def foreign_error(exc: BaseException, command: str | None) -> EdgeError | None:
    """The ``edge`` error for a foreign one that reached :func:`main`, or ``None`` when it is a bug.

    A missing optional module: :class:`UnavailableError` naming the extra (:func:`unavailable`). An ``OSError``:
    a path that does not exist is bad input (:class:`ConfigError`); anything else the system refused (a
    permission, a read-only disk) is an :class:`UnavailableError`.
    """
    if isinstance(exc, ModuleNotFoundError):
        return unavailable(exc, command)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        why = exc.strerror or str(exc)
        if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            return ConfigError(f"{where}{why}")
        return UnavailableError(f"{where}{why}")
    return None


def exit_code(exc: EdgeError) -> int:
    """The exit code of ``exc``'s class in :data:`EXIT_CODES`."""
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


def _report(exc: EdgeError) -> int:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    print(f"edge: {type(exc).__name__}: {' / '.join(lines)}", file=sys.stderr)
    return exit_code(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edge`` with ``argv`` (default: the process arguments); return the exit code (README "Exit codes")."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_of(argv)
    try:
        parser = build_parser(command)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version (0) or a usage error (2, message printed by argparse)
            return OK if exc.code is None else exc.code if isinstance(exc.code, int) else BAD_INPUT
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return BAD_INPUT
        return int(handler(args) or 0)
    except EdgeError as exc:
        return _report(exc)
    except (ModuleNotFoundError, OSError) as exc:
        mapped = foreign_error(exc, command)
        return _bug() if mapped is None else _report(mapped)
    except KeyboardInterrupt:
        print("edge: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception:
        return _bug()


def _bug() -> int:
    traceback.print_exc()
    print("edge: internal error (a bug in edge; please report it with the traceback above)", file=sys.stderr)
    return INTERNAL_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
