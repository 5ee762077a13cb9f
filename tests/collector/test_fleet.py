"""The distributed collector with real servers: gateways and workers (in this process and as ``edge collector``
subprocesses killed with SIGKILL) over a ``nats-server -js`` the test starts and a throw-away PostgreSQL.

In every failure case each acknowledged window is stored once and scored once, and the drift values equal those of
one embedded collector fed the same records (to 1e-9). Horizons are longer than any device's run of windows, so a
horizon holds all of a device's windows and the values do not depend on the order a redelivery stores them in
(sketches are monoids: only the summation order differs)."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device
from nats_server import NatsCluster, NatsServer, free_port

from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store
from edge.collector.worker import FleetWorker
from edge.drift.profile import save_profile

HORIZONS = (64,)
CLI = "import sys; from edge.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def nats() -> Iterator[NatsServer]:
    server = NatsServer()
    yield server
    server.close()


@pytest.fixture
def fleet(tmp_path: Path, rng) -> dict[str, Any]:
    """A profile folder and, per device, its hello and windows (records made once, sent to every collector)."""
    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    return {"profiles": tmp_path / "p", "hello": streams.hello_body(prof), "rng": rng}


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def make_devices(
    ctx: zmq.Context, endpoint: str, fleet: dict[str, Any], n: int, windows: int, first: int = 0
) -> list[Any]:
    """``n`` devices (``dev-<first>``...), each with its hello and ``windows`` windows (seeded; device k's windows
    shifted by k/10)."""
    out = []
    for k in range(first, first + n):
        dev = Device(ctx, endpoint, f"dev-{k}")
        dev.hello = dev.record("hello", fleet["hello"])
        dev.windows = [dev.record("window", streams.window_body(fleet["rng"], shift=k / 10), i) for i in range(windows)]
        out.append(dev)
    return out


def say_hello(dev: Any, timeout_ms: int = 20000) -> None:
    dev.send_records(dev.hello)
    rep = dev.reply(timeout_ms)
    assert rep is not None and not rep.rejected, rep


def deliver(dev: Any, records: list[Any], per_message: int = 10, timeout_ms: int = 1500, rounds: int = 200) -> None:
    """Send window ``records`` until every one is acked (resending the unacked ones, as a device's spool does)."""
    for _ in range(rounds):
        todo = [r for r in records if r.seq not in dev.acked]
        if not todo:
            return
        for i in range(0, len(todo), per_message):
            dev.send_records(*todo[i : i + per_message])
        for _ in range(0, len(todo), per_message):
            if dev.reply(timeout_ms) is None:
                break
    pytest.fail(f"{dev.name}: not every record acked after {rounds} rounds")


def send_all(devices: list[Any]) -> None:
    for dev in devices:
        say_hello(dev)
        deliver(dev, dev.windows)


def embedded_drift(devices: list[Any], fleet: dict[str, Any], tmp_path: Path) -> dict[str, np.ndarray]:
    """The last psi values of each device from one embedded collector (SQLite) fed the same records."""
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=f"sqlite:///{tmp_path}/embedded.db", http=None,
                                 profiles=fleet["profiles"], horizons=HORIZONS)  # fmt: skip
    ctx = zmq.Context()
    try:
        with CollectorServer(settings) as server:
            for dev in devices:
                twin = Device(ctx, server.endpoint, dev.name)
                twin.hello = dev.hello
                say_hello(twin)
                deliver(twin, dev.windows)
                twin.close()
            assert server.drain(60.0)
            series = server.series.series
            return {d.name: np.asarray(series(d.name, streams.MODEL, "psi")["values"][-1]) for d in devices}
    finally:
        ctx.destroy(linger=0)


def scored_once(db: str, expected: int) -> Callable[[], bool]:
    """True once the store holds ``expected`` windows and the scoring cursor has counted exactly that many."""

    def check() -> bool:
        store = open_store(db)
        log = store.scoring_log()
        try:
            return store.record_count("window") == expected and log.cursor()[1] == expected
        finally:
            log.close()
            store.close()

    return check


def gateway_settings(db: str, fleet: dict[str, Any], bus: str, **kw: Any) -> CollectorSettings:
    return CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=kw.pop("http", None), profiles=fleet["profiles"],
                             horizons=HORIZONS, role="gateway", bus=bus)  # fmt: skip


def worker_settings(db: str, fleet: dict[str, Any]) -> CollectorSettings:
    return CollectorSettings(db=db, http=None, profiles=fleet["profiles"], horizons=HORIZONS)


