"""The collector's durable store: SQLite in WAL mode, one file, batched transactions.

What is acknowledged is what was committed: :meth:`RecordStore.commit` returns only after SQLite has made the
transaction durable (``journal_mode=WAL``, ``synchronous=FULL``: the WAL is fsynced at every commit), and the
server acknowledges exactly the keys it returns. Spooled records (window, event, capture) are deduplicated on
``(device, boot, seq)`` by a UNIQUE constraint, so a device that resends after a lost ack changes nothing.

The ``body`` column holds each record's frame exactly as it arrived (a msgpack map: envelope and body, validated),
so ingest does not encode it again; :meth:`RecordStore.iter_records` returns the body. Files made before this format
(``PRAGMA user_version`` 0 with records) hold the body alone, and are read as such.

Besides records the store keeps devices (last hello, last seen), reference profiles by id, and alerts with their
lifecycle; the scoring cursor and the drift series live beside them (:mod:`edge.collector.scoring_log`, which
the scoring thread reads and writes on a connection of its own). One connection, guarded by a lock: the ingest
thread writes, the HTTP threads read.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from edge.collector.scoring_log import SCORING_SCHEMA, ScoringLog
from edge.errors import ConfigError

__all__ = ["AlertRow", "CommitResult", "RecordStore"]

FRAME_FORMAT = 1  # PRAGMA user_version: records.body holds the whole record frame
# Page size of a new file, bytes. A window frame (~2.6 KiB with 32 features) takes a 4 KiB page to itself; 16 KiB
# pages hold five or six, so a commit writes (and fsyncs) about a third less WAL and SQLite does less per record
# (measured: 50 → 28 µs per record for 256-record commits, synchronous=FULL). Existing files keep theirs.
PAGE_BYTES = 16384

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, t_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (device, boot, seq)
);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, boot TEXT, model TEXT, profile TEXT, hello BLOB,
    first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (profile TEXT PRIMARY KEY, body BLOB NOT NULL, stored_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, feature TEXT NOT NULL, metric TEXT NOT NULL,
    state TEXT NOT NULL, value REAL NOT NULL, threshold REAL NOT NULL,
    opened_ns INTEGER NOT NULL, acked_ns INTEGER, resolved_ns INTEGER, message TEXT NOT NULL
);
"""
_INSERT = (
    "INSERT OR IGNORE INTO records (device, boot, seq, kind, t_ns, wall_ns, received_ns, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


# Rows per INSERT statement. Python's sqlite3 releases and retakes the GIL around every statement step, and with the
# scoring thread busy each retake can wait; one step per 64 records instead of one per record (64 × 8 parameters,
# well under SQLite's 32766).
ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _insert_rows(n: int) -> str:
    """``INSERT OR IGNORE`` of ``n`` records in one statement."""
    return _INSERT.replace("(?, ?, ?, ?, ?, ?, ?, ?)", ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * n))


