"""``edge replay REC.mcap --package candidate.tgz [--config device.toml] [--report DIR]`` and
``edge captures export DB --out X.mcap``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _replay(args: argparse.Namespace) -> int:
    from edge.cli import CHECK_FAILED
    from edge.device.replay import replay

    report = replay(
        args.recording, args.package, config=args.config, tolerance=args.tolerance, max_frames=args.max_frames
    )
    for line in report.lines():
        print(line)
    if args.report:
        files = report.write(args.report)
        print(f"  report: {', '.join(str(f) for f in files)}")
        if not any(f.suffix == ".png" for f in files):
            print("  (no plot: matplotlib is not installed here)")
    if args.min_agreement is not None and 100 * report.diff.agreement < args.min_agreement:
        print(f"edge replay: agreement below {args.min_agreement:g} %")
        return CHECK_FAILED
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay", help="replay an MCAP recording through the loop with a candidate model and compare decisions"
    )
    p.add_argument("recording", metavar="REC.mcap", help="a recording made by edge run --record (its first file)")
    p.add_argument("--package", required=True, help="the candidate model package")
    p.add_argument("--config", help="device.toml to build the loop from (default: the one stored in the recording)")
    p.add_argument("--report", metavar="DIR", help="write summary.json, frames.csv and commands.png into DIR")
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="largest command difference that still agrees (default 0)"
    )
    p.add_argument("--max-frames", type=int, help="replay only the first N frames")
    p.add_argument("--min-agreement", type=float, metavar="PCT", help="exit 1 when the agreement (%%) is below PCT")
    p.set_defaults(handler=_replay)
