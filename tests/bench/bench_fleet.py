"""Fleet benchmark: the distributed collector (1 gateway + 1 worker + nats-server -js + PostgreSQL, all on
loopback) against the embedded collector (one process, SQLite), same sender, same records, same run.

The sender is bench_collector's (a separate process with a DEALER, window records with 32 features encoded
beforehand, 64 records per message, at most 8 messages in flight). The gateway, the worker and the embedded
collector are ``edge collector`` processes (the CLI), so their CPU time is read from /proc.

    python tests/bench/bench_fleet.py [--quick] [--json PATH]

Figures (``{"figures": ...}`` with --json):
  * ``fleet_records_per_s``: records sent / (first send → every window stored by the worker and scored);
  * ``gateway_vs_embedded_ingest_ratio``: acked records/s through the gateway / through the embedded collector;
  * ``gateway_cpu_us_per_record`` and ``worker_cpu_us_per_record``: process CPU time (user + system) per record
    over the whole run (what projects the cores a fleet needs; docs/FLEET.md);
  * ``restart_resume_s``: an embedded collector killed (SIGKILL) and started again on its store: process start →
    a window sent once it listens is scored (horizons rebuilt from the store first).
Medians over the runs. Needs nats-server and PostgreSQL (``sh tests/system-packages.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "collector"))
sys.path.insert(0, str(REPO / "tests" / "bench"))

import collector_streams as streams  # noqa: E402
from bench_collector import N_FEATURES, send  # noqa: E402
from nats_server import NatsServer, free_port  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402

from edge.drift.profile import save_profile  # noqa: E402

CLI = "import sys; from edge.cli import main; sys.exit(main(sys.argv[1:]))"
TICK = os.sysconf("SC_CLK_TCK")


def collector(*args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", CLI, "collector", "--no-http", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, cwd=REPO)  # fmt: skip
    if "edge collector" not in (p.stdout.readline() if p.stdout else ""):
        p.kill()
        raise SystemExit(f"edge collector {' '.join(args)} did not start")
    return p


def cpu_s(p: subprocess.Popen) -> float:
    """User + system CPU time of a running process (s)."""
    fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    p.send_signal(sig)
    p.wait(60)
    if p.stdout:
        p.stdout.close()


def scored_pg(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as db:
        return int(db.execute("SELECT windows FROM scoring_cursor WHERE name = 'scoring'").fetchone()[0])


def scored_sqlite(path: Path) -> int:
    db = sqlite3.connect(path, timeout=30)
    try:
        row = db.execute("SELECT windows FROM scoring_cursor WHERE name = 'scoring'").fetchone()
        return 0 if row is None else int(row[0])
    except sqlite3.OperationalError:  # not made yet
        return 0
    finally:
        db.close()


def wait_scored(read, n: int, timeout_s: float = 600.0) -> float:
    """CLOCK_MONOTONIC time when ``read()`` first reaches ``n`` (looked at every 5 ms)."""
    deadline = time.monotonic() + timeout_s
    while read() < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {read()} of {n} windows scored after {timeout_s} s")
        time.sleep(0.005)
    return time.monotonic()


def fleet_run(n: int, hello: dict, pdir: Path, nats: NatsServer, db: str) -> dict:
    common = ("--db", db, "--profiles", str(pdir), "--horizons", "10,60")
    worker = collector("--role", "worker", "--bus", nats.url, *common)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    gateway = collector("--role", "gateway", "--bus", nats.url, "--bind", endpoint, *common)
    try:
        cpu0 = cpu_s(gateway), cpu_s(worker)
        out = send(endpoint, n, hello)
        done = wait_scored(lambda: scored_pg(db), n)
        cpu1 = cpu_s(gateway), cpu_s(worker)
    finally:
        stop(gateway)
        stop(worker)
    return {"ack_per_s": out["records_per_s"], "fleet_per_s": n / (done - out["start"]),
            "gateway_us": (cpu1[0] - cpu0[0]) / n * 1e6, "worker_us": (cpu1[1] - cpu0[1]) / n * 1e6}  # fmt: skip


def embedded_run(n: int, hello: dict, pdir: Path, path: Path) -> dict:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    args = ("--bind", endpoint, "--db", str(path), "--profiles", str(pdir), "--horizons", "10,60")
    p = collector(*args)
    try:
        cpu0 = cpu_s(p)
        out = send(endpoint, n, hello)
        wait_scored(lambda: scored_sqlite(path), n)
        cpu = cpu_s(p) - cpu0
    finally:
        stop(p, signal.SIGKILL)  # a crash: the restart below resumes from the cursor
    t0 = time.monotonic()
    again = collector(*args)
    try:
        one_window(endpoint, hello)
        resumed = wait_scored(lambda: scored_sqlite(path), n + 1, 120.0)
    finally:
        stop(again)
    return {"ack_per_s": out["records_per_s"], "cpu_us": cpu / n * 1e6, "resume_s": resumed - t0}


def one_window(endpoint: str, hello: dict) -> None:
    """A window of a new boot of the bench device (a new key: stored and scored), once it is acked."""
    import zmq

    from edge.telemetry.protocol import Record, encode_record

    body = streams.window_body(np.random.default_rng(1), n_features=N_FEATURES)
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        for rec in (Record("hello", "bench-dev", "boot-2", 0, 0, time.time_ns(), hello),
                    Record("window", "bench-dev", "boot-2", 1, 1, time.time_ns(), body)):  # fmt: skip
            sock.send_multipart([encode_record(rec)])
            if not sock.poll(60_000):
                raise SystemExit("the restarted collector did not answer")
            sock.recv()
    finally:
        ctx.destroy(linger=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer records and runs")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    n, runs = (3_200, 1) if args.quick else (19_200, 3)
    rng = np.random.default_rng(20261205)
    prof = streams.profile(rng, n_features=N_FEATURES)
    hello = streams.hello_body(prof)
    fleet, embedded = [], []
    pg = PgCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pdir = Path(tmp) / "profiles"
            pdir.mkdir()
            save_profile(prof, pdir / "p.json")
            for r in range(runs):
                embedded.append(embedded_run(n, hello, pdir, Path(tmp) / f"e{r}.db"))
                nats = NatsServer()  # a fresh stream: the same records again would be duplicates of the last run
                try:
                    fleet.append(fleet_run(n, hello, pdir, nats, pg.database()))
                finally:
                    nats.close()
    finally:
        pg.close()

    def med(rows: list[dict], key: str) -> float:
        return float(np.median([x[key] for x in rows]))

    figures = {
        "fleet_records_per_s": round(med(fleet, "fleet_per_s"), 1),
        "gateway_ack_records_per_s": round(med(fleet, "ack_per_s"), 1),
        "embedded_ack_records_per_s": round(med(embedded, "ack_per_s"), 1),
        "gateway_vs_embedded_ingest_ratio": round(med(fleet, "ack_per_s") / med(embedded, "ack_per_s"), 4),
        "gateway_cpu_us_per_record": round(med(fleet, "gateway_us"), 1),
        "worker_cpu_us_per_record": round(med(fleet, "worker_us"), 1),
        "embedded_cpu_us_per_record": round(med(embedded, "cpu_us"), 1),
        "restart_resume_s": round(med(embedded, "resume_s"), 3),
    }
    print(f"fleet collector: {n} window records x {runs} runs, {N_FEATURES} features (medians)")
    print(f"{'':36s} {'records/s':>10s} {'CPU µs/record':>14s}")
    print(f"{'embedded collector (acks)':36s} {figures['embedded_ack_records_per_s']:10.0f} "
          f"{figures['embedded_cpu_us_per_record']:14.1f}")  # fmt: skip
    print(f"{'gateway (acks, JetStream)':36s} {figures['gateway_ack_records_per_s']:10.0f} "
          f"{figures['gateway_cpu_us_per_record']:14.1f}")  # fmt: skip
    print(f"{'gateway+worker, until all scored':36s} {figures['fleet_records_per_s']:10.0f} "
          f"{figures['worker_cpu_us_per_record']:14.1f}  (worker)")  # fmt: skip
    print(f"gateway / embedded ingest ratio: {figures['gateway_vs_embedded_ingest_ratio']:.3f} (target >= 0.5)")
    print(f"embedded restart → first window scored: {figures['restart_resume_s']:.3f} s (target <= 2 s)")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "records": n, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