def assert_same_drift(worker: FleetWorker, devices: list[Any], fleet: dict[str, Any], tmp_path: Path) -> None:
    assert worker.scorer is not None
    want = embedded_drift(devices, fleet, tmp_path)
    for dev in devices:
        got = np.asarray(worker.scorer.series.series(dev.name, streams.MODEL, "psi")["values"][-1])
        np.testing.assert_allclose(got, want[dev.name], rtol=0, atol=1e-9)
        assert np.isfinite(got).all()


def test_gateway_and_worker_score_every_window_once_like_one_process(nats, pg_cluster, fleet, tmp_path) -> None:
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        with FleetWorker(worker_settings(db, fleet), nats.url) as worker, \
                CollectorServer(gateway_settings(db, fleet, nats.url)) as gateway:  # fmt: skip
            devices = make_devices(ctx, gateway.endpoint, fleet, 4, 30)
            send_all(devices)
            wait_for(scored_once(db, 120), 60.0, "120 windows stored and scored")
            assert gateway.counters["records"] == 120 and worker.counters["bus_records"] == 120
            wait_for(lambda: worker.scorer is not None and worker.scorer.counters["windows_scored"] == 120, 30.0,
                     "the lease holder's count")  # fmt: skip
            assert_same_drift(worker, devices, fleet, tmp_path)
            # a device resending what was acked: acked again, stored and scored once
            deliver(devices[0], devices[0].windows[:5])
            assert scored_once(db, 120)()
    finally:
        ctx.destroy(linger=0)


def test_a_worker_killed_mid_batch_loses_and_double_counts_nothing(nats, pg_cluster, fleet, tmp_path, spawn) -> None:
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        with CollectorServer(gateway_settings(db, fleet, nats.url)) as gateway:
            devices = make_devices(ctx, gateway.endpoint, fleet, 5, 60)
            send_all(devices)  # every window acked: in the stream
            store = open_store(db)
            try:
                doomed = spawn(CLI, "collector", "--role", "worker", "--bus", nats.url, "--db", db, "--no-http",
                               "--profiles", str(fleet["profiles"]), "--horizons", "64", "--fetch-batch", "7",
                               "--ack-wait-s", "2")  # fmt: skip
                wait_for(lambda: store.record_count("window") > 0 or doomed.poll() is not None, 60.0, "a first batch")
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(10)
                assert doomed.returncode == -signal.SIGKILL
                stored_before = store.record_count("window")
            finally:
                store.close()
            with FleetWorker(worker_settings(db, fleet), nats.url, ack_wait_s=2.0) as worker:
                wait_for(scored_once(db, 300), 90.0, "300 windows stored and scored once")
                wait_for(lambda: worker.scorer is not None, 30.0, "the lease")
                assert_same_drift(worker, devices, fleet, tmp_path)
            assert stored_before <= 300
    finally:
        ctx.destroy(linger=0)


def test_a_gateway_killed_with_records_in_flight_acks_only_what_the_stream_holds(
    nats, pg_cluster, fleet, tmp_path, spawn
) -> None:
    db = pg_cluster.database()
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    args = ("collector", "--role", "gateway", "--bus", nats.url, "--db", db, "--bind", endpoint, "--no-http",
            "--profiles", str(fleet["profiles"]), "--horizons", "64")  # fmt: skip
    ctx = zmq.Context()
    try:
        with FleetWorker(worker_settings(db, fleet), nats.url, ack_wait_s=2.0) as worker:
            first = spawn(CLI, *args)
            assert "ingest on" in first.stdout.readline()
            devices = make_devices(ctx, endpoint, fleet, 3, 40)
            for dev in devices:
                say_hello(dev)
            for dev in devices:  # all in flight at once
                for i in range(0, 40, 4):
                    dev.send_records(*dev.windows[i : i + 4])
            devices[0].reply(20000)  # some acked, the rest in flight
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            acked_before = {d.name: set(d.acked) for d in devices}
            second = spawn(CLI, *args)
            assert "ingest on" in second.stdout.readline()
            for dev in devices:  # drain replies of the dead gateway's socket; then resend what is not acked
                while dev.reply(200) is not None:
                    pass
                deliver(dev, dev.windows)
            wait_for(scored_once(db, 120), 90.0, "120 windows stored and scored once")
            store = open_store(db)
            try:
                keys = store.keys()
            finally:
                store.close()
            for dev in devices:  # everything acked by the killed gateway is stored
                assert {(dev.name, dev.boot, s) for s in acked_before[dev.name]} <= keys
            wait_for(lambda: worker.scorer is not None, 30.0, "the lease")
            assert_same_drift(worker, devices, fleet, tmp_path)
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        ctx.destroy(linger=0)


