"""The publisher against a real ROUTER peer: acks empty the spool; the collector absent for a while (the spool grows,
everything arrives once it is back, nothing twice); a collector that stops answering (reconnect, replay); CURVE with
an allow-list (an unknown key and a plaintext peer are refused); heartbeats."""

from __future__ import annotations

from pathlib import Path

import zmq
from fake_collector import CollectorPeer, wait_for
from zmq.utils.monitor import recv_monitor_message

from edge.telemetry.security import generate_keypair, load_keypair, load_public_key


def test_acked_records_leave_the_spool_and_heartbeats_flow(make_tap, collector, driver) -> None:
    tap = make_tap(collector.endpoint, heartbeat_s=0.05)
    tap.bind(driver.ctx, None)
    driver.run(tap, 41)  # 4 windows closed
    wait_for(lambda: tap.publisher.acked == 4 and tap.publisher.spool.pending == 0, what="4 acked windows")
    assert [w.seq for w in collector.of_kind("window")] == [1, 2, 3, 4]
    assert collector.duplicates == 0
    wait_for(lambda: collector.heartbeats >= 2, what="heartbeats while idle")
    assert collector.hellos[0].boot == tap.boot_id and collector.hellos[0].seq == 0


def test_collector_absent_then_back(make_tap, driver, tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/collector.sock"
    tap = make_tap(endpoint, backoff_max_s=0.2)
    tap.bind(driver.ctx, None)
    driver.run(tap, 51)  # 5 windows closed while nobody listens
    spool = tap.publisher.spool
    wait_for(lambda: tap.publisher.seq == 5, what="5 windows spooled")
    assert spool.pending == 5 and tap.publisher.acked == 0 and tap.drops == 0
    assert len(list(spool.dir.glob("seg-*.log"))) >= 1 and spool.total_bytes > 0
    peer = CollectorPeer(endpoint)
    try:
        driver.run(tap, 50)  # 5 more while it is back
        wait_for(lambda: spool.pending == 0 and tap.publisher.seq == 10, what="everything acked")
        assert [w.seq for w in peer.of_kind("window")] == list(range(1, 11))
        assert peer.received == 10 and peer.duplicates == 0
    finally:
        tap.close()
        peer.close()


def test_a_collector_that_stops_answering_is_replaced_and_nothing_is_lost(make_tap, driver, tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/collector.sock"
    mute = CollectorPeer(endpoint, ack=False)
    tap = make_tap(endpoint, ack_timeout_s=0.2, backoff_min_s=0.05, backoff_max_s=0.2)
    tap.bind(driver.ctx, None)
    try:
        driver.run(tap, 31)
        wait_for(lambda: mute.received >= 3 and tap.publisher.reconnects >= 1, what="a timeout and a reconnect")
        assert tap.publisher.acked == 0
    finally:
        mute.close()
    peer = CollectorPeer(endpoint)
    try:
        driver.run(tap, 30)
        wait_for(lambda: tap.publisher.seq == 6 and tap.publisher.spool.pending == 0, what="replay after reconnect")
        assert sorted(w.seq for w in peer.of_kind("window")) == [1, 2, 3, 4, 5, 6]
    finally:
        tap.close()
        peer.close()


def _keys(tmp_path: Path) -> dict[str, tuple[bytes, bytes]]:
    out = {}
    for name in ("dev-1", "collector", "intruder"):
        generate_keypair(tmp_path / "keys", name)
        out[name] = load_keypair(tmp_path / "keys" / f"{name}.key_secret")
    return out


def test_curve_allow_list_accepts_known_devices_and_refuses_the_rest(make_tap, make_driver, rng, tmp_path) -> None:
    keys = _keys(tmp_path)
    assert load_public_key(tmp_path / "keys" / "dev-1.key") == keys["dev-1"][0]
    server_public, server_secret = keys["collector"]
    peer = CollectorPeer(curve=(server_public, server_secret, [keys["dev-1"][0]]))
    try:
        good = make_tap(peer.endpoint, curve_keypair="keys/dev-1.key_secret", collector_public_key="keys/collector.key")
        d1 = make_driver(rng)
        good.bind(d1.ctx, None)
        d1.run(good, 21)
        wait_for(lambda: good.publisher.acked == 2, what="2 windows over CURVE")
        assert peer.zap.accepted >= 1

        bad = make_tap(
            peer.endpoint,
            device_id="intruder",
            curve_keypair="keys/intruder.key_secret",
            collector_public_key="keys/collector.key",
        )
        d2 = make_driver(rng)
        bad.bind(d2.ctx, None)
        d2.run(bad, 21)
        wait_for(lambda: peer.zap.refused >= 1, what="the unknown key refused")
        assert bad.publisher.acked == 0 and bad.publisher.spool.pending == 2
        assert all(r.device != "intruder" for r in peer.records.values())

        # a plaintext peer never completes the handshake with a CURVE server
        ctx = zmq.Context()
        plain = ctx.socket(zmq.DEALER)
        plain.linger = 0
        monitor = plain.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        plain.connect(peer.endpoint)
        try:
            assert monitor.poll(10_000), "no handshake event within 10 s"
            assert recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        finally:
            plain.disable_monitor()
            monitor.close(linger=0)
            plain.close(linger=0)
            ctx.term()
        assert peer.hellos and all(h.device == "dev-1" for h in peer.hellos)  # only the allowed device got in
    finally:
        peer.close()  # the taps are closed by their fixture
