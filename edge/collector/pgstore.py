"""The collector's store on PostgreSQL (psycopg 3): the :class:`~edge.collector.stores.Store` interface, the same
tables and meaning as the SQLite store (:mod:`edge.collector.store`), for a store that outlives one machine.

What is acknowledged is what was committed: :meth:`PostgresStore.write` returns after the server has committed the
transaction (``synchronous_commit`` as the server has it: ``on`` by default, i.e. flushed to its WAL). Records are
deduplicated on ``(device, boot, seq)`` by a UNIQUE constraint (``INSERT ... ON CONFLICT DO NOTHING RETURNING``
tells the new rows apart). Each record's frame is kept as it arrived (``bytea``).

A connection lost (the server restarted, the network dropped) fails the operation in hand, which the caller sees
as an error (a commit not made: nothing acknowledged, the devices resend); the next operation connects again.

The scoring cursor counts in record ids (``bigserial``). Every record write takes one transaction-level advisory
lock, so ids grow in commit order across processes (several fleet workers write one database at once) and the
cursor misses none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import msgpack

from edge.collector.scoring_log import cursor_moved
from edge.collector.store import ROWS_PER_INSERT, AlertRow, CommitResult
from edge.errors import ConfigError

__all__ = ["PostgresScoringLog", "PostgresStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id BIGSERIAL PRIMARY KEY,
    device TEXT NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL,
    kind TEXT NOT NULL, t_ns BIGINT NOT NULL, wall_ns BIGINT NOT NULL, received_ns BIGINT NOT NULL,
    body BYTEA NOT NULL,
    UNIQUE (device, boot, seq)
);
CREATE INDEX IF NOT EXISTS records_windows ON records (device, id) WHERE kind = 'window';
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, boot TEXT, model TEXT, profile TEXT, hello BYTEA,
    first_seen_ns BIGINT NOT NULL, last_seen_ns BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (profile TEXT PRIMARY KEY, body BYTEA NOT NULL, stored_ns BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id BIGSERIAL PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, feature TEXT NOT NULL, metric TEXT NOT NULL,
    state TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, threshold DOUBLE PRECISION NOT NULL,
    opened_ns BIGINT NOT NULL, acked_ns BIGINT, resolved_ns BIGINT, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scoring_cursor (
    name TEXT PRIMARY KEY, last_id BIGINT NOT NULL, windows BIGINT NOT NULL, quiet_until BIGINT NOT NULL DEFAULT 0
);
INSERT INTO scoring_cursor (name, last_id, windows) VALUES ('scoring', 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS series (
    id BIGSERIAL PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, horizon INTEGER NOT NULL,
    t_ns BIGINT NOT NULL, point BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS series_key ON series (scope, model, horizon, id);
"""
# Record writes of every process take this transaction lock: ids then commit in increasing order, so the scoring
# cursor (an id) never passes a record another process has not committed yet (fleet workers write concurrently).
_SERIAL_WRITES = "SELECT pg_advisory_xact_lock(7452)"
_COLUMNS = "(device, boot, seq, kind, t_ns, wall_ns, received_ns, body)"
_ALERT = "id, scope, model, feature, metric, state, value, threshold, opened_ns, acked_ns, resolved_ns, message"


def _live(db: Any, url: str) -> Any:
    """``db``, or a new connection to ``url`` when it was closed or lost."""
    return db if not (db.closed or db.broken) else _connect(url)


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError(f"collector --db {url}: expected psycopg 3 (pip install 'edge[fleet]'), got none") from exc
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise ConfigError(f"collector --db: expected a reachable PostgreSQL database, got {url!r} ({exc})") from exc


