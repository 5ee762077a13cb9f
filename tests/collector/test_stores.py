"""The store interface, run on both backends (``store_url``: a SQLite file and a fresh database on a throw-away
PostgreSQL server): records and their dedup, rows the store cannot take, devices, profiles, alerts, the scoring
cursor and series; and a collector on each backend that keeps its history across a restart."""

from __future__ import annotations

from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store
from edge.drift.profile import save_profile
from edge.errors import ConfigError


def test_records_dedup_ids_and_rows_it_cannot_take(store_url: str) -> None:
    store = open_store(store_url)
    try:
        for seq in (1, 2, 3):
            store.add("d", "b", seq, "window", seq, 0, {"i": seq})
        store.add("d", "b", 2, "window", 2, 0, {"i": 99})  # seq 2 twice in one batch
        first = store.commit()
        assert first.stored == (("d", "b", 1), ("d", "b", 2), ("d", "b", 3)) and first.duplicates == (("d", "b", 2),)
        assert list(first.ids) == sorted(first.ids) and len(set(first.ids)) == 3
        store.add("d", "b", 2, "window", 2, 0, {"i": 99})  # a resend after a lost ack
        store.add("d", "b2", 2, "event", 5, 0, {"i": 2})  # same seq, new boot: a different record
        store.add("d", "b", 1 << 63, "window", 0, 0, {"i": 0})  # beyond int64: not taken, the rest is
        second = store.commit()
        assert second.stored == (("d", "b2", 2),) and second.duplicates == (("d", "b", 2),)
        assert second.failed == (("d", "b", 1 << 63),) and second.ids[0] > max(first.ids)
        assert [r[4] for r in store.iter_records("window")] == [{"i": 1}, {"i": 2}, {"i": 3}]
        assert store.record_count() == store.stored_records() == 4 and store.record_count("event") == 1
        assert store.keys() == {("d", "b", 1), ("d", "b", 2), ("d", "b", 3), ("d", "b2", 2)}
    finally:
        store.close()


