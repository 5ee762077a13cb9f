"""The scoring thread: windows scored off the ack path, a full queue counted (never silent), a backlog of one
device merged exactly; the store's frame format and its old body-only format."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import collector_streams as streams
import msgpack
import numpy as np
from collector_support import wait_for

from edge.collector.alerts import AlertPolicy, Rule
from edge.collector.engine import DriftEngine
from edge.collector.scoring import ScoringWorker
from edge.collector.series import DriftSeries
from edge.collector.store import RecordStore
from edge.telemetry.protocol import Record, encode_record


def frames(rng: np.random.Generator, n: int, device: str = "d", shift: float = 0.0) -> list[tuple[str, int, bytes]]:
    out = []
    for seq in range(1, n + 1):
        body = streams.window_body(rng, shift=shift)
        out.append((device, seq, encode_record(Record("window", device, "b", seq, seq, 1, body))))
    return out


def worker(
    tmp_path: Path, rng: np.random.Generator, capacity: int, store: RecordStore | None = None
) -> tuple[ScoringWorker, dict[str, int], RecordStore]:
    """A started worker on ``store`` (default a new one at ``tmp_path``), done with its start-up catch-up (the
    caller closes both)."""
    engine = DriftEngine(horizons=(5,))
    engine.set_reference(streams.reference(rng))
    policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=3, min_samples=200),), horizon=5)
    counters = dict.fromkeys(("windows_scored", "windows_from_store", "engine_errors", "alerts"), 0)
    store = RecordStore(tmp_path / "w.db") if store is None else store
    w = ScoringWorker(engine, policy, DriftSeries(5), counters, lambda: ([], []), store.scoring_log(),
                      capacity=capacity)  # fmt: skip
    w.start()
    assert w.drain(30)
    return w, counters, store


def persisted(store: RecordStore) -> tuple[int, int]:
    """The scoring cursor as stored: (rowid of the last window scored, windows scored)."""
    log = store.scoring_log()
    try:
        return log.cursor()
    finally:
        log.close()


def stored(store: RecordStore, batch: list[tuple[str, int, bytes]]) -> list[tuple[int, str, int, bytes]]:
    """Commit ``batch``'s windows; what the server submits for them: ``(rowid, device, t_ns, frame)``."""
    for device, seq, frame in batch:
        store.add_frame(device, "b", seq, "window", seq, 1, frame, 0)
    result = store.commit()
    assert result.stored == tuple((d, "b", seq) for d, seq, _ in batch)
    return [(i, d, seq, frame) for i, (d, seq, frame) in zip(result.ids, batch, strict=True)]


def test_a_full_queue_is_read_back_from_the_store(tmp_path: Path, rng: np.random.Generator) -> None:
    w, counters, store = worker(tmp_path, rng, capacity=2)
    try:
        batch = frames(rng, 6)
        with w.lock:  # the worker takes the first window and waits for the engine
            w.submit(stored(store, batch[:1]))
            wait_for(lambda: w.queued == 0, what="the worker to take the first window")
            w.submit(stored(store, batch[1:]))  # 5 do not fit in 2: none queued, the worker reads the store
            assert w.queued == 0
        assert w.drain(30)
        assert counters["windows_scored"] == 6 and counters["windows_from_store"] == 5
        assert counters["engine_errors"] == 0
        assert persisted(store) == (6, 6)  # persisted: rowid of the last window, windows scored
    finally:
        w.close()
        store.close()


def test_a_merged_backlog_scores_like_window_by_window(tmp_path: Path, rng: np.random.Generator) -> None:
    batch = frames(rng, 8, shift=1.0)  # drifting from the start: PSI over 0.25 on every feature
    w, counters, store = worker(tmp_path, np.random.default_rng(5), capacity=64)
    try:
        with w.lock:
            w.submit(stored(store, batch[:1]))
            wait_for(lambda: w.queued == 0, what="the worker to take the first window")
            w.submit(stored(store, batch[1:]))  # 7 windows of one device queue up: merged, scored once, counted as 7
        assert w.drain(30)
        assert counters["windows_scored"] == 8 and counters["windows_from_store"] == 0
        merged = w.series.latest("d", streams.MODEL)
    finally:
        w.close()
        store.close()
    one_by_one = DriftEngine(horizons=(5,))
    one_by_one.set_reference(streams.reference(np.random.default_rng(5)))
    for _, t_ns, frame in batch:
        last = one_by_one.observe_window("d", msgpack.unpackb(frame)["body"], t_ns, score_fleet=False)[-1]
    assert merged.t_ns == last.t_ns == 8
    np.testing.assert_array_equal(np.array(merged.scores["psi"]), last.scores["psi"])
    # the first window alone has too few samples (100 < 200); the merged evaluation stands for 7 windows, so
    # persistence 3 is reached (counted as 1 it would not be), as it is window by window
    assert {a[0] for a in w.policy.open_alerts()} == {"d", "fleet"}


