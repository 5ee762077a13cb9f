"""The collector's store interface, and the store a ``--db`` URL names.

:class:`Store` is what the server, the commit and scoring threads and the HTTP side use of a store: records
(buffered, then made durable by one transaction whose keys are the ones acknowledged), devices and their hellos,
reference profiles, alerts, and the :class:`ScoringCursorLog` (the scoring cursor and the drift series,
:mod:`edge.collector.scoring_log`). :class:`~edge.collector.store.RecordStore` (SQLite, one file, the embedded
default) implements it; :func:`open_store` picks the implementation from a URL:

* ``sqlite:///PATH`` (a relative path), ``sqlite:////PATH`` (an absolute one), or a plain path: SQLite;
* ``postgresql://USER@HOST:PORT/DB`` (also ``postgres://``): PostgreSQL (:mod:`edge.collector.pgstore`, psycopg 3,
  the ``fleet`` extra), the store several collector processes can share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from edge.collector.store import AlertRow, CommitResult
from edge.errors import ConfigError

__all__ = ["ScoringCursorLog", "Store", "open_store", "store_url"]

Point = tuple[str, str, int, int, dict[str, Any]]  # scope, model, horizon, t_ns, point
Window = tuple[int, str, int, bytes]  # rowid, device, t_ns, frame


class ScoringCursorLog(Protocol):
    """Where scoring stands in a store, and the drift series it produced (one per scoring thread)."""

    def cursor(self) -> tuple[int, int]: ...
    def quiet_until(self) -> int: ...
    def last_window_id(self) -> int: ...
    def windows_after(self, last_id: int, limit: int) -> list[Window]: ...
    def recent_windows(self, upto: int, per_device: int) -> dict[str, list[Window]]: ...
    def commit(self, last_id: int, windows: int, points: Iterable[Point]) -> None: ...
    def series_points(self) -> list[Point]: ...
    def close(self) -> None: ...


class Store(Protocol):
    """A collector store (see the module doc); every method may be called from any thread."""

    def add(
        self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, body: dict[str, Any]
    ) -> None: ...

    def add_frame(
        self, device: str, boot: str, seq: int, kind: str, t_ns: int, wall_ns: int, frame: bytes, received_ns: int
    ) -> None: ...

    @property
    def pending(self) -> int: ...
    def take_pending(self) -> list[tuple[Any, ...]]: ...
    def commit(self) -> CommitResult: ...
    def write(self, batch: list[tuple[Any, ...]]) -> CommitResult: ...
    def record_count(self, kind: str | None = None) -> int: ...
    def stored_records(self) -> int: ...
    def keys(self) -> set[tuple[str, str, int]]: ...
    def iter_records(self, kind: str) -> Iterator[tuple[str, str, int, int, dict[str, Any]]]: ...
    def seen(self, device: str, boot: str, now_ns: int, hello: dict[str, Any] | None = None) -> None: ...
    def hellos(self) -> list[tuple[str, dict[str, Any]]]: ...
    def devices(self) -> list[dict[str, Any]]: ...
    def put_profile(self, profile_id: str, body: bytes) -> bool: ...
    def profile(self, profile_id: str) -> bytes | None: ...
    def profile_ids(self) -> list[str]: ...
    def models(self) -> list[dict[str, Any]]: ...
    def open_alert(
        self, scope: str, model: str, feature: str, metric: str, value: float, threshold: float, now_ns: int, msg: str
    ) -> int: ...
    def set_alert_state(self, alert_id: int, state: str, now_ns: int) -> AlertRow: ...
    def alert(self, alert_id: int) -> AlertRow | None: ...
    def alerts(self, state: str | None = None, limit: int = 500) -> list[AlertRow]: ...
    def scoring_log(self, capacity: int = 600) -> ScoringCursorLog: ...
    def close(self) -> None: ...


def store_url(db: str | Path) -> tuple[str, str]:
    """``(scheme, target)`` of a ``--db`` value: ``("sqlite", path)`` or ``("postgresql", url)``;
    :class:`ConfigError` for another scheme or a malformed URL."""
    if isinstance(db, Path):
        return "sqlite", str(db)
    scheme, sep, rest = db.partition("://")
    if not sep:
        return "sqlite", db
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(f"collector --db: expected sqlite:///PATH (or sqlite:////ABSOLUTE/PATH), got {db!r}")
        return "sqlite", rest[1:]
    if scheme in ("postgresql", "postgres"):
        return "postgresql", db
    raise ConfigError(f"collector --db: expected a path, sqlite:///PATH or postgresql://..., got scheme {scheme!r}")


def open_store(db: str | Path) -> Store:
    """The store ``db`` names (:func:`store_url`)."""
    scheme, target = store_url(db)
    if scheme == "sqlite":
        from edge.collector.store import RecordStore

        return RecordStore(target)
    from edge.collector.pgstore import PostgresStore

    return PostgresStore(target)
