"""Where scoring stands in the store, and the drift series it produced: the durable side of the scoring thread.

The store's ``records`` table is the log between ingest and scoring. The scoring thread reads window records from
it in rowid order and keeps a **cursor**: the rowid of the last window it scored, and how many windows it has
scored in all (``scoring_cursor``, one row). Each scoring batch ends in one transaction that inserts the batch's
drift series points (``series``: what the dashboard plots) and moves the cursor, so after a crash or a restart
scoring resumes just after the last window whose results were kept: every stored window is scored exactly once.
The cursor moves only from where its scorer last saw it (``after``): a scorer that another one overtook (a fleet
worker whose lease went to another worker while it finished a batch) gets :class:`CursorMoved`, and its batch is
not kept (its series points would be a second copy).

A store made before the cursor existed (its windows stored, none of their results kept) gets the cursor row when
it is opened, with ``quiet_until`` at its last window: those windows are scored once, which rebuilds their series,
without evaluating alerts (they were evaluated when they arrived, and a webhook should not hear of them again).

The series keep the last ``capacity`` points of each (scope, model, horizon); older ones are deleted in the same
transaction. This connection runs with ``synchronous=NORMAL`` (WAL: a commit is not fsynced, so it costs the
ingest thread no fsync; a process crash loses nothing committed, a power cut may lose the last scoring commits,
which are then scored again from the stored windows, cursor and series together). Its writes take the store's
write lock (the Python one), so the two connections never wait on each other inside SQLite; its reads take none
(WAL readers do not block the writer).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack

__all__ = ["SCORING_SCHEMA", "CursorMoved", "ScoringLog", "StoredWindow"]

SCORING_SCHEMA = """
CREATE TABLE IF NOT EXISTS scoring_cursor (
    name TEXT PRIMARY KEY, last_id INTEGER NOT NULL, windows INTEGER NOT NULL, quiet_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, horizon INTEGER NOT NULL,
    t_ns INTEGER NOT NULL, point BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS series_key ON series (scope, model, horizon, id);
CREATE INDEX IF NOT EXISTS records_windows ON records (device, id) WHERE kind = 'window';
"""

# a stored window: rowid, device, t_ns (device clock), its record frame (msgpack map, validated at ingest)
StoredWindow = tuple[int, str, int, bytes]


class CursorMoved(RuntimeError):
    """The scoring cursor is no longer where this scorer last saw it: another scorer moved it."""


def cursor_moved(after: int) -> CursorMoved:
    return CursorMoved(f"the scoring cursor moved from {after} under this scorer: another scorer holds it; this "
                       "batch is not kept")  # fmt: skip


_PRUNE = (
    "DELETE FROM series WHERE scope = ?1 AND model = ?2 AND horizon = ?3 AND id < (SELECT id FROM series "
    "WHERE scope = ?1 AND model = ?2 AND horizon = ?3 ORDER BY id DESC LIMIT 1 OFFSET ?4)"
)


class ScoringLog:
    """The scoring cursor and the persisted series of the SQLite store at ``path`` (its own connection).
    ``write_lock``: the store's lock, held for every write. ``frames``: False for a store of the old body-only
    format, whose window bodies are wrapped back into frames when read."""

    def __init__(self, path: Path, write_lock: threading.Lock, frames: bool = True, capacity: int = 600) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = write_lock
        self._frames = frames
        self.capacity = capacity

    def cursor(self) -> tuple[int, int]:
        """``(rowid of the last window scored, windows scored in all)``; ``(0, 0)`` before the first scoring."""
        row = self._db.execute("SELECT last_id, windows FROM scoring_cursor WHERE name = 'scoring'").fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def quiet_until(self) -> int:
        """The rowid up to which windows are scored without evaluating alerts (a store's history from before the
        cursor existed); 0 when none."""
        row = self._db.execute("SELECT quiet_until FROM scoring_cursor WHERE name = 'scoring'").fetchone()
        return 0 if row is None else int(row[0])

    def last_window_id(self) -> int:
        """The rowid of the newest stored window (0 when none)."""
        row = self._db.execute("SELECT MAX(id) FROM records WHERE kind = 'window'").fetchone()
        return int(row[0] or 0)

    def windows_after(self, last_id: int, limit: int) -> list[StoredWindow]:
        """Up to ``limit`` stored windows with a rowid above ``last_id``, oldest first."""
        rows = self._db.execute(
            "SELECT id, device, t_ns, body, boot, seq FROM records WHERE kind = 'window' AND id > ? ORDER BY id "
            "LIMIT ?",
            (last_id, limit),
        ).fetchall()
        return [(i, d, t, self._frame(b, d, boot, seq, t)) for i, d, t, b, boot, seq in rows]

    def recent_windows(self, upto: int, per_device: int) -> dict[str, list[StoredWindow]]:
        """Each device's last ``per_device`` windows with a rowid up to ``upto``, oldest first (what rebuilds the
        engine's rolling horizons on start: sketches are monoids, a horizon is the sum of its windows)."""
        devices = [r[0] for r in self._db.execute("SELECT DISTINCT device FROM records WHERE kind = 'window'")]
        out: dict[str, list[StoredWindow]] = {}
        for device in devices:
            rows = self.device_windows(device, upto, per_device)
            if rows:
                out[device] = rows
        return out

    def device_windows(self, device: str, upto: int, limit: int) -> list[StoredWindow]:
        """``device``'s last ``limit`` windows with a rowid up to ``upto``, oldest first (what rebuilds the rolling
        horizons of a device whose track the engine evicted)."""
        rows = self._db.execute(
            "SELECT id, t_ns, body, boot, seq FROM records WHERE device = ? AND kind = 'window' AND id <= ? "
            "ORDER BY id DESC LIMIT ?",
            (device, upto, limit),
        ).fetchall()
        return [(i, device, t, self._frame(b, device, boot, s, t)) for i, t, b, boot, s in rows[::-1]]

    def _frame(self, blob: bytes, device: str, boot: str, seq: int, t_ns: int) -> bytes:
        if self._frames:
            return bytes(blob)
        body = msgpack.unpackb(blob, raw=False)
        record = {"v": 1, "kind": "window", "device": device, "boot": boot, "seq": seq, "t_ns": t_ns, "wall_ns": 0,
                  "body": body}  # fmt: skip
        return msgpack.packb(record, use_bin_type=True)

    def commit(
        self, last_id: int, windows: int, points: Iterable[tuple[str, str, int, int, dict[str, Any]]], *, after: int
    ) -> None:
        """In one transaction: append ``points`` ``(scope, model, horizon, t_ns, point)`` to the series (the
        oldest beyond ``capacity`` deleted) and move the cursor from ``after`` to ``(last_id, windows)``;
        :class:`CursorMoved` (nothing written) when the cursor is not at ``after``."""
        rows = [(s, m, h, t, msgpack.packb(p, use_bin_type=True)) for s, m, h, t, p in points]
        keys = {r[:3] for r in rows}
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany("INSERT INTO series (scope, model, horizon, t_ns, point) VALUES (?, ?, ?, ?, ?)", rows)
                for key in keys:
                    cur.execute(_PRUNE, (*key, self.capacity - 1))
                cur.execute(
                    "UPDATE scoring_cursor SET last_id = ?, windows = ? WHERE name = 'scoring' AND last_id = ?",
                    (last_id, windows, after),
                )
                if cur.rowcount != 1:
                    raise cursor_moved(after)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def series_points(self) -> list[tuple[str, str, int, int, dict[str, Any]]]:
        """Every kept series point ``(scope, model, horizon, t_ns, point)``, oldest first."""
        rows = self._db.execute("SELECT scope, model, horizon, t_ns, point FROM series ORDER BY id").fetchall()
        return [(s, m, h, t, msgpack.unpackb(p, raw=False)) for s, m, h, t, p in rows]

    def close(self) -> None:
        self._db.close()
