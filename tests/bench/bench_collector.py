"""Collector ingest benchmark: window records with 32 features, from a device process to the collector.

Times, in the same run and with the same sender (a separate process with a DEALER, records encoded beforehand by
the telemetry codec, 64 records per message, at most 8 messages in flight):
  * the ceiling: a bare pyzmq ROUTER that receives, ``msgpack.unpackb``s every frame and answers a fixed reply;
  * ``edge``: the full collector (shared validator, SQLite WAL commit with synchronous=FULL, ack after commit,
    drift engine scoring and alert policy over 32 features), no HTTP.

    python tests/bench/bench_collector.py [--quick] [--json PATH]

Prints a table (records/s per run: median; message round trip: median and p99, ms; ratio) and with --json writes
{"figures": {"ingest_records_per_s": ..., "ingest_vs_ceiling_ratio": ...}} (ratio = edge / ceiling, > 1 better).
Ingest is the ack rate (the sender's records / time to its last ack). The collector scores windows off the ack
path and may lag the acks (by at most half its scoring queue: backpressure); ``scored_records_per_s`` (and
``scored_vs_ceiling_ratio``) count from the first send until the collector's ``windows_scored`` counter reaches the
records sent (every window scored), the end-to-end rate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _report
import msgpack
import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "collector"))

import collector_streams as streams  # noqa: E402

from edge.collector.cli import SWITCH_INTERVAL_S  # noqa: E402
from edge.collector.server import CollectorServer, CollectorSettings  # noqa: E402
from edge.drift.profile import save_profile  # noqa: E402

N_FEATURES = 32
BATCH = 64
INFLIGHT = 8

SENDER = r"""
import json, sys, time
import numpy as np, zmq
sys.path.insert(0, sys.argv[3])
import collector_streams as streams
from edge.telemetry.protocol import Record, encode_record
endpoint, n = sys.argv[1], int(sys.argv[2])
hello = json.loads(sys.argv[4])
rng = np.random.default_rng(7)
bodies = [streams.window_body(rng, n_features=32) for _ in range(50)]
frames = [encode_record(Record("window", "bench-dev", "boot-1", s, s, time.time_ns(), bodies[s % 50]))
          for s in range(1, n + 1)]
ctx = zmq.Context()
sock = ctx.socket(zmq.DEALER)
sock.linger = 0
sock.connect(endpoint)
sock.send_multipart([encode_record(Record("hello", "bench-dev", "boot-1", 0, 0, time.time_ns(), hello))])
sock.recv()
msgs = [frames[i:i + 64] for i in range(0, n, 64)]
sent_at, rtt = [], []
start = time.monotonic()  # CLOCK_MONOTONIC: the bench process reads the same clock
t0 = time.perf_counter()
nxt = done = 0
while done < len(msgs):
    while nxt < len(msgs) and nxt - done < 8:
        sent_at.append(time.perf_counter())
        sock.send_multipart(msgs[nxt])
        nxt += 1
    sock.recv()
    rtt.append(time.perf_counter() - sent_at[done])
    done += 1
elapsed = time.perf_counter() - t0
print(json.dumps({"records_per_s": n / elapsed, "rtt": rtt, "start": start}))
"""


def send(endpoint: str, n: int, hello: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SENDER, endpoint, str(n), str(REPO / "tests" / "collector"), json.dumps(hello)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if out.returncode != 0:
        raise SystemExit(f"sender failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout)


class BareRouter:
    """The ceiling: receive, decode every frame with msgpack, answer a fixed reply."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind("tcp://127.0.0.1:0")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        reply = msgpack.packb({"v": 1, "kind": "ack", "acks": [], "rejected": []})
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            ident, *frames = self.sock.recv_multipart()
            for f in frames:
                msgpack.unpackb(f, raw=False)
            self.sock.send_multipart([ident, reply])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()
        self.ctx.term()


class ScoredWatch:
    """When the collector's ``windows_scored`` counter reaches ``n`` (CLOCK_MONOTONIC, s): a thread that looks every
    0.5 ms, so the end-to-end time ends with the last window scored, not with the sender process's exit."""

    def __init__(self, counters: dict[str, int], n: int) -> None:
        self.counters, self.n = counters, n
        self.at: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            if self.counters["windows_scored"] >= self.n:
                self.at = time.monotonic()
                return
            if self.stop.is_set():
                return
            time.sleep(0.0005)

    def close(self) -> float:
        self.thread.join(5)  # after a drain: the watch sees the last window scored at its next look
        self.stop.set()
        self.thread.join(10)
        if self.at is None:
            raise SystemExit(f"the collector scored {self.counters['windows_scored']} of {self.n} windows")
        return self.at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer records and runs (under a minute)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    machine = _report.start()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `edge collector` runs it (the library leaves it alone)
    n, runs = (3_200, 3) if args.quick else (32_000, 5)
    rng = np.random.default_rng(20261121)
    prof = streams.profile(rng, n_features=N_FEATURES)
    hello = streams.hello_body(prof)
    results: dict[str, list[dict]] = {"ceiling": [], "edge": []}
    with tempfile.TemporaryDirectory() as tmp:
        pdir = Path(tmp) / "profiles"
        pdir.mkdir()
        save_profile(prof, pdir / "p.json")
        for r in range(runs):
            bare = BareRouter()
            try:
                results["ceiling"].append(send(bare.endpoint, n, hello))
            finally:
                bare.close()
            settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=Path(tmp) / f"b{r}.db", http=None,
                                         profiles=pdir, horizons=(10, 60))  # fmt: skip
            with CollectorServer(settings) as server:
                watch = ScoredWatch(server.counters, n)
                try:
                    out = send(server.endpoint, n, hello)
                    assert server.counters["records"] == n and server.counters["rejects"] == 0, server.counters
                    assert server.drain(60.0), "the scoring thread did not finish"  # scoring may lag the acks
                finally:
                    scored_at = watch.close()
                out["scored_per_s"] = n / (scored_at - out["start"])  # first send → every window scored
                assert server.counters["windows_scored"] == n, server.counters
                results["edge"].append(out)
    rate = {k: float(np.median([x["records_per_s"] for x in v])) for k, v in results.items()}
    rtt = {k: np.concatenate([x["rtt"] for x in v]) * 1e3 for k, v in results.items()}
    ratio = rate["edge"] / rate["ceiling"]
    scored = float(np.median([x["scored_per_s"] for x in results["edge"]]))
    print(f"collector ingest: {n} window records x {runs} runs, {N_FEATURES} features, {BATCH} records/message")
    print(f"{'':28s} {'records/s (median)':>20s} {'rtt median ms':>14s} {'rtt p99 ms':>11s} {'ratio':>7s}")
    for k, label in (("ceiling", "bare pyzmq + msgpack"), ("edge", "edge collector")):
        r = rate[k] / rate["ceiling"]
        print(f"{label:28s} {rate[k]:20.0f} {np.median(rtt[k]):14.2f} {np.percentile(rtt[k], 99):11.2f} {r:7.3f}")
    print(f"{'edge, until all scored':28s} {scored:20.0f} {'':14s} {'':11s} {scored / rate['ceiling']:7.3f}")
    figures = {"ingest_records_per_s": round(rate["edge"], 1), "ingest_vs_ceiling_ratio": round(ratio, 4),
               "ceiling_records_per_s": round(rate["ceiling"], 1), "scored_records_per_s": round(scored, 1),
               "scored_vs_ceiling_ratio": round(scored / rate["ceiling"], 4)}  # fmt: skip
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
