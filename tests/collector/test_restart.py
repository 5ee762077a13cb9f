"""Durable scoring: a real collector process killed (SIGKILL) while windows wait to be scored, then restarted on the
same database, scores every stored window exactly once, keeps the drift series it had, and ends with the drift
values of an uninterrupted run; a clean restart serves the same history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store
from edge.drift.profile import save_profile
from edge.telemetry.protocol import Record, encode_record

DEVICES, ROUNDS, KILL_AFTER = 3, 40, 25  # rounds of one window per device; the child scores the first KILL_AFTER
HORIZONS = (5, 20)
REPO = Path(__file__).resolve().parents[2]

# a real collector (ingest, commit and scoring threads, HTTP) in its own process, driven over stdin: "drain" scores
# everything acked so far, "hold" takes the engine lock so the scoring thread stops with the windows it took
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge.collector.server import CollectorServer, CollectorSettings
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=sys.argv[1], http=("127.0.0.1", 0),
                                 profiles=Path(sys.argv[2]), horizons=(5, 20))
    server = CollectorServer(settings)
    print(server.endpoint, server.http.url, flush=True)
    for line in sys.stdin:
        if line.strip() == "drain":
            print(server.drain(30.0), server.scoring.cursor, flush=True)
        elif line.strip() == "hold":
            server.scoring.lock.acquire()
            print("held", flush=True)
    """
)


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen]]:
    """Collector processes started by a test; killed and reaped at teardown."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def stream(rng: np.random.Generator) -> list[list[bytes]]:
    """``ROUNDS`` rounds of one window frame per device (``dev-2`` drifts from round 15), made once so that every
    run sends the same bytes."""
    rounds = []
    for k in range(1, ROUNDS + 1):
        shift = {2: 0.8 if k >= 15 else 0.0}
        rounds.append([
            encode_record(Record("window", f"dev-{d}", f"dev-{d}-boot", k, k * 1_000_000_000, k,
                                 streams.window_body(rng, shift=shift.get(d, 0.0))))
            for d in range(DEVICES)
        ])  # fmt: skip
    return rounds


def send(devices: list[Device], rounds: list[list[bytes]]) -> None:
    for frames in rounds:
        for dev, frame in zip(devices, frames, strict=True):
            dev.send(frame)
        for dev in devices:
            reply = dev.reply()
            assert reply is not None and not reply.rejected, f"{dev.name}: {reply}"


def connect(ctx: zmq.Context, endpoint: str, hello: dict[str, Any]) -> list[Device]:
    devices = [Device(ctx, endpoint, f"dev-{d}") for d in range(DEVICES)]
    for dev in devices:
        dev.send_records(dev.record("hello", hello))
        assert dev.reply() is not None
    return devices


def drift(url: str, scope: str, horizon: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/drift?scope={scope}&model={streams.MODEL}&metric=psi&horizon={horizon}",
                                timeout=10) as r:  # fmt: skip
        return json.loads(r.read())


def latest(server: CollectorServer) -> dict[tuple[str, int], Any]:
    """The last point of the series that do not depend on how windows were batched: every device's primary
    horizon (scored after each of its batches) and the fleet's horizons (scored once per batch, after all of it)."""
    keys = [(f"dev-{d}", HORIZONS[0]) for d in range(DEVICES)] + [("fleet", h) for h in HORIZONS]
    return {key: server.series.latest(key[0], streams.MODEL, key[1]) for key in keys}


def assert_same_points(a: dict[tuple[str, int], Any], b: dict[tuple[str, int], Any]) -> None:
    for key, p in a.items():
        q = b[key]
        assert p is not None and q is not None, key
        assert (p.t_ns, p.samples) == (q.t_ns, q.samples), key
        for metric, values in p.scores.items():
            np.testing.assert_allclose(q.scores[metric], values, rtol=0, atol=1e-9, err_msg=f"{key} {metric}")
        assert p.ops.keys() == q.ops.keys()
        np.testing.assert_allclose([q.ops[k] for k in p.ops], list(p.ops.values()), rtol=0, atol=1e-9)