def test_devices_profiles_and_alerts(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.seen("d1", "b1", 10, {"model": "m@1", "profile": "p1", "latency_edges_us": [1.0, 2.0]})
        store.seen("d1", "b2", 20)  # a heartbeat keeps the hello
        store.seen("d2", "b1", 15, {"model": "m@1", "profile": "p1"})
        assert [d["last_seen_ns"] for d in store.devices()] == [20, 15] and store.devices()[0]["boot"] == "b2"
        assert store.hellos()[0] == ("d1", {"model": "m@1", "profile": "p1", "latency_edges_us": [1.0, 2.0]})
        assert store.models() == [{"model": "m@1", "profile": "p1", "devices": 2}]
        assert store.put_profile("p1", b"{}") and not store.put_profile("p1", b"{}")
        assert store.profile("p1") == b"{}" and store.profile("p2") is None and store.profile_ids() == ["p1"]
        a = store.open_alert("d1", "m@1", "f0", "psi", 0.4, 0.25, 100, "psi high")
        b = store.open_alert("fleet", "m@1", "f1", "psi", 0.3, 0.25, 101, "psi high")
        assert store.set_alert_state(a, "acknowledged", 110).acked_ns == 110
        assert store.set_alert_state(a, "resolved", 120).state == "resolved"
        assert store.set_alert_state(a, "acknowledged", 130).state == "resolved"  # stays resolved
        assert [r.id for r in store.alerts()] == [b, a] and [r.id for r in store.alerts("open")] == [b]
        assert store.alert(b).to_json()["value"] == 0.3 and store.alert(999) is None
        with pytest.raises(ConfigError, match="expected 'acknowledged' or 'resolved'"):
            store.set_alert_state(b, "gone", 1)
    finally:
        store.close()


def test_scoring_cursor_series_and_windows(store_url: str) -> None:
    store = open_store(store_url)
    log = store.scoring_log(capacity=3)
    try:
        for seq in range(1, 8):
            store.add("d1" if seq % 2 else "d2", "b", seq, "window", seq, 0, {"i": seq})
        ids = store.commit().ids
        assert log.cursor() == (0, 0) and log.last_window_id() == ids[-1]
        after = log.windows_after(ids[2], 3)
        assert [(w[0], w[1], w[2]) for w in after] == [(ids[3], "d2", 4), (ids[4], "d1", 5), (ids[5], "d2", 6)]
        recent = log.recent_windows(ids[5], 2)
        assert {d: [w[2] for w in ws] for d, ws in recent.items()} == {"d1": [3, 5], "d2": [4, 6]}
        assert [w[2] for w in log.device_windows("d1", ids[5], 2)] == [3, 5]  # an evicted track's reload
        assert [w[2] for w in log.device_windows("d2", ids[6], 9)] == [2, 4, 6]
        for k in range(5):  # five points, three kept; each commit moves the cursor from where the last left it
            log.commit(ids[k], k + 1, [("fleet", "m", 10, k, {"features": ["f"], "v": float(k)})],
                       after=ids[k - 1] if k else 0)  # fmt: skip
        assert log.cursor() == (ids[4], 5)
        assert [(p[3], p[4]["v"]) for p in log.series_points()] == [(2, 2.0), (3, 3.0), (4, 4.0)]
    finally:
        log.close()
        store.close()


def test_a_collector_on_each_backend_keeps_its_history(store_url: str, tmp_path: Path, rng) -> None:
    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=store_url, http=None, profiles=tmp_path / "p",
                                 horizons=(5,))  # fmt: skip
    ctx = zmq.Context()
    try:
        with CollectorServer(settings) as server:
            dev = Device(ctx, server.endpoint, "dev-1")
            dev.send_records(dev.record("hello", streams.hello_body(prof)))
            assert dev.reply() is not None
            for k in range(12):
                dev.send_records(dev.record("window", streams.window_body(rng, shift=0.5), k))
                assert dev.reply() is not None
            assert server.drain(30.0) and server.counters["windows_scored"] == 12
            before = server.series.series("dev-1", streams.MODEL, "psi")
            dev.close()
        with CollectorServer(settings) as again:
            assert again.drain(30.0) and again.counters["windows_scored"] == 0
            assert again.scoring.scored_total == again.store.record_count("window") == 12
            assert again.series.series("dev-1", streams.MODEL, "psi") == before and before["t_ns"]
            assert again.engine.has_reference(streams.MODEL)  # from the stored hello and profile
    finally:
        ctx.destroy(linger=0)
    assert np.isfinite(before["values"][-1]).all()


def test_a_postgresql_restart_acks_nothing_unstored_and_recovers(pg_cluster, tmp_path: Path, rng) -> None:
    """While the server is down the collector acknowledges nothing (the device keeps resending); once it is back the
    collector connects again by itself, and every window is stored and scored once."""
    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=pg_cluster.database(), http=None,
                                 profiles=tmp_path / "p", horizons=(5,))  # fmt: skip
    ctx = zmq.Context()
    try:
        with CollectorServer(settings) as server:
            dev = Device(ctx, server.endpoint, "dev-1")
            dev.send_records(dev.record("hello", streams.hello_body(prof)))
            assert dev.reply() is not None
            for k in range(5):
                dev.send_records(dev.record("window", streams.window_body(rng), k))
                assert dev.reply() is not None
            assert server.drain(30.0)
            pg_cluster.stop()
            try:
                late = dev.record("window", streams.window_body(rng), 5)
                dev.send_records(late)
                assert dev.reply(timeout_ms=1500) is None and 6 not in dev.acked  # not stored: not acknowledged
            finally:
                pg_cluster.start()
            for _ in range(20):  # the device's spool resends until acknowledged
                dev.send_records(late)
                if dev.reply(timeout_ms=1500) is not None and 6 in dev.acked:
                    break
            assert dev.acked == set(range(1, 7))
            assert server.drain(30.0)
            assert server.scoring.scored_total == server.store.record_count("window") == 6
            assert server.counters["windows_scored"] == 6
            dev.close()
    finally:
        ctx.destroy(linger=0)
