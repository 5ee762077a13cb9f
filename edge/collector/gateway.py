"""The gateway role (``edge collector --role gateway --bus nats://...``): ZeroMQ ingest exactly as the embedded
collector does it, with the record bus in place of the store's records table.

The gateway is a :class:`~edge.collector.server.CollectorServer` (role ``gateway``): the same ROUTER, CURVE and
allow-list, identity check and validator (:meth:`~edge.collector.server.CollectorServer._receive`; hostile frames
never reach the stream), the same group commit off the ingest thread and the same rule that a device is acked only
after its records are durable. Only "durable" changes meaning: a record is durable once JetStream has acked its
publish (:class:`BusSpool`, the object the group committer writes to). Hellos, profiles and device rows still go to
the shared store directly (the reply to a hello needs them), before any of that device's windows can be published.

When the bus does not confirm a batch (NATS down, the stream without quorum), the commit fails: nothing of the
batch is acked, the devices keep their records spooled and resend, the reason is logged, and the ``bus_connected``
gauge of ``/metrics`` reads 0 until the client, which reconnects by itself, is back.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.collector.bus import RecordBus
from edge.collector.store import CommitResult

__all__ = ["BusSpool"]

log = logging.getLogger("edge.collector")


class BusSpool:
    """The records side of a store (``add_frame``, ``take_pending``, ``write``) over a :class:`RecordBus` to
    ``urls``. ``window``: records in flight at once (one publish batch, every PubAck awaited before the next).
    ``health`` (shared with ``/metrics``) gets ``bus_connected`` (1/0) and ``bus_publish_failures``."""

    def __init__(self, urls: str, health: dict[str, float], window: int = 4096) -> None:
        self.bus = RecordBus(urls)
        self.health = health
        self.window = window
        self._pending: list[tuple[Any, ...]] = []
        health["bus_connected"] = 1.0
        health["bus_publish_failures"] = 0.0

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

    def write(self, rows: list[tuple[Any, ...]]) -> CommitResult:
        """Publish ``rows`` (at most ``window`` in flight) and return once JetStream confirmed them all:
        ``stored`` the new ones, ``duplicates`` those its Nats-Msg-Id window had already seen (both may be acked).
        Raises when any publish is not confirmed (the committer then acks nothing of the batch)."""
        stored: list[tuple[str, str, int]] = []
        dups: list[tuple[str, str, int]] = []
        try:
            for i in range(0, len(rows), self.window):
                part = rows[i : i + self.window]
                for row, dup in zip(part, self.bus.publish(part), strict=True):
                    (dups if dup else stored).append((row[0], row[1], row[2]))
        except Exception as exc:
            self.health["bus_connected"] = 1.0 if self.bus.connected else 0.0
            self.health["bus_publish_failures"] += 1
            log.error("collector gateway: the bus did not take a batch of %d records; none acked (%s)", len(rows), exc)
            raise
        self.health["bus_connected"] = 1.0
        return CommitResult(tuple(stored), tuple(dups))

    def close(self) -> None:
        self.bus.close()