class PostgresStore:
    """The PostgreSQL database at ``url`` (its tables created when missing). ``add`` buffers records in memory;
    ``commit`` writes the buffer in one transaction and returns once it is committed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = _connect(url)
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(7450)")  # two collectors creating tables at once
            self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []

    # ---------------------------------------------------------------------------------------------- records

    def add(self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, body: dict[str, Any]) -> None:
        record = {"v": 1, "kind": kind, "device": device, "boot": boot, "seq": seq, "t_ns": t_ns, "wall_ns": wall_ns,
                  "body": body}  # fmt: skip
        frame = msgpack.packb(record, use_bin_type=True)
        self._pending.append((device, boot, seq, kind, t_ns, wall_ns, time.time_ns(), frame))

    def add_frame(
        self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, frame: bytes, received_ns: int
    ) -> None:
        self._pending.append((device, boot, seq, kind, t_ns, wall_ns, received_ns, frame))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take_pending(self) -> list[tuple[Any, ...]]:
        batch, self._pending = self._pending, []
        return batch

    def commit(self) -> CommitResult:
        return self.write(self.take_pending())

    def write(self, batch: list[tuple[Any, ...]]) -> CommitResult:
        """Write ``batch`` in one transaction (multi-row inserts; row by row, each in a savepoint, when a row
        cannot be taken, e.g. an integer beyond int64); returns after the commit."""
        if not batch:
            return CommitResult((), ())
        import psycopg

        with self._lock:
            self._db = _live(self._db, self.url)
            try:
                with self._db.transaction():
                    self._db.execute(_SERIAL_WRITES)
                    new = self._insert(batch, bulk=True)
                failed: list[tuple[str, str, int]] = []
            except (psycopg.DataError, OverflowError):
                failed = []
                with self._db.transaction():
                    self._db.execute(_SERIAL_WRITES)
                    new = {}
                    for row in batch:
                        try:
                            with self._db.transaction():
                                new.update(self._insert([row], bulk=False))
                        except (psycopg.DataError, OverflowError):
                            failed.append((row[0], row[1], row[2]))
        stored, dups, ids = [], [], []
        bad = set(failed)
        for row in batch:
            key = (row[0], row[1], row[2])
            i = new.pop(key, None)
            if i is not None:
                stored.append(key)
                ids.append(i)
            elif key not in bad:
                dups.append(key)
        return CommitResult(tuple(stored), tuple(dups), tuple(failed), tuple(ids))

    def _insert(self, rows: list[tuple[Any, ...]], bulk: bool) -> dict[tuple[str, str, int], int]:
        """Insert ``rows`` (new ones only); ``{key: id}`` of those inserted."""
        new: dict[tuple[str, str, int], int] = {}
        for i in range(0, len(rows), ROWS_PER_INSERT if bulk else 1):
            part = rows[i : i + ROWS_PER_INSERT]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
            sql = (
                f"INSERT INTO records {_COLUMNS} VALUES {values} ON CONFLICT DO NOTHING RETURNING device, boot, seq, id"
            )
            cur = self._db.execute(sql, [x for row in part for x in row])
            new.update({(d, b, s): int(k) for d, b, s, k in cur.fetchall()})
        return new

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._db = _live(self._db, self.url)
            return self._db.execute(sql, tuple(args)).fetchall()

    def record_count(self, kind: str | None = None) -> int:
        if kind is None:
            return int(self._query("SELECT COUNT(*) FROM records")[0][0])
        return int(self._query("SELECT COUNT(*) FROM records WHERE kind = %s", (kind,))[0][0])

    def stored_records(self) -> int:
        return self.record_count()

    def keys(self) -> set[tuple[str, str, int]]:
        return {tuple(r) for r in self._query("SELECT device, boot, seq FROM records")}

    def iter_records(self, kind: str) -> Iterator[tuple[str, str, int, int, dict[str, Any]]]:
        rows = self._query("SELECT device, boot, seq, t_ns, body FROM records WHERE kind = %s ORDER BY id", (kind,))
        for device, boot, seq, t_ns, blob in rows:
            yield device, boot, seq, t_ns, msgpack.unpackb(blob, raw=False)["body"]

    # ---------------------------------------------------------------------------------------------- devices

    def seen(self, device: str, boot: str, now_ns: int, hello: dict[str, Any] | None = None) -> None:
        blob = None if hello is None else msgpack.packb(hello, use_bin_type=True)
        model = None if hello is None else hello.get("model")
        profile = None if hello is None else hello.get("profile")
        self._query(
            "INSERT INTO devices (device, boot, model, profile, hello, first_seen_ns, last_seen_ns) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (device) DO UPDATE SET boot = excluded.boot, "
            "last_seen_ns = excluded.last_seen_ns, model = COALESCE(excluded.model, devices.model), "
            "profile = COALESCE(excluded.profile, devices.profile), hello = COALESCE(excluded.hello, devices.hello) "
            "RETURNING device",
            (device, boot, model, profile, blob, now_ns, now_ns),
        )

    def hellos(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self._query("SELECT device, hello FROM devices WHERE hello IS NOT NULL ORDER BY device")
        return [(d, msgpack.unpackb(h, raw=False)) for d, h in rows]

    def series_of(self, scope: str, model: str, horizon: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._query(
            "SELECT t_ns, point FROM series WHERE scope = %s AND model = %s AND horizon = %s ORDER BY id DESC LIMIT %s",
            (scope, model, horizon, limit),
        )
        return [(int(t), msgpack.unpackb(bytes(p), raw=False)) for t, p in rows[::-1]]

    def devices(self) -> list[dict[str, Any]]:
        keys = ("device", "boot", "model", "profile", "first_seen_ns", "last_seen_ns")
        rows = self._query(f"SELECT {', '.join(keys)} FROM devices ORDER BY device")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # --------------------------------------------------------------------------------------------- profiles

    def put_profile(self, profile_id: str, body: bytes) -> bool:
        rows = self._query(
            "INSERT INTO profiles (profile, body, stored_ns) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING "
            "RETURNING profile",
            (profile_id, body, time.time_ns()),
        )
        return len(rows) == 1

    def profile(self, profile_id: str) -> bytes | None:
        rows = self._query("SELECT body FROM profiles WHERE profile = %s", (profile_id,))
        return bytes(rows[0][0]) if rows else None

    def profile_ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT profile FROM profiles ORDER BY profile")]

    def models(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT model, profile, COUNT(*) FROM devices WHERE model IS NOT NULL GROUP BY model, profile "
            "ORDER BY model, profile"
        )
        return [{"model": m, "profile": p, "devices": int(n)} for m, p, n in rows]

    # ----------------------------------------------------------------------------------------------- alerts

    def open_alert(
        self, scope: str, model: str, feature: str, metric: str, value: float, threshold: float, now_ns: int, msg: str
    ) -> int:
        rows = self._query(
            "INSERT INTO alerts (scope, model, feature, metric, state, value, threshold, opened_ns, message) "
            "VALUES (%s, %s, %s, %s, 'open', %s, %s, %s, %s) RETURNING id",
            (scope, model, feature, metric, value, threshold, now_ns, msg),
        )
        return int(rows[0][0])

    def set_alert_state(self, alert_id: int, state: str, now_ns: int) -> AlertRow:
        column = {"acknowledged": "acked_ns", "resolved": "resolved_ns"}.get(state)
        if column is None:
            raise ConfigError(f"alert state: expected 'acknowledged' or 'resolved', got {state!r}")
        self._query(
            f"UPDATE alerts SET state = %s, {column} = %s WHERE id = %s AND state != 'resolved' RETURNING id",
            (state, now_ns, alert_id),
        )
        row = self.alert(alert_id)
        if row is None:
            raise ConfigError(f"alert id: expected an existing alert, got {alert_id}")
        return row

    def alert(self, alert_id: int) -> AlertRow | None:
        rows = self._query(f"SELECT {_ALERT} FROM alerts WHERE id = %s", (alert_id,))
        return AlertRow(*rows[0]) if rows else None

    def alerts(self, state: str | None = None, limit: int = 500) -> list[AlertRow]:
        q, args = f"SELECT {_ALERT} FROM alerts", []
        if state is not None:
            q += " WHERE state = %s"
            args.append(state)
        q += " ORDER BY id DESC LIMIT %s"
        args.append(int(limit))
        return [AlertRow(*r) for r in self._query(q, args)]

    def scoring_log(self, capacity: int = 600) -> PostgresScoringLog:
        return PostgresScoringLog(self.url, capacity)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresScoringLog:
    """:class:`~edge.collector.scoring_log.ScoringLog` on PostgreSQL, on a connection of its own; its commits run
    with ``synchronous_commit = off`` (as the SQLite one runs ``synchronous=NORMAL``: a crash of the server may
    lose the last scoring commits, cursor and series together, which are then scored again)."""

    def __init__(self, url: str, capacity: int = 600) -> None:
        self.url = url
        self._db = self._open()
        self.capacity = capacity

    def _open(self) -> Any:
        db = _connect(self.url)
        db.execute("SET synchronous_commit = off")
        return db

    def _live(self) -> Any:
        if self._db.closed or self._db.broken:
            self._db = self._open()
        return self._db

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._live().execute(sql, tuple(args)).fetchall()

    def cursor(self) -> tuple[int, int]:
        rows = self._rows("SELECT last_id, windows FROM scoring_cursor WHERE name = 'scoring'")
        return (0, 0) if not rows else (int(rows[0][0]), int(rows[0][1]))

    def quiet_until(self) -> int:
        return 0  # no PostgreSQL store predates the cursor

    def last_window_id(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(id), 0) FROM records WHERE kind = 'window'")[0][0])

    def windows_after(self, last_id: int, limit: int) -> list[tuple[int, str, int, bytes]]:
        rows = self._rows(
            "SELECT id, device, t_ns, body FROM records WHERE kind = 'window' AND id > %s ORDER BY id LIMIT %s",
            (last_id, limit),
        )
        return [(int(i), d, int(t), bytes(b)) for i, d, t, b in rows]

    def device_windows(self, device: str, upto: int, limit: int) -> list[tuple[int, str, int, bytes]]:
        rows = self._rows(
            "SELECT id, t_ns, body FROM records WHERE device = %s AND kind = 'window' AND id <= %s ORDER BY id DESC "
            "LIMIT %s",
            (device, upto, limit),
        )
        return [(int(i), device, int(t), bytes(b)) for i, t, b in rows[::-1]]

    def recent_windows(self, upto: int, per_device: int) -> dict[str, list[tuple[int, str, int, bytes]]]:
        rows = self._rows(
            "SELECT w.id, d.device, w.t_ns, w.body FROM (SELECT DISTINCT device FROM records WHERE kind = 'window') d "
            "CROSS JOIN LATERAL (SELECT id, t_ns, body FROM records r WHERE r.device = d.device AND r.kind = 'window' "
            "AND r.id <= %s ORDER BY r.id DESC LIMIT %s) w ORDER BY w.id",
            (upto, per_device),
        )
        out: dict[str, list[tuple[int, str, int, bytes]]] = {}
        for i, d, t, b in rows:
            out.setdefault(d, []).append((int(i), d, int(t), bytes(b)))
        return out

    def commit(
        self, last_id: int, windows: int, points: Iterable[tuple[str, str, int, int, dict[str, Any]]], *, after: int
    ) -> None:
        rows = [(s, m, h, t, msgpack.packb(p, use_bin_type=True)) for s, m, h, t, p in points]
        db = self._live()
        with db.transaction(), db.cursor() as cur:
            if rows:
                cur.executemany("INSERT INTO series (scope, model, horizon, t_ns, point) VALUES (%s, %s, %s, %s, %s)",
                                rows)  # fmt: skip
            for s, m, h in {r[:3] for r in rows}:
                cur.execute(
                    "DELETE FROM series WHERE scope = %s AND model = %s AND horizon = %s AND id < (SELECT id FROM "
                    "series WHERE scope = %s AND model = %s AND horizon = %s ORDER BY id DESC LIMIT 1 OFFSET %s)",
                    (s, m, h, s, m, h, self.capacity - 1),
                )
            cur.execute(  # fenced: a scorer overtaken by another (a lease that moved) writes nothing
                "UPDATE scoring_cursor SET last_id = %s, windows = %s WHERE name = 'scoring' AND last_id = %s",
                (last_id, windows, after),
            )
            if cur.rowcount != 1:
                raise cursor_moved(after)

    def series_points(self) -> list[tuple[str, str, int, int, dict[str, Any]]]:
        rows = self._rows("SELECT scope, model, horizon, t_ns, point FROM series ORDER BY id")
        return [(s, m, int(h), int(t), msgpack.unpackb(p, raw=False)) for s, m, h, t, p in rows]

    def close(self) -> None:
        self._db.close()
