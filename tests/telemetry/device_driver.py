"""A device process for the SIGKILL test: a loop producing frames on a lockstep clock and publishing windows.

``python device_driver.py BASE_DIR ENDPOINT --frames N`` (N = 0: only replay the spool; N < 0: run until killed).
It paces itself at about 1 ms of wall time per frame and, at each window boundary, waits for the publisher to
take the closed window, so it never drops one. With N >= 0 it waits for every record to be acknowledged, closes
and prints ``done <boot_id>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edge.contracts import FrameContext
from edge.loop.clock import LockstepClock
from edge.telemetry import tap_from_config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("base_dir", type=Path)
    p.add_argument("endpoint")
    p.add_argument("--frames", type=int, default=-1)
    p.add_argument("--start-ns", type=int, default=0)
    args = p.parse_args()
    table = {
        "endpoint": args.endpoint,
        "window_s": 0.1,
        "fsync": "always",
        "spool_dir": "spool",
        "ack_timeout_s": 0.5,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.2,
    }
    tap = tap_from_config(table, device_id="dev-kill", base_dir=args.base_dir)
    print(f"boot {tap.boot_id}", flush=True)
    rng = np.random.default_rng(3)
    clock = LockstepClock(args.start_ns)
    ctx = FrameContext(3)
    ctx.outputs = (np.zeros((1, 4), np.float32),)
    ctx.model_version = "m@1"
    if args.frames != 0:
        tap.bind(ctx, None)
    i = 0
    while args.frames < 0 or i < args.frames:
        ctx.seq, ctx.tick_ns = i, clock.now_ns()
        ctx.stats[:] = rng.uniform(0, 255, (2, 3))
        ctx.stage_us[:] = rng.uniform(1, 900, 6)
        tap.on_frame(ctx)
        ring = tap._ring
        while any(s == 2 for s in ring.state):
            time.sleep(0.001)
        time.sleep(0.001)
        clock.advance(10_000_000)
        i += 1
    deadline = time.monotonic() + 30
    while tap.publisher.spool.pending or tap.publisher.link_up is False:
        if time.monotonic() > deadline:
            print("timeout waiting for acks", flush=True)
            return 1
        time.sleep(0.01)
    tap.close()
    print(f"done {tap.boot_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
