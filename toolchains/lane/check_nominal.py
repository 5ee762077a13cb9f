"""Nominal driving over many seeds: lane keeping and false drift alarms (the alert policy on autocorrelated data).

    .venv/bin/python toolchains/lane/check_nominal.py [--seeds 20] [--duration 60] [--package PKG]

Runs the shipped ``nominal`` scenario closed-loop in lockstep with world seeds 1..N (camera and sensor noise, and
so the model's trajectory, differ per seed) and prints per seed the max lateral error, lane departures and the
alerts the collector opened. Exit 1 when any seed departs the lane or raises an alert.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path

from edge.sim import builtin_scenario
from edge.sim.harness import HarnessOptions, run_scenario


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="scenario seconds per seed")
    ap.add_argument("--package", type=Path)
    args = ap.parse_args(argv)
    logging.getLogger("edge").setLevel(logging.ERROR)
    base = builtin_scenario("nominal")
    bad = 0
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for seed in range(1, args.seeds + 1):
            world = dataclasses.replace(base.world, seed=seed, duration_s=args.duration)
            res = run_scenario(dataclasses.replace(base, world=world), HarnessOptions(workdir=Path(d) / str(seed),
                               package=args.package))  # fmt: skip
            worst = max(worst, res.max_lateral_m)
            alerts = ", ".join(f"{a.metric}/{a.feature}@{a.t_s:.0f}s" for a in res.alerts) or "none"
            bad += bool(res.alerts) or res.lane_departures > 0
            print(f"seed {seed:2d}: max lateral {res.max_lateral_m:.2f} m, {res.lane_departures} departures, "
                  f"alerts: {alerts}", flush=True)  # fmt: skip
    print(f"{args.seeds} seeds × {args.duration:.0f} s: {bad} with an alert or a departure; worst {worst:.2f} m")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