def test_a_postgresql_restart_stops_nothing_acked_and_recovers(nats, pg_cluster, fleet, tmp_path) -> None:
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        with FleetWorker(worker_settings(db, fleet), nats.url, ack_wait_s=2.0) as worker, \
                CollectorServer(gateway_settings(db, fleet, nats.url)) as gateway:  # fmt: skip
            devices = make_devices(ctx, gateway.endpoint, fleet, 3, 30)
            for dev in devices:
                say_hello(dev)
                deliver(dev, dev.windows[:10])
            wait_for(scored_once(db, 30), 60.0, "the first 30 windows scored")
            pg_cluster.stop()
            try:
                for dev in devices:  # the gateway acks once the stream has them; the worker cannot store them
                    deliver(dev, dev.windows[10:])
                wait_for(lambda: worker.health["store_up"] == 0.0 or not worker.scoring, 30.0, "the store outage seen")
            finally:
                pg_cluster.start()
            wait_for(scored_once(db, 90), 90.0, "90 windows stored and scored once after the restart")
            wait_for(lambda: worker.scorer is not None, 30.0, "the lease again")
            assert_same_drift(worker, devices, fleet, tmp_path)
    finally:
        ctx.destroy(linger=0)


def test_a_nats_outage_stops_acks_says_so_and_recovers(nats, pg_cluster, fleet, tmp_path) -> None:
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        settings = gateway_settings(db, fleet, nats.url, http=("127.0.0.1", 0))
        with FleetWorker(worker_settings(db, fleet), nats.url, ack_wait_s=2.0), CollectorServer(settings) as gateway:
            (dev,) = make_devices(ctx, gateway.endpoint, fleet, 1, 10)
            say_hello(dev)
            deliver(dev, dev.windows[:5])
            nats.stop()
            try:
                dev.send_records(*dev.windows[5:])
                assert dev.reply(timeout_ms=8000) is None  # not in the stream: not acknowledged
                assert dev.acked == set(range(1, 6))
                assert gateway_gauge(gateway, "bus_connected") == 0.0
                assert gateway_gauge(gateway, "bus_publish_failures") >= 1.0
            finally:
                nats.start()
            deliver(dev, dev.windows, timeout_ms=3000)
            assert dev.acked == set(range(1, 11))
            wait_for(scored_once(db, 10), 60.0, "10 windows stored and scored once")
            assert gateway_gauge(gateway, "bus_connected") == 1.0
    finally:
        ctx.destroy(linger=0)


def stream_cluster(url: str) -> tuple[str | None, dict[str, bool]]:
    """The stream's leader and, per other replica, whether it is current (asked of any node at ``url``)."""
    import asyncio

    import nats

    from edge.collector.bus import STREAM

    async def ask() -> tuple[str | None, dict[str, bool]]:
        nc = await nats.connect(servers=url.split(","), connect_timeout=2, allow_reconnect=False)
        try:
            info = (await nc.jetstream().stream_info(STREAM)).cluster
            return info.leader, {r.name: bool(r.current) for r in info.replicas or ()}
        finally:
            await nc.close()

    try:
        return asyncio.run(ask())
    except Exception:  # no quorum yet, or the node asked is down
        return None, {}


def test_the_stream_leader_stopped_and_back_loses_nothing(pg_cluster, fleet, tmp_path) -> None:
    """A stream with three replicas on a 3-node cluster: the node leading the stream is stopped while records
    flow (another is elected, the gateway still acks on a quorum of two, the worker still fetches), then started
    again (it catches up as a replica); every window is stored and scored once."""
    from edge.collector.bus import RecordBus

    cluster = NatsCluster()
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        made: list[RecordBus] = []

        def stream_made() -> bool:  # the cluster elects its JetStream meta leader first
            try:
                made.append(RecordBus(cluster.url, replicas=3, timeout_s=2.0))
            except Exception:
                return False
            return True

        wait_for(stream_made, 60.0, "a 3-replica stream on the cluster")
        made[0].close()
        with FleetWorker(worker_settings(db, fleet), cluster.url, ack_wait_s=2.0) as worker, \
                CollectorServer(gateway_settings(db, fleet, cluster.url)) as gateway:  # fmt: skip
            devices = make_devices(ctx, gateway.endpoint, fleet, 2, 45)
            for dev in devices:
                say_hello(dev)
                deliver(dev, dev.windows[:15])
            wait_for(lambda: stream_cluster(cluster.url)[0] is not None, 30.0, "the stream's leader")
            leader = stream_cluster(cluster.url)[0]
            down = next(n for i, n in enumerate(cluster.nodes) if f"edge-{i}" == leader)
            down.stop()
            rest = ",".join(n.url for n in cluster.nodes if n is not down)
            wait_for(lambda: stream_cluster(rest)[0] not in (None, leader), 60.0, "another leader elected")
            for dev in devices:
                deliver(dev, dev.windows[:30], timeout_ms=3000)
            down.start()
            wait_for(lambda: stream_cluster(rest)[1].get(leader, False), 60.0, f"{leader} back, a current replica")
            for dev in devices:
                deliver(dev, dev.windows, timeout_ms=3000)
            wait_for(scored_once(db, 90), 90.0, "90 windows stored and scored once")
            wait_for(lambda: worker.scorer is not None, 30.0, "the lease")
            assert_same_drift(worker, devices, fleet, tmp_path)
    finally:
        ctx.destroy(linger=0)
        cluster.close()


