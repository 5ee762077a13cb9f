"""The durable store: WAL mode, dedup on (device, boot, seq), and nothing acknowledged lost to SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from edge.collector.store import RecordStore
from edge.errors import ConfigError

WRITER = """
import sys
from edge.collector.store import RecordStore
store = RecordStore(sys.argv[1])
seq = 0
while True:
    for _ in range(7):
        seq += 1
        store.add("dev-1", "boot-a", seq, "window", seq * 1000, 0, {"payload": "x" * 200, "seq": seq})
    result = store.commit()
    # the acknowledgement: printed only after commit() returned
    print(max(k[2] for k in result.stored), flush=True)
"""


def test_store_is_wal_and_deduplicates(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "c.db") as store:
        for seq in (1, 2, 3):
            store.add("d", "b", seq, "window", 0, 0, {"i": seq})
        first = store.commit()
        store.add("d", "b", 2, "window", 0, 0, {"i": 99})  # a resend after a lost ack
        store.add("d", "b2", 2, "window", 0, 0, {"i": 2})  # same seq, new boot: a different record
        second = store.commit()
        assert first.stored == (("d", "b", 1), ("d", "b", 2), ("d", "b", 3)) and first.duplicates == ()
        assert second.stored == (("d", "b2", 2),) and second.duplicates == (("d", "b", 2),)
        assert [r[4] for r in store.iter_records("window")] == [{"i": 1}, {"i": 2}, {"i": 3}, {"i": 2}]
    raw = sqlite3.connect(tmp_path / "c.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="expected a SQLite database file"):
        RecordStore(bad)


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, spawn) -> None:
    db = tmp_path / "kill.db"
    writer = spawn(WRITER, str(db))
    acked = 0
    while acked < 300:
        line = writer.stdout.readline()
        assert line, f"writer died: {writer.stderr.read()}"
        acked = int(line)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    with RecordStore(db) as store:
        keys = store.keys()
    assert {("dev-1", "boot-a", s) for s in range(1, acked + 1)} <= keys
