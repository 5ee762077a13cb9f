"""``edge sim run SCENARIO.toml`` and ``edge demo``: closed-loop scenario runs from the command line.

``edge sim run`` exits 0 when every assertion of the scenario holds, 1 when one fails (each failure printed); errors
are raised, and :func:`edge.cli.main` prints them and picks the exit code (2 on bad input).
``--json`` prints the summary as JSON; ``--report DIR`` writes ``summary.json`` and the PNG plots there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

__all__ = ["register"]


def _scenario(text: str):
    from edge.sim.scenario import builtin_scenario, load_scenario

    return load_scenario(text) if text.endswith(".toml") or Path(text).is_file() else builtin_scenario(text)


def _progress_line(t_s: float, duration_s: float, res) -> None:
    first = res.first_alert()
    alarm = f"drift alarm at {first.t_s:.0f} s" if first is not None else "no alarm"
    lat = res.trace.view("lateral_m")
    now, worst = (abs(lat[-1]), float(abs(lat).max())) if len(lat) else (0.0, 0.0)
    print(
        f"\r  {res.scenario.name:<16} t={t_s:5.1f}/{duration_s:.0f} s  lateral {now:4.2f} m (max {worst:4.2f} m)  "
        f"{alarm}   ",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _run(args: argparse.Namespace) -> int:
    from edge.sim.harness import HarnessOptions, run_scenario

    scenario = _scenario(args.scenario)
    with tempfile.TemporaryDirectory(prefix="edge-sim-") as tmp:
        opts = HarnessOptions(
            workdir=Path(tmp),
            backend=args.backend,
            package=None if args.package is None else Path(args.package),
            realtime=args.realtime,
            endpoint=args.endpoint,
            progress=None if args.json or args.quiet else _progress_line,
        )
        try:
            result = run_scenario(scenario, opts)
        finally:
            if opts.progress is not None:
                print(file=sys.stderr)  # end the progress line, also before an error's line
    summary = result.summary()
    if args.report:
        from edge.sim.report import write_report

        paths = write_report(result, Path(args.report))
        summary["report"] = [str(p) for p in paths]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(describe(summary))
    return 0 if result.passed else 1


def describe(s: dict) -> str:
    """A few human lines from a run summary."""
    alarm = f"drift alarm at {s['first_drift_alert_s']:.1f} s" if s["first_drift_alert_s"] is not None else "no alarm"
    lines = [
        f"{s['scenario']}: {'PASS' if s['passed'] else 'FAIL'} — {s['frames']} frames in {s['wall_s']:.1f} s; "
        f"lateral error max {s['max_lateral_error_m']:.2f} m (rms {s['rms_lateral_error_m']:.3f} m), "
        f"{s['lane_departures']} lane departures, {s['deadline_misses']} deadline misses, "
        f"{s['fallback_frames']} fallback frames; {alarm}"
    ]
    lines += [f"  event at {e['t_s']:.1f} s: {e['event']}" for e in s["events"]]
    lines += [f"  FAILED {f}" for f in s["failures"]]
    if s.get("report"):
        lines.append(f"  report: {Path(s['report'][0]).parent}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sim run`` and ``demo``."""
    sim = subparsers.add_parser("sim", help="closed-loop simulator runs")
    sub = sim.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    p = sub.add_parser("run", help="run a scenario closed-loop; exit 1 when one of its assertions fails")
    p.add_argument("scenario", help="a scenario .toml file or a built-in name (nominal, fog, ...)")
    p.add_argument(
        "--backend", choices=("onnx", "tflite"), default="onnx",
        help="the int8 model's runtime: lane-keeper.tgz on onnxruntime, lane-keeper-tflite.tgz on LiteRT",
    )  # fmt: skip
    p.add_argument("--package", help="drive with this model package instead of the shipped one")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", metavar="DIR", help="write summary.json and PNG plots into DIR")
    p.add_argument("--realtime", action="store_true", help="pace the run in wall time (default: lockstep)")
    p.add_argument("--endpoint", help="an external collector (default: one started in-process)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(handler=_run)
    from edge.sim.demo import register_demo

    register_demo(subparsers)