def test_store_keeps_frames_and_reads_old_body_only_files(tmp_path: Path, rng: np.random.Generator) -> None:
    (_, _, frame), *_ = frames(rng, 1)
    with RecordStore(tmp_path / "new.db") as store:
        store.add_frame("d", "b", 1, "window", 1, 1, frame, 5)
        store.add("d", "b", 2, "window", 2, 1, {"i": 2})
        store.commit()
        assert [r[4] for r in store.iter_records("window")] == [msgpack.unpackb(frame)["body"], {"i": 2}]
    raw = sqlite3.connect(tmp_path / "new.db")
    assert raw.execute("SELECT body FROM records WHERE seq = 1").fetchone()[0] == frame  # stored as received
    raw.close()
    old = sqlite3.connect(tmp_path / "old.db")  # a file of the body-only format (user_version 0)
    old.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, device TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,"
        " kind TEXT NOT NULL, t_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,"
        " body BLOB NOT NULL, UNIQUE (device, boot, seq))"
    )
    old.execute("INSERT INTO records VALUES (1, 'd', 'b', 1, 'window', 0, 0, 0, ?)", (msgpack.packb({"i": 1}),))
    old.commit()
    old.close()
    with RecordStore(tmp_path / "old.db") as store:
        store.add_frame("d", "b", 2, "window", 1, 1, frame, 5)
        result = store.commit()
        assert result.stored == (("d", "b", 2),)
        assert [r[4] for r in store.iter_records("window")] == [{"i": 1}, msgpack.unpackb(frame)["body"]]


def test_group_commit_tells_duplicates_apart(tmp_path: Path, rng: np.random.Generator) -> None:
    batch = frames(rng, 3)
    with RecordStore(tmp_path / "g.db") as store:
        store.add_frame("d", "b", 2, "window", 2, 1, batch[1][2], 5)
        assert store.commit().stored == (("d", "b", 2),)
        for _, seq, frame in [*batch, batch[0]]:  # seq 2 is already stored; seq 1 comes twice in one batch
            store.add_frame("d", "b", seq, "window", seq, 1, frame, 6)
        result = store.commit()
        assert result.stored == (("d", "b", 1), ("d", "b", 3))
        assert result.duplicates == (("d", "b", 2), ("d", "b", 1))
        assert store.record_count() == 3


def test_server_acks_before_scoring_drain_waits_and_seq_over_2_63_is_a_limit(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    import zmq
    from collector_devices import Device

    from edge.collector.server import CollectorServer, CollectorSettings
    from edge.drift.profile import save_profile

    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "s.db", http=None, profiles=tmp_path / "p",
                                 horizons=(5,))  # fmt: skip
    ctx = zmq.Context()
    try:
        with CollectorServer(settings) as server:
            d = Device(ctx, server.endpoint, "dev-s")
            d.send_records(d.record("hello", streams.hello_body(prof)))
            assert d.reply() is not None
            d.send_records(*(d.record("window", streams.window_body(rng), k) for k in range(20)))
            assert d.reply() is not None and d.acked == set(range(1, 21))
            assert server.drain(30)
            assert server.counters["windows_scored"] == 20 and server.counters["windows_from_store"] == 0
            big = msgpack.packb({**d.record("window", streams.window_body(rng)).to_map(), "seq": 1 << 63})
            d.send(big)
            reply = d.reply()
            assert [(r.seq, r.code) for r in reply.rejected] == [(1 << 63, "limit")]
            assert "record.seq: expected at most 9223372036854775807" in reply.rejected[0].message
            d.close()
    finally:
        ctx.destroy(linger=0)


def test_a_commit_longer_than_a_batch_is_split_in_order_and_scored_whole(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    batch = frames(rng, 11, shift=0.5)
    w, counters, store = worker(tmp_path, np.random.default_rng(5), capacity=64)
    w.batch_windows = 4  # the 11 windows of one submit: taken as 4 + 4 + 3, in order
    try:
        with w.lock:
            w.submit(stored(store, batch))
            wait_for(lambda: w.queued == 7, what="the worker to take the first 4 windows")
        assert w.drain(30)
        assert counters["windows_scored"] == 11 and counters["windows_from_store"] == 0
        merged = w.series.latest("d", streams.MODEL)
    finally:
        w.close()
        store.close()
    one_by_one = DriftEngine(horizons=(5,))
    one_by_one.set_reference(streams.reference(np.random.default_rng(5)))
    for _, t_ns, frame in batch:
        last = one_by_one.observe_window("d", msgpack.unpackb(frame)["body"], t_ns, score_fleet=False)[-1]
    assert merged.t_ns == last.t_ns == 11
    np.testing.assert_array_equal(np.array(merged.scores["psi"]), last.scores["psi"])


def test_a_stop_needs_no_drain_the_next_start_scores_the_rest_once(tmp_path: Path, rng: np.random.Generator) -> None:
    """close() ends at once, however long the backlog (the stop that timed out after a device-id flood): the batch
    in hand is dropped unkept; the next worker on the store scores exactly the windows the first one left."""
    w, counters, store = worker(tmp_path, np.random.default_rng(5), capacity=4096)
    w.batch_windows = 8
    try:
        closer = threading.Thread(target=w.close, name="test-closer")
        with w.lock:
            w.submit(stored(store, frames(rng, 400)))
            wait_for(lambda: w.queued == 392, what="the worker to take its first batch")
            closer.start()
            wait_for(lambda: w.stopping, what="close() to be called")
        closer.join(10.0)
        assert not closer.is_alive() and counters["windows_scored"] == 0
        assert persisted(store) == (0, 0)  # the batch in hand was not kept
        again, counters2, _ = worker(tmp_path, np.random.default_rng(5), capacity=4096, store=store)
        again.close()
        assert counters2["windows_from_store"] == 400 and counters2["windows_scored"] == 400
        assert persisted(store) == (400, 400)
    finally:
        w.close()
        store.close()
