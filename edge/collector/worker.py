"""The worker role (``edge collector --role worker --bus nats://... --db postgresql://...``): records from the bus
into the shared store, and scoring of the store by whichever worker holds the scoring lease.

Every worker pulls from the one durable JetStream consumer (:mod:`edge.collector.bus`), writes each fetched batch
to the store in one transaction (deduplicated on ``(device, boot, seq)``), and acks the batch to JetStream only
after the commit. A worker killed mid-batch loses nothing (JetStream redelivers what it had not acked, to any
worker, after ``ack_wait_s``) and double-counts nothing (a redelivered record is a duplicate in the store).

Scoring reads the store, not the bus: the store's records are the log, and the scoring cursor
(:mod:`edge.collector.scoring_log`) moves in the same transaction as the drift series it produced, so every stored
window is scored exactly once and in store order, whichever worker stored it. One worker at a time scores: the one
holding the **scoring lease**, a PostgreSQL session advisory lock (:class:`ScoringLease`). It runs a
:class:`~edge.collector.server.CollectorServer` of role ``scoring`` (engine, alert policy, sinks, HTTP), which
rebuilds its horizons from the store and resumes from the cursor; the others stand by and take the lease when its
holder dies (its connection closes, PostgreSQL releases the lock). Alerts are opened by the lease holder only, so
once fleet-wide. With a SQLite store there is one machine and the lease is always held.

So records/s into the store grows with the workers, and scoring is one process at a time (measured per record in
``tests/bench/bench_fleet.py``; docs/FLEET.md says what that means for sizing).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from edge.collector.bus import RecordBus
from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.stores import open_store, store_url

__all__ = ["FleetWorker", "ScoringLease"]

log = logging.getLogger("edge.collector")

LEASE_KEY = 7451  # pg_try_advisory_lock key of the scoring lease


class ScoringLease:
    """The right to score the store at ``db``: a session advisory lock on its own PostgreSQL connection (held
    while that connection lives); for a SQLite store, always held."""

    def __init__(self, db: str) -> None:
        self.scheme, self.url = store_url(db)
        self._db: Any = None

    def take(self) -> bool:
        """Try to take the lease (never waits); True when this process holds it now."""
        if self.scheme != "postgresql":
            return True
        if self.held():
            return True
        import psycopg

        try:
            self._db = psycopg.connect(self.url, autocommit=True)
            row = self._db.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
        except psycopg.Error as exc:
            log.warning("collector worker: cannot reach the store for the scoring lease (%s)", exc)
            self.release()
            return False
        if not row[0]:
            self.release()
            return False
        return True

    def held(self) -> bool:
        """Whether the lease's connection is alive (a PostgreSQL restart ends it, and the lease with it)."""
        if self.scheme != "postgresql":
            return True
        if self._db is None or self._db.closed:
            return False
        try:
            self._db.execute("SELECT 1")
        except Exception:  # the connection is gone: so is the lock
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class FleetWorker:
    """A worker: starts its thread on construction; :meth:`close` stops it. ``settings.db``: the shared store;
    ``settings.http`` is served while this worker holds the scoring lease. ``batch``: messages fetched at once;
    ``ack_wait_s``: how long JetStream waits for a worker's ack before redelivering."""

    def __init__(self, settings: CollectorSettings, bus: str, *, batch: int = 512, ack_wait_s: float = 10.0) -> None:
        self.settings = dataclasses.replace(settings, role="scoring", bus=None)
        self.batch = batch
        self.counters = {"bus_records": 0, "bus_duplicates": 0, "store_write_failures": 0, "bus_failures": 0}
        self.health = {"bus_connected": 1.0, "store_up": 1.0, "scoring_lease": 0.0}
        self.bus = RecordBus(bus, ack_wait_s=ack_wait_s)
        try:
            self.store = open_store(settings.db)
        except BaseException:
            self.bus.close()
            raise
        self.lease = ScoringLease(str(settings.db))
        self.scorer: CollectorServer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-collector-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._turn()
            except Exception:  # a bug must not stop the worker: what it had not acked is redelivered
                log.exception("collector worker: turn failed")
                self._stop.wait(0.5)
        self._drop_scorer()

    def _turn(self) -> None:
        self._keep_lease()
        try:
            items = self.bus.fetch(self.batch, 0.25)
        except Exception as exc:  # the bus is down: nothing fetched, nothing to ack; the client reconnects
            self.counters["bus_failures"] += 1
            self.health["bus_connected"] = 0.0
            log.warning("collector worker: fetch from the bus failed (%s)", exc)
            self._stop.wait(0.5)
            return
        self.health["bus_connected"] = 1.0
        if items:
            rows = [row for row, _ in items]
            try:
                result = self.store.write(rows)
            except Exception as exc:  # not acked: JetStream redelivers after ack_wait
                self.counters["store_write_failures"] += 1
                self.health["store_up"] = 0.0
                log.error("collector worker: the store did not take %d records; not acked (%s)", len(rows), exc)
                self._stop.wait(0.5)
                return
            self.health["store_up"] = 1.0
            if result.failed:
                log.error("collector worker: the store refused %d records (%s...); dropped", len(result.failed),
                          result.failed[0])  # fmt: skip
            self.bus.ack([m for _, m in items])  # after the commit; a lost ack only makes duplicates
            self.counters["bus_records"] += len(result.stored)
            self.counters["bus_duplicates"] += len(result.duplicates)
        if self.scorer is not None and self.scorer.scoring is not None:
            self.scorer.scoring.poke()

    def _keep_lease(self) -> None:
        """Take the scoring lease when free (then start scoring), give scoring up when the lease was lost."""
        if self.scorer is not None and not self.lease.held():
            log.warning("collector worker: lost the scoring lease (store connection ended); scoring stops here")
            self._drop_scorer()
        elif self.scorer is not None and self.scorer.scoring is not None and self.scorer.scoring.overtaken:
            log.warning("collector worker: another scorer moved the cursor; scoring starts again from it")
            self._drop_scorer()  # the lease is taken again below, the horizons rebuilt from the store
        if self.scorer is None and self.lease.take():
            try:
                self.scorer = CollectorServer(self.settings)
            except Exception:
                self.lease.release()
                raise
            self.scorer.health.update(self.health)
            self.health = self.scorer.health  # one mapping: /metrics shows the worker's gauges
            log.info("collector worker: holds the scoring lease; scoring from the cursor")
        self.health["scoring_lease"] = 1.0 if self.scorer is not None else 0.0

    def _drop_scorer(self) -> None:
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None
        self.lease.release()

    @property
    def scoring(self) -> bool:
        """This worker holds the scoring lease and scores."""
        return self.scorer is not None

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop fetching (unacked messages go to other workers after ``ack_wait_s``), stop scoring at once (it
        resumes from the cursor wherever the lease goes), close the bus and the store."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("collector worker: the worker thread did not stop within %.1f s", timeout_s)
        self.bus.close()
        self.store.close()

    def __enter__(self) -> FleetWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
