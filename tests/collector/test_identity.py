"""A device identity bound to its CURVE key (PROTOCOL.md §1, §5 code ``identity``), over real CURVE sockets on
loopback: a key writes only as the device (or pattern) it is bound to, whatever path its record takes (native window
check, decoded events, hellos); bindings come from the key files (``edge keys gen --device``, ``edge keys allow``,
or the file stem of keys made before bindings existed); a revoked key writes nothing more."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import collector_streams as streams
import pytest
import zmq
import zmq.auth
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings, _loopback, load_server_keys
from edge.errors import ConfigError
from edge.telemetry.security import (
    CurveKeys,
    check_binding,
    device_binding,
    enroll_device_key,
    generate_keypair,
    load_keypair,
    load_public_key,
)


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    root = tmp_path / "keys"
    generate_keypair(root, "collector")
    generate_keypair(root / "devices", "dev-a")
    generate_keypair(root / "devices", "dev-b")
    generate_keypair(root / "devices", "fleet", device="robot-*")
    zmq.auth.create_certificates(root / "devices", "legacy-7")  # a key made before bindings: bound to its stem
    return root


@pytest.fixture
def server(tmp_path: Path, keys: Path) -> Iterator[CollectorServer]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None, keys=keys))
    yield s
    s.close()


@pytest.fixture
def connect(server: CollectorServer, keys: Path, ctx: zmq.Context) -> Iterator:
    made: list[Device] = []
    server_public = load_keypair(keys / "collector.key_secret")[0]

    def make(key_name: str, device: str) -> Device:
        public, secret = load_keypair(keys / "devices" / f"{key_name}.key_secret")
        made.append(Device(ctx, server.endpoint, device, CurveKeys(public, secret, server_public)))
        return made[-1]

    yield make
    for d in made:
        d.close()


def test_a_key_cannot_write_as_another_device(server, connect, rng) -> None:
    honest, thief = connect("dev-b", "dev-b"), connect("dev-a", "dev-b")  # key A claims to be dev-b
    honest.send_records(honest.record("window", streams.window_body(rng), 0))
    assert honest.reply().acks and honest.acked == {1}
    thief.send_records(thief.record("window", streams.window_body(rng), 0), thief.record("event", _event(), 0))
    rep = thief.reply()
    assert rep.acks == () and [(r.seq, r.code) for r in rep.rejected] == [(1, "identity"), (2, "identity")]
    assert "bound to ('dev-a'), got 'dev-b'" in rep.rejected[0].message
    assert server.store.keys() == {("dev-b", honest.boot, 1)}
    assert server.counters["identity_rejects"] == 2 and server.counters["rejects"] == 2


def test_good_and_forged_records_in_one_message(server, connect, rng) -> None:
    dev = connect("dev-a", "dev-a")
    first = dev.record("window", streams.window_body(rng), 0)
    forged = replace(dev.record("window", streams.window_body(rng), 0), device="dev-b")
    dev.send_records(first, forged, dev.record("event", _event(), 0))
    rep = dev.reply()
    assert dev.acked == {1, 3} and [(r.seq, r.code) for r in rep.rejected] == [(2, "identity")]
    assert server.store.keys() == {("dev-a", dev.boot, 1), ("dev-a", dev.boot, 3)}


def test_a_hello_under_another_id_is_not_taken(server, connect, rng) -> None:
    thief = connect("dev-a", "dev-b")
    thief.send_records(thief.record("hello", streams.hello_body(streams.profile(rng))))
    rep = thief.reply()
    assert [(r.boot, r.seq, r.code) for r in rep.rejected] == [(thief.boot, 0, "identity")]
    assert server.store.devices() == []


def test_pattern_and_legacy_bindings(server, connect, rng) -> None:
    for name in ("robot-1", "robot-22"):
        d = connect("fleet", name)
        d.send_records(d.record("window", streams.window_body(rng), 0))
        assert d.reply().acks and d.acked == {1}
    car = connect("fleet", "car-1")
    car.send_records(car.record("window", streams.window_body(rng), 0))
    assert car.reply().rejected[0].code == "identity"
    legacy, impostor = connect("legacy-7", "legacy-7"), connect("legacy-7", "dev-a")
    for d in (legacy, impostor):
        d.send_records(d.record("window", streams.window_body(rng), 0))
    assert legacy.reply().acks and impostor.reply().rejected[0].code == "identity"
    assert {k[0] for k in server.store.keys()} == {"robot-1", "robot-22", "legacy-7"}


def test_a_revoked_key_writes_nothing_more(server, connect, keys, rng) -> None:
    dev = connect("dev-a", "dev-a")
    dev.send_records(dev.record("window", streams.window_body(rng), 0))
    assert dev.reply().acks
    server.zap.revoke(load_keypair(keys / "devices" / "dev-a.key_secret")[0])  # the connection stays up
    dev.send_records(dev.record("window", streams.window_body(rng), 0))
    assert dev.reply().rejected[0].code == "identity" and dev.acked == {1}


def test_bindings_from_key_files(tmp_path: Path, keys: Path) -> None:
    _, _, bound = load_server_keys(keys)
    by_name = {device_binding(p): load_public_key(p) for p in (keys / "devices").glob("*.key")}
    assert sorted(bound.values()) == ["dev-a", "dev-b", "legacy-7", "robot-*"]
    assert all(bound[k] == name for name, k in by_name.items())
    # enrolment copies the public key only, bound as the key says or as told
    enrolled = enroll_device_key(keys / "devices" / "fleet.key", tmp_path / "other", device="robot-7")
    assert enrolled == tmp_path / "other" / "devices" / "fleet.key" and device_binding(enrolled) == "robot-7"
    assert "secret" not in enrolled.read_text()
    generate_keypair(tmp_path / "x", "fleet")  # another key under the same name is not silently replaced
    with pytest.raises(ConfigError, match="already holds another device's key"):
        enroll_device_key(tmp_path / "x" / "fleet.key", tmp_path / "other")
    for bad in ("", "a b", 'x"y', "d" * 257):
        with pytest.raises(ConfigError, match="expected a device id or pattern"):
            check_binding(bad)


def test_keys_cli_gen_and_allow(tmp_path: Path) -> None:
    def edge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=60)

    out = edge("keys", "gen", "--out", str(tmp_path), "--name", "r1", "--device", "robot-*")
    assert out.returncode == 0 and "bound to device: robot-*" in out.stdout
    out = edge("keys", "allow", str(tmp_path / "r1.key"), "--keys", str(tmp_path / "collector"))
    assert out.returncode == 0 and device_binding(tmp_path / "collector" / "devices" / "r1.key") == "robot-*"
    out = edge("keys", "allow", str(tmp_path / "missing.key"), "--keys", str(tmp_path / "collector"))
    assert out.returncode == 2 and "missing.key" in out.stderr and "Traceback" not in out.stderr


def test_plaintext_collector_says_identities_are_unauthenticated(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="edge.collector"):
        CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "p.db", http=None)).close()
    said = [r for r in caplog.records if "device identities are unauthenticated" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO  # on loopback: said, not shouted
    assert [_loopback(e) for e in ("tcp://127.0.0.1:7450", "tcp://localhost:1", "tcp://[::1]:5", "ipc:///tmp/c",
                                   "tcp://0.0.0.0:7450", "tcp://10.1.2.3:7450", "tcp://[::]:7450")] == [
        True, True, True, True, False, False, False]  # fmt: skip


def _event() -> dict:
    return {"name": "swap", "fields": {"model": "m@2"}}