def test_sigkill_with_windows_queued_then_restart_scores_each_once(
    tmp_path: Path, store_url: str, child: list[subprocess.Popen], ctx: zmq.Context, rng: np.random.Generator
) -> None:
    """On both backends; the uninterrupted run is on SQLite (so PostgreSQL's values are checked against it too)."""
    prof = streams.profile(rng)
    (tmp_path / "profiles").mkdir()
    save_profile(prof, tmp_path / "profiles" / "p.json")
    hello = streams.hello_body(prof)
    rounds = stream(rng)
    total = DEVICES * ROUNDS
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "ref.db", http=None,
                                 profiles=tmp_path / "profiles", horizons=HORIZONS)  # fmt: skip
    with CollectorServer(settings) as uninterrupted:
        send(connect(ctx, uninterrupted.endpoint, hello), rounds)
        assert uninterrupted.drain(30.0) and uninterrupted.counters["windows_scored"] == total
        expected = latest(uninterrupted)

    db = store_url
    proc = subprocess.Popen([sys.executable, "-c", CHILD, db, str(tmp_path / "profiles")], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    child.append(proc)

    def command(line: str) -> str:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    endpoint, url = proc.stdout.readline().split()
    devices = connect(ctx, endpoint, hello)
    send(devices, rounds[:KILL_AFTER])
    assert command("drain").startswith("True")
    before = {(scope, h): drift(url, scope, h) for scope in ("fleet", "dev-2") for h in HORIZONS}
    assert all(s["t_ns"] for s in before.values())
    assert command("hold") == "held"
    send(devices, rounds[KILL_AFTER:])  # acked: stored; the scoring thread holds (or waits for) them
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    for dev in devices:
        dev.close()

    store = open_store(db)
    log = store.scoring_log()
    try:
        assert store.record_count("window") == total
        assert log.cursor()[1] == DEVICES * KILL_AFTER  # the windows stored after it were never scored
    finally:
        log.close()
        store.close()
    restart = CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=("127.0.0.1", 0),
                                profiles=tmp_path / "profiles", horizons=HORIZONS)  # fmt: skip
    t0 = time.monotonic()
    with CollectorServer(restart) as server:
        assert server.drain(30.0), "the restarted collector did not catch up"
        resume_s = time.monotonic() - t0
        late = total - DEVICES * KILL_AFTER
        assert server.counters["windows_from_store"] == late and server.counters["windows_scored"] == late
        assert server.engine.windows_scored == late and server.counters["engine_errors"] == 0
        assert server.scoring.scored_total == server.store.record_count("window") == total
        assert_same_points(expected, latest(server))
        after = {key: drift(server.http.url, *key) for key in before}
    for key, s in before.items():  # the history from before the crash is kept, the new points follow it
        n = len(s["t_ns"])
        assert after[key]["t_ns"][:n] == s["t_ns"] and after[key]["values"][:n] == s["values"], key
        assert after[key]["t_ns"][-1] == ROUNDS * 1_000_000_000
    assert resume_s < 10.0

    with CollectorServer(restart) as again:  # a clean restart: nothing to score, the same history served
        assert again.drain(30.0) and again.counters["windows_scored"] == 0
        assert {key: drift(again.http.url, *key) for key in before} == after
        assert_same_points(expected, latest(again))
        with urllib.request.urlopen(f"{again.http.url}/api/heatmap?scope=fleet&model={streams.MODEL}", timeout=10) as r:
            assert json.loads(r.read())["cells"]
        with urllib.request.urlopen(f"{again.http.url}/api/summary", timeout=10) as r:
            summary = json.loads(r.read())
        assert summary["stored_records"] == total and summary["counters"]["records"] == 0  # all time; this process


def test_a_store_from_before_the_cursor_gets_its_history_without_alerting_again(
    tmp_path: Path, ctx: zmq.Context, rng: np.random.Generator
) -> None:
    """A file whose windows were stored by a collector without the scoring cursor: its windows are scored once on
    the next start (series back, counted), no alert is opened for them; windows that arrive afterwards alert."""
    import sqlite3

    prof = streams.profile(rng)
    (tmp_path / "profiles").mkdir()
    save_profile(prof, tmp_path / "profiles" / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "old.db", http=None,
                                 profiles=tmp_path / "profiles", horizons=HORIZONS)  # fmt: skip
    rounds = stream(rng)  # dev-2 drifts from round 15: the policy opens alerts
    with CollectorServer(settings) as first:
        send(connect(ctx, first.endpoint, streams.hello_body(prof)), rounds[:30])
        assert first.drain(30.0) and first.store.alerts(), "the drift opened no alert to begin with"
    raw = sqlite3.connect(tmp_path / "old.db")  # what a collector from before the cursor left: no cursor, no series
    raw.executescript("DROP TABLE scoring_cursor; DROP TABLE series; DELETE FROM alerts;")
    raw.close()
    with CollectorServer(settings) as upgraded:
        assert upgraded.drain(30.0)
        assert upgraded.scoring.scored_total == upgraded.counters["windows_from_store"] == DEVICES * 30
        assert upgraded.series.series("fleet", streams.MODEL, "psi")["t_ns"][-1] == 30 * 1_000_000_000
        assert upgraded.store.alerts() == [] and upgraded.counters["alerts"] == 0
        devices = [Device(ctx, upgraded.endpoint, f"dev-{d}") for d in range(DEVICES)]
        send(devices, rounds[30:])
        assert upgraded.drain(30.0) and upgraded.scoring.scored_total == DEVICES * ROUNDS
        assert upgraded.store.alerts(), "live windows after the history alert as before"
