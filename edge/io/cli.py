"""``edge replay REC.mcap --package candidate.tgz [--config device.toml] [--report DIR]`` and
``edge captures export DB --out X.mcap [--device ID]``."""

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


def _captures_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.collector.stores import open_store, store_url
    from edge.errors import ConfigError
    from edge.io.capture_export import export_captures

    scheme, target = store_url(args.db)
    if scheme == "sqlite" and not Path(target).is_file():  # opening would create an empty store
        raise ConfigError(f"captures export: expected a collector database, got {target} (not found)")
    store = open_store(args.db)
    try:
        rows = store.iter_records("capture")
        if args.device:
            rows = (r for r in rows if r[0] == args.device)
        result = export_captures(rows, args.out)
    finally:
        store.close()
    total = sum(result.images.values())
    per_device = ", ".join(f"{d}: {n}" for d, n in sorted(result.images.items())) or "none"
    print(f"edge captures export: {total} captures to {result.path} ({per_device})")
    for why, n in sorted(result.skipped.items()):
        print(f"  skipped {n}: {why}")
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
    c = subparsers.add_parser("captures", help="the collector's captured frames")
    sub = c.add_subparsers(dest="captures_command", metavar="SUBCOMMAND", required=True)
    e = sub.add_parser("export", help="write the collector's capture records into an MCAP file (Foxglove)")
    e.add_argument("db", metavar="DB", help="the collector's --db: a SQLite path, sqlite:///PATH or postgresql://...")
    e.add_argument("--out", required=True, metavar="X.mcap", help="the MCAP file to write")
    e.add_argument("--device", help="only this device's captures")
    e.set_defaults(handler=_captures_export)