@dataclass(frozen=True)
class CommitResult:
    """Keys ``(device, boot, seq)`` made durable by one commit: ``stored`` new, ``duplicates`` already there.
    Both may be acknowledged. ``failed``: records SQLite could not take (e.g. an integer beyond int64), left out
    of the transaction without spoiling the rest of it; never acknowledge those. ``ids``: the rowid each
    ``stored`` record got (same order; the scoring cursor counts in rowids)."""

    stored: tuple[tuple[str, str, int], ...]
    duplicates: tuple[tuple[str, str, int], ...]
    failed: tuple[tuple[str, str, int], ...] = ()
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class AlertRow:
    id: int
    scope: str
    model: str
    feature: str
    metric: str
    state: str
    value: float
    threshold: float
    opened_ns: int
    acked_ns: int | None
    resolved_ns: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RecordStore:
    """A SQLite file at ``path`` (created with its tables when missing). ``add`` buffers records in memory;
    ``commit`` writes the buffer in one transaction and returns once it is durable."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "EXTRA"):
            raise ConfigError(f"store synchronous: expected 'FULL' or 'EXTRA' (durable commits), got {synchronous!r}")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA page_size={PAGE_BYTES}")  # takes effect on a new file only
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            fresh = self._db.execute("SELECT name FROM sqlite_master WHERE name = 'records'").fetchone() is None
            self._db.executescript(_SCHEMA)
            self._db.executescript(SCORING_SCHEMA)
            self._db.execute(  # a file from before the cursor: its windows are history (scoring_log.py)
                "INSERT OR IGNORE INTO scoring_cursor (name, last_id, windows, quiet_until) "
                "SELECT 'scoring', 0, 0, COALESCE(MAX(id), 0) FROM records WHERE kind = 'window'"
            )
            if fresh:
                self._db.execute(f"PRAGMA user_version={FRAME_FORMAT}")
            self._frames = self._db.execute("PRAGMA user_version").fetchone()[0] == FRAME_FORMAT
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"collector --db: expected a SQLite database file, got {str(path)!r} ({exc})") from exc
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            raise ConfigError(f"collector --db: expected a file that supports WAL mode, got journal_mode={mode}")
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []

    # ---------------------------------------------------------------------------------------------- records

    def add(self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, body: dict[str, Any]) -> None:
        """Buffer one spooled record for the next :meth:`commit` (nothing is durable, nor acknowledgeable, yet)."""
        record = {"v": 1, "kind": kind, "device": device, "boot": boot, "seq": seq, "t_ns": t_ns, "wall_ns": wall_ns,
                  "body": body}  # fmt: skip
        blob = msgpack.packb(record if self._frames else body, use_bin_type=True)
        self._pending.append((device, boot, seq, kind, t_ns, wall_ns, time.time_ns(), blob))

    def add_frame(
        self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, frame: bytes, received_ns: int
    ) -> None:
        """:meth:`add` for a record as received: ``frame`` is its validated msgpack frame (the envelope fields are
        its decoded ones), stored as is, without encoding it again; the store keeps a reference to the bytes until
        the commit. ``received_ns``: collector wall clock, ns since the Unix epoch."""
        if not self._frames:  # a file of the old format: bodies alone
            frame = msgpack.packb(msgpack.unpackb(frame, raw=False)["body"], use_bin_type=True)
        self._pending.append((device, boot, seq, kind, t_ns, wall_ns, received_ns, frame))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take_pending(self) -> list[tuple[Any, ...]]:
        """The buffered records (the caller's now), for :meth:`write` on another thread; the buffer starts empty."""
        batch, self._pending = self._pending, []
        return batch

    def commit(self) -> CommitResult:
        """Write every buffered record in one transaction; returns after the commit is durable."""
        return self.write(self.take_pending())

    def write(self, batch: list[tuple[Any, ...]]) -> CommitResult:
        """Write ``batch`` (from :meth:`take_pending`) in one transaction; returns after the commit is durable. Any
        thread may call it (the store's lock serializes it with the readers); SQLite releases the GIL while it
        writes and fsyncs."""
        stored, dups, failed, ids = [], [], [], []
        if not batch:
            return CommitResult((), ())
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                done = self._insert_all(cur, batch)
                if done is not None:
                    cur.execute("COMMIT")
                    return done
                for row in batch:
                    try:
                        cur.execute(_INSERT, row)
                    except (OverflowError, ValueError, sqlite3.InterfaceError):
                        failed.append((row[0], row[1], row[2]))
                        continue
                    if cur.rowcount == 1:
                        stored.append((row[0], row[1], row[2]))
                        ids.append(int(cur.lastrowid))
                    else:
                        dups.append((row[0], row[1], row[2]))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return CommitResult(tuple(stored), tuple(dups), tuple(failed), tuple(ids))

    def _insert_all(self, cur: sqlite3.Cursor, batch: list[tuple[Any, ...]]) -> CommitResult | None:
        """The whole batch in multi-row INSERTs of up to :data:`ROWS_PER_INSERT` rows; None (with nothing inserted)
        when a row cannot be bound, so :meth:`commit` goes row by row. Duplicates are told apart by the ids the new
        rows got."""
        before = cur.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0]
        cur.execute("SAVEPOINT bulk")
        inserted = 0
        try:
            for i in range(0, len(batch), ROWS_PER_INSERT):
                rows = batch[i : i + ROWS_PER_INSERT]
                cur.execute(_insert_rows(len(rows)), [x for row in rows for x in row])
                inserted += cur.rowcount
        except (OverflowError, ValueError, sqlite3.InterfaceError):
            cur.execute("ROLLBACK TO bulk")
            cur.execute("RELEASE bulk")
            return None
        cur.execute("RELEASE bulk")
        keys = [(r[0], r[1], r[2]) for r in batch]
        if inserted == len(batch):  # one writer: the new rows took the ids after the largest, in order
            return CommitResult(tuple(keys), (), (), tuple(range(before + 1, before + 1 + inserted)))
        rows = cur.execute("SELECT device, boot, seq, id FROM records WHERE id > ?", (before,)).fetchall()
        new = {(d, b, s): i for d, b, s, i in rows}
        stored, dups, ids = [], [], []
        for k in keys:
            i = new.pop(k, None)
            if i is not None:
                stored.append(k)
                ids.append(i)
            else:
                dups.append(k)
        return CommitResult(tuple(stored), tuple(dups), (), tuple(ids))

    def record_count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0]

    def stored_records(self) -> int:
        """Records stored in all (cheap: records are never deleted and a rowid is never reused, so the largest
        rowid is their count)."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])

    def keys(self) -> set[tuple[str, str, int]]:
        with self._lock:
            return {tuple(r) for r in self._db.execute("SELECT device, boot, seq FROM records")}

    def iter_records(self, kind: str) -> Iterator[tuple[str, str, int, int, dict[str, Any]]]:
        """``(device, boot, seq, t_ns, body)`` of every stored record of ``kind``, in arrival order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, boot, seq, t_ns, body FROM records WHERE kind = ? ORDER BY id", (kind,)
            ).fetchall()
        for device, boot, seq, t_ns, blob in rows:
            body = msgpack.unpackb(blob, raw=False)
            yield device, boot, seq, t_ns, body["body"] if self._frames else body

    # ---------------------------------------------------------------------------------------------- devices

    def seen(self, device: str, boot: str, now_ns: int, hello: dict[str, Any] | None = None) -> None:
        """Note that ``device`` spoke (and, with ``hello``, what it runs); committed at once."""
        blob = None if hello is None else msgpack.packb(hello, use_bin_type=True)
        model = None if hello is None else hello.get("model")
        profile = None if hello is None else hello.get("profile")
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (device, boot, model, profile, hello, first_seen_ns, last_seen_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET boot = excluded.boot, "
                "last_seen_ns = excluded.last_seen_ns, model = COALESCE(excluded.model, model), "
                "profile = COALESCE(excluded.profile, profile), hello = COALESCE(excluded.hello, hello)",
                (device, boot, model, profile, blob, now_ns, now_ns),
            )

    def hellos(self) -> list[tuple[str, dict[str, Any]]]:
        """``(device, its last hello body)`` of every device that sent one (what a restart restores references
        and latency edges from)."""
        with self._lock:
            rows = self._db.execute("SELECT device, hello FROM devices WHERE hello IS NOT NULL ORDER BY device")
            return [(d, msgpack.unpackb(h, raw=False)) for d, h in rows.fetchall()]

    def scoring_log(self, capacity: int = 600) -> ScoringLog:
        """The scoring cursor and persisted series of this store, on a connection of their own (the caller's to
        close); its writes share this store's lock."""
        return ScoringLog(self.path, self._lock, self._frames, capacity)

    def series_of(self, scope: str, model: str, horizon: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The last ``limit`` persisted drift series points of (scope, model, horizon), oldest first: ``(t_ns,
        point map)`` (:mod:`edge.collector.scoring_log`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t_ns, point FROM series WHERE scope = ? AND model = ? AND horizon = ? ORDER BY id DESC LIMIT ?",
                (scope, model, horizon, limit),
            ).fetchall()
        return [(int(t), msgpack.unpackb(p, raw=False)) for t, p in rows[::-1]]

    def devices(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT device, boot, model, profile, first_seen_ns, last_seen_ns FROM devices ORDER BY device"
            ).fetchall()
        keys = ("device", "boot", "model", "profile", "first_seen_ns", "last_seen_ns")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # --------------------------------------------------------------------------------------------- profiles

    def put_profile(self, profile_id: str, body: bytes) -> bool:
        """Store a reference profile's canonical bytes once; False when it was already stored."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO profiles (profile, body, stored_ns) VALUES (?, ?, ?)",
                (profile_id, body, time.time_ns()),
            )
            return cur.rowcount == 1

    def profile(self, profile_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM profiles WHERE profile = ?", (profile_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def profile_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT profile FROM profiles ORDER BY profile")]

    def models(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT model, profile, COUNT(*) FROM devices WHERE model IS NOT NULL GROUP BY model, profile"
            ).fetchall()
        return [{"model": m, "profile": p, "devices": n} for m, p, n in rows]

    # ----------------------------------------------------------------------------------------------- alerts

    def open_alert(
        self, scope: str, model: str, feature: str, metric: str, value: float, threshold: float, now_ns: int, msg: str
    ) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO alerts (scope, model, feature, metric, state, value, threshold, opened_ns, message) "
                "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                (scope, model, feature, metric, value, threshold, now_ns, msg),
            )
            return int(cur.lastrowid)

    def set_alert_state(self, alert_id: int, state: str, now_ns: int) -> AlertRow:
        """Move an alert to ``acknowledged`` or ``resolved`` (a resolved alert stays resolved)."""
        column = {"acknowledged": "acked_ns", "resolved": "resolved_ns"}.get(state)
        if column is None:
            raise ConfigError(f"alert state: expected 'acknowledged' or 'resolved', got {state!r}")
        with self._lock:
            self._db.execute(
                f"UPDATE alerts SET state = ?, {column} = ? WHERE id = ? AND state != 'resolved'",
                (state, now_ns, alert_id),
            )
        row = self.alert(alert_id)
        if row is None:
            raise ConfigError(f"alert id: expected an existing alert, got {alert_id}")
        return row

    def alert(self, alert_id: int) -> AlertRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else AlertRow(*row)

    def alerts(self, state: str | None = None, limit: int = 500) -> list[AlertRow]:
        q, args = "SELECT * FROM alerts", []
        if state is not None:
            q += " WHERE state = ?"
            args.append(state)
        q += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            return [AlertRow(*r) for r in self._db.execute(q, args).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
