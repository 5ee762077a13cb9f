"""Fair backpressure: while scoring is behind, messages wait per connection and are taken in turn, so a connection
that floods the collector does not starve one that sends a little; a connection over its in-flight share is answered
at once without acks (its records stay in its spool) instead of filling the collector's memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import collector_streams as streams
import numpy as np
import zmq
from collector_devices import Device
from collector_support import wait_for

from edge.collector.fairness import PeerQueues
from edge.collector.server import CollectorServer, CollectorSettings


def test_peer_queues_take_in_turn_and_cap_each_connection() -> None:
    q = PeerQueues(per_peer=2, total=5)
    assert q.take() is None and not q.full
    for i in range(2):
        assert q.park((b"flood", None, [b"f%d" % i]))
    assert not q.park((b"flood", None, [b"f2"]))  # over its share
    assert q.park((b"a", None, [b"a0"])) and q.park((b"b", None, [b"b0"])) and q.park((b"a", None, [b"a1"]))
    assert q.full and len(q) == 5
    taken = [q.take()[2][0] for _ in range(5)]  # type: ignore[index]
    assert taken == [b"f0", b"a0", b"b0", b"f1", b"a1"]  # one per connection per turn, each in its order
    assert q.take() is None and len(q) == 0


@contextmanager
def flood_and_quiet(db: Path, scoring_queue: int) -> Iterator[tuple[CollectorServer, Device, Device]]:
    """A collector with a small scoring queue, started and caught up, and two devices on their own connections."""
    server = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=None,
                                               scoring_queue=scoring_queue))  # fmt: skip
    ctx = zmq.Context()
    try:
        flood, quiet = Device(ctx, server.endpoint, "flood"), Device(ctx, server.endpoint, "quiet")
        assert server.drain(20)
        yield server, flood, quiet
        flood.close()
        quiet.close()
    finally:
        ctx.destroy(linger=0)
        server.close()


def scoring_waits(server: CollectorServer, flood: Device, body: dict) -> None:
    """With ``server.scoring.lock`` held: one window sent and taken by the scoring thread, which then waits on the
    lock with an empty queue."""
    flood.send_records(flood.record("window", body))
    assert flood.reply() is not None
    wait_for(lambda: server.scoring.queued == 0, what="the scoring thread to take the first window")


def window_ids(db: Path) -> dict[tuple[str, int], int]:
    con = sqlite3.connect(db)
    try:
        return {(d, s): i for i, d, s in con.execute("SELECT id, device, seq FROM records WHERE kind = 'window'")}
    finally:
        con.close()


def test_a_flooding_connection_does_not_starve_a_quiet_one(tmp_path: Path, rng: np.random.Generator) -> None:
    """Scoring held at its high-water mark (8 // 2 windows queued): the flood's next four messages wait, its fifth is
    answered without acks, the quiet device's one message waits behind them; once scoring runs again the quiet
    device is served in the first turn, before the flood's later messages (FIFO would serve it last)."""
    with flood_and_quiet(tmp_path / "f.db", scoring_queue=8) as (server, flood, quiet):
        with server.scoring.lock:
            scoring_waits(server, flood, streams.window_body(rng))
            for _ in range(4):  # the high-water mark: 4 windows waiting
                flood.send_records(flood.record("window", streams.window_body(rng)))
                assert flood.reply() is not None
            assert server.scoring.queued == 4
            for _ in range(4):  # wait: the connection's share
                flood.send_records(*(flood.record("window", streams.window_body(rng)) for _ in range(2)))
            wait_for(lambda: server.health.get("messages_waiting") == 4.0, what="four flood messages waiting")
            flood.send_records(flood.record("window", streams.window_body(rng)))  # over its share
            deferred = flood.reply()
            assert deferred is not None and deferred.acks == () and deferred.rejected == ()
            assert server.counters["messages_deferred"] == 1
            quiet.send_records(quiet.record("window", streams.window_body(rng)))
            wait_for(lambda: server.health.get("messages_waiting") == 5.0, what="the quiet device's message waiting")
            assert quiet.reply(timeout_ms=100) is None
        reply = quiet.reply()
        assert reply is not None and [(a.first, a.last) for a in reply.acks] == [(1, 1)]
        for _ in range(4):
            reply = flood.reply()
            assert reply is not None and len(reply.acks) == 1
        assert server.drain(20) and server.counters["records"] == 14  # 1 + 4 + 4 * 2 + the quiet one
        ids = window_ids(tmp_path / "f.db")
        assert len(ids) == 14 and ("flood", 14) not in ids  # the deferred record was not stored
        after_quiet = [key for key, i in ids.items() if key[0] == "flood" and i > ids[("quiet", 1)]]
        order = sorted(ids, key=ids.__getitem__)
        assert len(after_quiet) >= 4, f"the quiet device waited for the flood: {order}"


def test_above_the_high_water_mark_a_connection_within_its_share_is_still_acked(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Scoring held with the flood's 256 windows queued (the high-water mark of a 512-window queue): the flood's
    next messages wait, while the quiet device, with nothing unscored, gets each of its messages stored and acked
    at once, scoring still held (its share of the headroom: 256 windows over the connections with windows
    waiting)."""
    body = streams.window_body(rng)
    with flood_and_quiet(tmp_path / "s.db", scoring_queue=512) as (server, flood, quiet):
        with server.scoring.lock:
            scoring_waits(server, flood, body)
            for _ in range(4):  # 4 * 64 windows: the high-water mark
                flood.send_records(*(flood.record("window", body) for _ in range(64)))
                assert flood.reply() is not None
            assert server.scoring.queued == 256
            for _ in range(4):
                flood.send_records(*(flood.record("window", body) for _ in range(64)))
            wait_for(lambda: server.health.get("messages_waiting") == 4.0, what="the flood's messages waiting")
            for k in range(1, 11):  # acked one by one while scoring is held and the flood waits
                quiet.send_records(quiet.record("window", body))
                reply = quiet.reply(timeout_ms=5000)
                assert reply is not None and [(a.first, a.last) for a in reply.acks] == [(k, k)]
            assert flood.reply(timeout_ms=100) is None and server.health["messages_waiting"] == 4.0
            assert server.scoring.queued == 266
        for _ in range(4):
            reply = flood.reply()
            assert reply is not None and len(reply.acks) == 1
        assert server.drain(20) and server.counters["records"] == 1 + 8 * 64 + 10
