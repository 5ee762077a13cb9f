"""``edge demo``: the whole story in one command — a fleet collector with its dashboard, the car keeping its lane
on a clear day (nominal), then fog rolling in and the collector raising the drift alarm; a live progress line, a
summary, and where the report and the dashboard are."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.errors import EdgeError

__all__ = ["register_demo", "run_demo"]

SCENARIOS = ("nominal", "fog")


def run_demo(
    out: Path,
    *,
    http: tuple[str, int] = ("127.0.0.1", 8080),
    serve: bool = False,
    scenarios: tuple[Any, ...] | None = None,
) -> int:
    """Run the demo into ``out`` (reports and the collector's database); with ``serve``, keep the dashboard up
    until Ctrl-C. ``scenarios``: instead of the shipped nominal and fog (tests run shorter ones). Returns the exit
    status (1 when a scenario's assertions fail)."""
    from edge.sim.cli import _progress_line, describe
    from edge.sim.harness import HarnessOptions, builtin_models, run_scenario
    from edge.sim.harness_collector import SimCollector
    from edge.sim.report import write_report
    from edge.sim.scenario import builtin_scenario

    # the alert log lines would break the progress line; the summary says when the alarm fired
    collector_log = logging.getLogger("edge.collector")
    level = collector_log.level
    collector_log.setLevel(logging.ERROR)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        collector = SimCollector(out, builtin_models(), http=http)
    except EdgeError:  # the port is taken: any free port
        collector = SimCollector(out, builtin_models(), http=(http[0], 0))
    status = 0
    lines = []
    try:
        print(f"edge demo: fleet collector on {collector.endpoint}, dashboard {collector.dashboard_url}", flush=True)
        runs = scenarios if scenarios is not None else tuple(builtin_scenario(n) for n in SCENARIOS)
        for scenario in runs:
            name = scenario.name
            print(f"scenario {name}: {scenario.description}", flush=True)
            opts = HarnessOptions(workdir=out / name / "run", collector=collector, progress=_progress_line)
            result = run_scenario(scenario, opts)
            print(file=sys.stderr)
            summary = result.summary()
            summary["report"] = [str(p) for p in write_report(result, out / name)]
            lines.append(describe(summary))
            print(lines[-1], flush=True)
            status |= 0 if result.passed else 1
        print("\nsummary")
        for text in lines:
            print("  " + text.splitlines()[0])
        print(f"reports (summary.json + PNG plots): {', '.join(str(out / s.name) for s in runs)}")
        where = "up until Ctrl-C" if serve else "stopped with the demo; --serve keeps it up"
        print(f"dashboard: {collector.dashboard_url} ({where}; collector database {out / 'collector.db'})")
        if serve:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            print("serving the dashboard; Ctrl-C to stop", flush=True)
            stop.wait()
    finally:
        collector.close()
        collector_log.setLevel(level)
    return status


def _run(args: argparse.Namespace) -> int:
    serve = sys.stdin.isatty() if args.serve is None else args.serve
    return run_demo(Path(args.out), http=args.http, serve=serve)  # errors: edge.cli.main reports them


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
    return host or "127.0.0.1", int(port)


def register_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="collector + dashboard + the car in nominal weather, then fog")
    p.add_argument("--out", default="edge-demo", help="folder for the reports and the collector database")
    p.add_argument("--http", type=_host_port, default=("127.0.0.1", 8080), metavar="HOST:PORT", help="dashboard")
    p.add_argument("--serve", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the dashboard up until Ctrl-C (default: when run from a terminal)")  # fmt: skip
    p.set_defaults(handler=_run)
