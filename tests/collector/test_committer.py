"""Group commit on its own thread: the ingest thread keeps receiving while a batch is written, and a message is
answered only after the commit that made its records durable; a failed commit acknowledges nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device
from collector_support import wait_for

from edge.collector.committer import GroupCommitter
from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.store import CommitResult, RecordStore


class GatedStore:
    """The server's real store, whose :meth:`write` waits at a gate the test opens (so a commit is provably in
    progress while the test looks at the socket)."""

    def __init__(self, store: RecordStore) -> None:
        self.store, self.entered, self.gate = store, threading.Event(), threading.Event()
        self.batches: list[int] = []

    def write(self, batch: list[tuple[Any, ...]]) -> CommitResult:
        self.batches.append(len(batch))
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        return self.store.write(batch)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[CollectorServer, GatedStore, zmq.Context]]:
    server = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "g.db", http=None))
    gate = GatedStore(server.store)
    server._committer.store = gate  # type: ignore[assignment]  # the commit thread writes through the gate
    ctx = zmq.Context()
    yield server, gate, ctx
    gate.gate.set()
    ctx.destroy(linger=0)
    server.close()


def test_no_ack_before_the_commit_and_the_next_batch_is_received_meanwhile(gated, rng: np.random.Generator) -> None:
    server, gate, ctx = gated
    dev = Device(ctx, server.endpoint, "dev-g")
    dev.send_records(*(dev.record("window", streams.window_body(rng)) for _ in range(3)))
    assert gate.entered.wait(20), "the first batch never reached the commit thread"
    dev.send_records(dev.record("window", streams.window_body(rng)))  # arrives while the first commit is held
    wait_for(lambda: server.counters["messages"] == 2, what="the ingest thread to receive during the commit")
    assert dev.sock.poll(0) == 0, "a reply went out before its commit was durable"
    assert server.store.record_count() == 0
    gate.gate.set()
    first = dev.reply()
    assert first is not None and [(a.first, a.last) for a in first.acks] == [(1, 3)]
    second = dev.reply()
    assert second is not None and [(a.first, a.last) for a in second.acks] == [(4, 4)]
    assert gate.batches == [3, 1] and server.store.record_count() == 4 and server.counters["records"] == 4
    dev.close()


def test_a_failed_commit_acknowledges_nothing_and_ingest_goes_on(tmp_path: Path, rng: np.random.Generator) -> None:
    server = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "f.db", http=None))
    real = server.store.write
    calls: list[int] = []

    def failing_once(batch: list[tuple[Any, ...]]) -> CommitResult:
        calls.append(len(batch))
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(batch)

    server.store.write = failing_once  # type: ignore[method-assign]
    ctx = zmq.Context()
    try:
        dev = Device(ctx, server.endpoint, "dev-f")
        lost = dev.record("window", streams.window_body(rng))
        dev.send_records(lost)
        wait_for(lambda: calls, what="the failing commit")
        dev.send_records(lost, dev.record("window", streams.window_body(rng)))  # the device's resend
        reply = dev.reply()  # the first answer it gets: the failed batch was not answered at all
        assert reply is not None and [(a.first, a.last) for a in reply.acks] == [(1, 2)]
        assert server.store.record_count() == 2 and server.counters["records"] == 2
        dev.close()
    finally:
        ctx.destroy(linger=0)
        server.close()


def test_committer_reports_the_outcome_through_its_pipe(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "c.db")
    committer = GroupCommitter(store)
    poller = zmq.Poller()
    poller.register(committer.fileno(), zmq.POLLIN)
    try:
        store.add_frame("d", "b", 1, "event", 0, 0, b"\x80", 5)
        committer.submit(store.take_pending(), "first")
        assert committer.busy
        with pytest.raises(RuntimeError, match="not taken"):
            committer.submit([], "second")
        assert poller.poll(20000), "no result"
        tag, outcome = committer.result()
        assert tag == "first" and isinstance(outcome, CommitResult) and outcome.stored == (("d", "b", 1),)
        assert not committer.busy and not committer.done and poller.poll(0) == []
        store.close()
        committer.submit([("d", "b", 2, "event", 0, 0, 5, b"\x80")], "closed")
        assert committer.wait(20)
        tag, outcome = committer.result()
        assert tag == "closed" and isinstance(outcome, sqlite3.ProgrammingError)
    finally:
        committer.close()


def test_ingest_holds_new_messages_while_scoring_is_far_behind(tmp_path: Path, rng: np.random.Generator) -> None:
    """Backpressure: with half the scoring queue waiting, new messages stay in the socket (the device waits for its
    acks) instead of windows going unscored; once scoring catches up they are taken and acked."""
    server = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "b.db", http=None,
                                               scoring_queue=8))  # fmt: skip
    ctx = zmq.Context()
    try:
        dev = Device(ctx, server.endpoint, "dev-b")
        assert server.drain(20)  # the scoring thread's start-up catch-up is done: what follows reaches it in memory
        with server.scoring.lock:  # the scoring thread takes what is queued, then waits here
            dev.send_records(dev.record("window", streams.window_body(rng)))
            assert dev.reply() is not None
            wait_for(lambda: server.scoring.queued == 0, what="the scoring thread to take the first window")
            for _ in range(4):  # high water: 8 // 2 windows waiting
                dev.send_records(dev.record("window", streams.window_body(rng)))
                assert dev.reply() is not None
            assert server.scoring.queued == 4
            dev.send_records(dev.record("window", streams.window_body(rng)))
            assert dev.reply(timeout_ms=300) is None and server.counters["messages"] == 5
        reply = dev.reply()
        assert reply is not None and [(a.first, a.last) for a in reply.acks] == [(6, 6)]
        assert server.drain(20) and server.scoring.scored_total == 6  # no reference: consumed, not merged
        assert server.counters["records"] == 6
        dev.close()
    finally:
        ctx.destroy(linger=0)
        server.close()