def gateway_gauge(server: CollectorServer, name: str) -> float:
    assert server.http is not None
    with urllib.request.urlopen(f"{server.http.url}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(f"edge_collector_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"/metrics: expected edge_collector_{name}, got {text[:500]!r}")


def test_role_and_bus_must_go_together(tmp_path: Path) -> None:
    from edge.cli import main

    assert main(["collector", "--bus", "nats://127.0.0.1:1", "--db", str(tmp_path / "x.db"), "--no-http"]) != 0
    code = main(["collector", "--role", "gateway", "--db", str(tmp_path / "x.db"), "--no-http"])
    assert code != 0


def test_two_gateways_and_two_workers_at_once_score_every_window_once(nats, pg_cluster, fleet, tmp_path) -> None:
    """Devices split over two gateways, two workers sharing the consumer: every window is stored once (the
    workers' stored counts add up to it), one worker holds the lease and scores, the drift is one process's."""
    db = pg_cluster.database()
    ctx = zmq.Context()
    try:
        with FleetWorker(worker_settings(db, fleet), nats.url, batch=16) as w1, \
                FleetWorker(worker_settings(db, fleet), nats.url, batch=16) as w2, \
                CollectorServer(gateway_settings(db, fleet, nats.url)) as g1, \
                CollectorServer(gateway_settings(db, fleet, nats.url)) as g2:  # fmt: skip
            devices = make_devices(ctx, g1.endpoint, fleet, 3, 40) + make_devices(ctx, g2.endpoint, fleet, 3, 40, 3)
            send_all(devices)
            wait_for(scored_once(db, 240), 90.0, "240 windows stored and scored once")
            assert g1.counters["records"] == g2.counters["records"] == 120
            wait_for(lambda: w1.counters["bus_records"] + w2.counters["bus_records"] == 240, 30.0, "the stored counts")
            assert w1.counters["bus_duplicates"] + w2.counters["bus_duplicates"] == 0
            assert [w1.scoring, w2.scoring].count(True) == 1
            assert_same_drift(w1 if w1.scoring else w2, devices, fleet, tmp_path)
    finally:
        ctx.destroy(linger=0)


def test_a_worker_overtaken_by_another_scorer_starts_again_from_the_cursor(nats, pg_cluster, fleet, tmp_path) -> None:
    """An embedded collector on the fleet's store scores windows of its own while the lease holder is between
    batches (as a worker whose lease moved would): the holder's next commit is refused (fenced), it drops its
    scorer, takes the lease again and scores on from the cursor; every window is scored once."""
    db = pg_cluster.database()
    ctx = zmq.Context()
    embedded = CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=None, profiles=fleet["profiles"],
                                 horizons=HORIZONS)  # fmt: skip
    try:
        with FleetWorker(worker_settings(db, fleet), nats.url) as worker, \
                CollectorServer(gateway_settings(db, fleet, nats.url)) as gateway:  # fmt: skip
            devices = make_devices(ctx, gateway.endpoint, fleet, 2, 30)
            for dev in devices:
                say_hello(dev)
                deliver(dev, dev.windows[:15])
            wait_for(scored_once(db, 30), 60.0, "the first 30 windows scored by the lease holder")
            scorer = worker.scorer
            with CollectorServer(embedded) as intruder:
                (other,) = make_devices(ctx, intruder.endpoint, fleet, 1, 10, 7)
                send_all([other])
                assert intruder.drain(30.0) and intruder.counters["windows_scored"] == 10
                intruded = len(intruder.series.series("dev-7", streams.MODEL, "psi")["t_ns"])
            for dev in devices:
                deliver(dev, dev.windows)
            wait_for(scored_once(db, 70), 60.0, "70 windows stored and scored once")
            wait_for(lambda: worker.scorer is not None and worker.scorer is not scorer, 30.0, "a new scorer")
            wait_for(lambda: worker.scorer.counters["windows_scored"] == 30, 30.0, "the new scorer's 30 windows")
            store = open_store(db)
            log = store.scoring_log()
            try:  # dev-7's windows were scored by the intruder only: its series points are the intruder's
                assert sum(1 for p in log.series_points() if p[0] == "dev-7" and p[2] == 64) == intruded
            finally:
                log.close()
                store.close()
            assert_same_drift(worker, devices, fleet, tmp_path)
    finally:
        ctx.destroy(linger=0)
