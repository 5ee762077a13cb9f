"""The collector service over real sockets: 50 devices, drift and cohort alerts, acks after commit, restart after
SIGKILL, CURVE allow-list."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device
from collector_support import wait_for

from edge.collector.alerts import COHORT, Rule
from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.store import RecordStore
from edge.drift.profile import save_profile
from edge.telemetry.security import CurveKeys, generate_keypair, load_keypair

RULES = (Rule("psi", 0.25, 0.1, persistence=2, min_samples=200),)


@pytest.fixture
def profiles_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    d = tmp_path / "profiles"
    d.mkdir()
    save_profile(streams.profile(rng), d / "detector.json")
    return d


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def server(tmp_path: Path, profiles_dir: Path) -> Iterator[CollectorServer]:
    settings = CollectorSettings(
        bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None, profiles=profiles_dir, horizons=(5,), rules=RULES
    )
    s = CollectorServer(settings)
    s.policy.cohort_fraction, s.policy.cohort_min_devices = 0.2, 3
    yield s
    s.close()


def run_round(devices: list[Device], rng: np.random.Generator, drifting: set[str], k: int) -> None:
    for d in devices:
        d.send_records(d.record("window", streams.window_body(rng, shift=1.0 if d.name in drifting else 0.0), k))
    for d in devices:
        assert d.reply() is not None, f"{d.name}: no reply in round {k}"


def test_fifty_devices_one_drifts_then_a_cohort(server: CollectorServer, ctx: zmq.Context, rng) -> None:
    prof = streams.profile(np.random.default_rng(20261121))  # same draws as the profiles_dir fixture's
    devices = [Device(ctx, server.endpoint, f"dev-{i:02d}") for i in range(50)]
    for d in devices:
        d.send_records(d.record("hello", streams.hello_body(prof)))
    for d in devices:
        assert d.reply() is not None
    assert server.engine.has_reference(streams.MODEL)
    for k in range(16):  # dev-07 drifts from round 6 on
        run_round(devices, rng, {"dev-07"} if k >= 6 else set(), k)
    # windows are scored just after their acks go out
    wait_for(lambda: server.counters["windows_scored"] == 50 * 16, what="scoring of round 15")
    open_scopes = {scope for scope, *_ in server.policy.open_alerts()}
    assert open_scopes == {"dev-07"}
    assert {a.scope for a in server.store.alerts()} == {"dev-07"}
    # then 12 of 50 devices drift (0.24 >= 0.2): a cohort alert opens
    cohort = {f"dev-{i:02d}" for i in range(7, 19)}
    for k in range(16, 26):
        run_round(devices, rng, cohort, k)
    wait_for(lambda: server.counters["windows_scored"] == 50 * 26, what="scoring of round 25")
    open_scopes = {scope for scope, *_ in server.policy.open_alerts()}
    assert COHORT in open_scopes
    assert open_scopes - {COHORT} == cohort
    # every window acknowledged, and exactly what was acknowledged is stored
    for d in devices:
        assert d.acked == set(range(1, 27))
        d.close()
    assert server.store.record_count("window") == 50 * 26 == server.counters["records"]
    assert server.counters["rejects"] == 0 and server.counters["windows_scored"] == 50 * 26


def test_resend_is_acked_again_but_stored_and_scored_once(server: CollectorServer, ctx: zmq.Context, rng) -> None:
    d = Device(ctx, server.endpoint, "dev-r")
    d.send_records(d.record("hello", streams.hello_body(streams.profile(np.random.default_rng(20261121)))))
    d.reply()
    window = d.record("window", streams.window_body(rng), 1)
    d.send_records(window)
    first = d.reply()
    d.send_records(window)  # the ack was "lost": the device resends
    second = d.reply()
    assert [(a.first, a.last) for a in first.acks] == [(1, 1)] == [(a.first, a.last) for a in second.acks]
    assert server.store.record_count("window") == 1
    wait_for(lambda: server.counters["windows_scored"] == 1, what="the window to be scored")
    assert server.counters["duplicates"] == 1 and server.counters["windows_scored"] == 1
    d.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COLLECTOR = "import sys; from edge.cli import main; sys.exit(main(sys.argv[1:]))"


def test_collector_process_sigkill_loses_nothing_acknowledged(tmp_path: Path, spawn, ctx: zmq.Context, rng) -> None:
    db = tmp_path / "svc.db"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    args = ("collector", "--bind", endpoint, "--db", str(db), "--no-http")
    proc = spawn(COLLECTOR, *args)
    assert "ingest on" in proc.stdout.readline(), proc.stderr.read()
    d = Device(ctx, endpoint, "dev-k")
    for _ in range(40):  # batches of 5 windows; only what came back acked counts
        d.send_records(*(d.record("window", streams.window_body(rng), 0) for _ in range(5)))
        assert d.reply() is not None
    d.send_records(*(d.record("window", streams.window_body(rng), 0) for _ in range(5)))  # in flight at the kill
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(d.acked) == 200
    with RecordStore(db) as store:
        assert {("dev-k", d.boot, s) for s in d.acked} <= store.keys()
    restarted = spawn(COLLECTOR, *args)
    assert "ingest on" in restarted.stdout.readline(), restarted.stderr.read()
    d.send_records(d.record("window", streams.window_body(rng), 0))
    assert d.reply() is not None and 206 in d.acked
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(timeout=20) == 0
    d.close()


@pytest.fixture
def curve_server(tmp_path: Path) -> Iterator[tuple[CollectorServer, Path]]:
    keys = tmp_path / "keys"
    generate_keypair(keys, "collector")
    generate_keypair(keys / "devices", "dev-ok")
    generate_keypair(tmp_path / "strangers", "dev-unknown")
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "k.db", http=None, keys=keys))
    yield s, tmp_path
    s.close()


def curve_keys(secret_file: Path, server_public: bytes) -> CurveKeys:
    public, secret = load_keypair(secret_file)
    return CurveKeys(public, secret, server_public)


def test_curve_allow_list_unknown_key_and_plaintext_get_nothing_in(curve_server, ctx: zmq.Context, rng) -> None:
    server, root = curve_server
    server_public = load_keypair(root / "keys" / "collector.key_secret")[0]
    stranger = Device(ctx, server.endpoint, "dev-unknown", curve_keys(root / "strangers/dev-unknown.key_secret",
                                                                      server_public))  # fmt: skip
    plain = Device(ctx, server.endpoint, "dev-plain")
    for d in (stranger, plain):
        d.send_records(d.record("window", streams.window_body(rng), 0))
    wait_for(lambda: server.zap.refused >= 1, what="the ZAP handler to refuse the unknown key")
    good = Device(ctx, server.endpoint, "dev-ok", curve_keys(root / "keys/devices/dev-ok.key_secret", server_public))
    good.send_records(good.record("window", streams.window_body(rng), 0))
    assert good.reply() is not None and good.acked == {1}
    # absence can only be observed over a bounded wait: the refused peers never get a reply
    assert stranger.reply(timeout_ms=500) is None and plain.reply(timeout_ms=500) is None
    assert server.counters["messages"] == 1
    assert server.store.keys() == {("dev-ok", good.boot, 1)}
    for d in (stranger, plain, good):
        d.close()


def test_bad_bind_is_a_config_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="expected a bindable endpoint"):
        CollectorServer(CollectorSettings(bind="tcp://999.0.0.1:1", db=tmp_path / "x.db", http=None))


def test_profile_uploaded_once_by_hash_then_windows_are_scored(tmp_path: Path, ctx: zmq.Context, rng) -> None:
    import json
    import urllib.error
    import urllib.request

    prof = streams.profile(rng)
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "u.db", http=("127.0.0.1", 0), horizons=(5,))
    with CollectorServer(settings) as server:
        d = Device(ctx, server.endpoint, "dev-u")
        d.send_records(d.record("hello", streams.hello_body(prof)))
        d.reply()
        assert server.counters["unknown_profile"] == 1 and not server.engine.has_reference(streams.MODEL)

        def put(pid: str, body: bytes) -> tuple[int, dict]:
            req = urllib.request.Request(f"{server.http.url}/api/profiles/{pid}", data=body, method="PUT")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        status, doc = put("0" * 16, prof.to_bytes())
        assert status == 400 and f"got {prof.profile_id}" in doc["error"]
        assert put(prof.profile_id, prof.to_bytes()) == (201, {"profile": prof.profile_id, "stored": True})
        assert put(prof.profile_id, prof.to_bytes())[0] == 200  # uploaded once: the second time changes nothing
        d.send_records(d.record("hello", streams.hello_body(prof)))  # e.g. after a reconnect
        d.reply()
        d.send_records(d.record("window", streams.window_body(rng), 1))
        assert d.reply() is not None
        wait_for(lambda: server.counters["windows_scored"] == 1, what="the window to be scored")
        d.close()
    with RecordStore(tmp_path / "u.db") as store:
        assert store.profile_ids() == [prof.profile_id]
