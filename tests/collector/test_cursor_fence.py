"""The scoring cursor is fenced: it moves only from where its scorer last wrote it, so a scorer that another one
overtook (a fleet worker whose lease moved while it finished a batch) keeps nothing of its batch (no second copy of
its series points, no cursor moved back) and stops, on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device
from collector_support import wait_for

from edge.collector.scoring_log import CursorMoved
from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store
from edge.drift.profile import save_profile


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def point(t_ns: int) -> tuple[str, str, int, int, dict]:
    return ("dev-0", streams.MODEL, 10, t_ns, {"t_ns": t_ns, "samples": [1.0]})


def test_a_commit_from_a_cursor_that_moved_writes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    first, second = store.scoring_log(), store.scoring_log()
    try:
        assert first.cursor() == second.cursor() == (0, 0)
        first.commit(5, 5, [point(1)], after=0)
        with pytest.raises(CursorMoved, match="moved from 0"):
            second.commit(7, 7, [point(2)], after=0)  # it last saw 0: another scorer moved it
        assert second.cursor() == (5, 5) and [p[3] for p in second.series_points()] == [1]
        second.commit(9, 9, [point(3)], after=5)
        assert first.cursor() == (9, 9) and [p[3] for p in first.series_points()] == [1, 3]
    finally:
        first.close()
        second.close()
        store.close()


def test_an_overtaken_collector_stops_scoring_and_keeps_nothing(
    tmp_path: Path, store_url: str, ctx: zmq.Context, rng: np.random.Generator
) -> None:
    """Two collectors on one store: the one that scored the windows first keeps them; the other, poked to read
    them after the cursor it started from, finds the cursor moved, writes nothing and stops."""
    prof = streams.profile(rng)
    (tmp_path / "p").mkdir()
    save_profile(prof, tmp_path / "p" / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=store_url, http=None, profiles=tmp_path / "p",
                                 horizons=(5,))  # fmt: skip
    with CollectorServer(settings) as late, CollectorServer(settings) as first:
        dev = Device(ctx, first.endpoint, "dev-0")
        dev.send_records(dev.record("hello", streams.hello_body(prof)))
        assert dev.reply() is not None
        dev.send_records(*(dev.record("window", streams.window_body(rng), k) for k in range(12)))
        reply = dev.reply()
        assert reply is not None and not reply.rejected
        dev.close()
        assert first.drain(30.0) and first.counters["windows_scored"] == 12
        log = first.store.scoring_log()
        try:
            cursor, points = log.cursor(), log.series_points()
            assert cursor[1] == 12 and points
            assert late.scoring is not None
            late.scoring.poke()  # it reads the 12 windows after its cursor (0) and scores them again
            wait_for(lambda: late.scoring.overtaken, 30.0, "the late collector to find the cursor moved")
            assert late.counters["cursor_conflicts"] == 1
            assert log.cursor() == cursor  # nothing of its batch kept (points compared as text: NaN != NaN)
            assert repr(log.series_points()) == repr(points)
        finally:
            log.close()
