"""Clean stop (issue 16's hostile-input finding): a collector stopped while its scoring thread holds a batch of many
devices' windows stops without draining it and without the "scoring thread did not stop" error; the batch is not
kept (the cursor does not move) and the next start scores every window exactly once from the cursor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import collector_streams as streams
import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store
from edge.drift.profile import save_profile
from edge.telemetry.protocol import Record

DEVICES = 60


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def test_stop_abandons_the_batch_in_hand_and_the_next_start_scores_it_once(tmp_path: Path, rng) -> None:
    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    db = f"sqlite:///{tmp_path}/c.db"
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=None, profiles=tmp_path / "p", horizons=(5,))
    ctx = zmq.Context()
    try:
        server = CollectorServer(settings)
        dev = Device(ctx, server.endpoint, "flood")
        names = [f"flood-{k:04d}" for k in range(DEVICES)]
        dev.send_records(*(Record("hello", n, "b", 0, 0, 0, streams.hello_body(prof)) for n in names))
        assert dev.reply() is not None
        server.scoring.lock.acquire()  # the scoring thread will hold its next batch, waiting for the engine
        try:
            windows = [Record("window", n, "b", 1, 1, 0, streams.window_body(rng)) for n in names]
            dev.send_records(*windows)
            rep = dev.reply()
            assert rep is not None and not rep.rejected
            wait_for(lambda: server.scoring.queued == 0, 30.0, "the scoring thread to take the batch")
            errors: list[BaseException] = []

            def stop() -> None:
                try:
                    server.close()
                except BaseException as exc:  # reported below
                    errors.append(exc)

            closer = threading.Thread(target=stop)
            closer.start()
            wait_for(lambda: server.scoring.stopping, 30.0, "close() to ask scoring to stop")
        finally:
            server.scoring.lock.release()
        closer.join(30.0)
        assert not closer.is_alive() and errors == []
        store = open_store(db)
        log = store.scoring_log()
        try:
            assert log.cursor() == (0, 0)  # the batch in hand was not kept
            assert store.record_count("window") == DEVICES
        finally:
            log.close()
            store.close()
        dev.close()
        with CollectorServer(settings) as again:
            assert again.drain(60.0)
            assert again.counters["windows_scored"] == DEVICES == again.scoring.scored_total
    finally:
        ctx.destroy(linger=0)
