"""The record bus of the distributed collector: one NATS JetStream stream between gateways and workers (nats-py).

A gateway publishes each accepted record to the stream ``EDGE_RECORDS`` on subject ``edge.rec.<partition>``
(``partition``: CRC-32 of the device id modulo :data:`PARTITIONS`; device ids may hold characters a subject may
not) with the header ``Nats-Msg-Id: device/boot/seq``, so a record published twice within the stream's duplicate
window (a gateway resending after a lost PubAck, a device resending through another gateway) is stored once. The
payload is the store row ``(device, boot, seq, kind, t_ns, wall_ns, received_ns, frame)`` as msgpack, ``frame``
being the record's frame as the device sent it.

Workers share one durable pull consumer (``workers``): each fetched message is acked only after the worker's
store write committed, so a worker killed mid-batch loses nothing (JetStream redelivers after ``ack_wait``) and
double-counts nothing (the store deduplicates on ``(device, boot, seq)``).

nats-py is asyncio; the collector's threads are not. :class:`RecordBus` runs one event loop on its own thread and
offers blocking calls with a timeout, so a lost server shows up as an exception in the caller (the gateway then
acks nothing; the worker acks nothing) while the client reconnects by itself in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import zlib
from collections.abc import Coroutine, Sequence
from typing import Any

import msgpack

from edge.errors import ConfigError

__all__ = ["PARTITIONS", "STREAM", "BusError", "RecordBus", "subject_of"]

log = logging.getLogger("edge.collector")

STREAM = "EDGE_RECORDS"
SUBJECTS = "edge.rec.>"
CONSUMER = "workers"
PARTITIONS = 64
DUPLICATE_WINDOW_S = 600.0  # Nats-Msg-Id dedup window (s): longer than any device's resend horizon while connected


class BusError(RuntimeError):
    """The bus did not confirm an operation in time (server down, stream unavailable): nothing is acknowledged."""


def subject_of(device: str) -> str:
    return f"edge.rec.{zlib.crc32(device.encode('utf-8')) % PARTITIONS}"


class RecordBus:
    """A connection to the NATS servers ``urls`` (``nats://host:port``, comma-separated for a cluster) with the
    stream made when missing (``replicas``: 1, or 3 on a 3-node cluster). ``timeout_s``: how long a blocking call
    waits for the servers before raising :class:`BusError`. :meth:`close` ends the loop thread."""

    def __init__(self, urls: str, *, replicas: int = 1, timeout_s: float = 5.0, ack_wait_s: float = 10.0) -> None:
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            msg = f"collector --bus {urls}: expected nats-py (pip install 'edge[fleet]'), got none"
            raise ConfigError(msg) from exc
        self.urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not self.urls or not all(u.startswith(("nats://", "tls://")) for u in self.urls):
            raise ConfigError(f"collector --bus: expected nats://HOST:PORT[,nats://...], got {urls!r}")
        self.timeout_s, self.ack_wait_s, self.replicas = timeout_s, ack_wait_s, replicas
        self.connected = False  # what the client last reported (a gauge for /metrics)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edge-collector-bus", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._closing = False
        self._acks: Any = None  # the PubAck subscription (gateway)
        self._inbox = ""
        self._batch = 0
        self._waiting: Any = None  # (batch number, duplicate flags, [rows left], future) of the batch in flight
        try:
            self._call(self._connect(), timeout_s + 5.0)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------------- plumbing

    def _call(self, coro: Coroutine[Any, Any, Any], timeout_s: float | None = None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.timeout_s if timeout_s is None else timeout_s)
        except TimeoutError as exc:
            future.cancel()
            raise BusError(f"bus: no answer from {','.join(self.urls)} within {timeout_s or self.timeout_s} s") from exc

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StreamConfig

        async def disconnected() -> None:
            self.connected = False
            if self._closing:
                return
            log.warning("collector bus: disconnected from NATS; not acknowledging until it is back")

        async def reconnected() -> None:
            self.connected = True
            log.info("collector bus: reconnected to NATS")

        async def error(exc: Exception) -> None:
            log.warning("collector bus: %s", exc)

        try:
            self._nc = await nats.connect(
                servers=self.urls, connect_timeout=self.timeout_s, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error,
            )  # fmt: skip
        except Exception as exc:
            raise ConfigError(f"collector --bus: expected a reachable NATS server, got {self.urls} ({exc})") from exc
        self.connected = True
        self._js = self._nc.jetstream(timeout=self.timeout_s)
        config = StreamConfig(name=STREAM, subjects=[SUBJECTS], duplicate_window=DUPLICATE_WINDOW_S,
                              num_replicas=self.replicas)  # fmt: skip
        try:
            await self._js.add_stream(config)
        except Exception:  # exists (perhaps with other limits an operator set): keep it
            await self._js.stream_info(STREAM)

    # ------------------------------------------------------------------------------------------- gateway

    def publish(self, rows: Sequence[tuple[Any, ...]]) -> list[bool]:
        """Publish store rows ``(device, boot, seq, kind, t_ns, wall_ns, received_ns, frame)`` concurrently (all
        in flight at once: the caller bounds the batch) and wait for every PubAck; per row, whether JetStream
        called it a duplicate. Raises :class:`BusError` when any is not confirmed (then none may be acked)."""
        return self._call(self._publish(rows), self.timeout_s + 1.0)

    async def _publish(self, rows: Sequence[tuple[Any, ...]]) -> list[bool]:
        """Plain publishes with a reply subject per row (``<inbox>.<batch>.<row>``) on one subscription that
        collects the PubAcks: no request future per record (``js.publish`` makes one, about twice the CPU)."""
        if self._acks is None:
            self._inbox = self._nc.new_inbox()
            self._acks = await self._nc.subscribe(f"{self._inbox}.>", cb=self._on_puback)
        self._batch += 1
        done = asyncio.get_running_loop().create_future()
        self._waiting = (self._batch, [None] * len(rows), [len(rows)], done)
        prefix = f"{self._inbox}.{self._batch}."
        publish, pack = self._nc.publish, msgpack.packb
        for i, r in enumerate(rows):
            await publish(subject_of(r[0]), pack(r, use_bin_type=True), reply=f"{prefix}{i}",
                          headers={"Nats-Msg-Id": f"{r[0]}/{r[1]}/{r[2]}"})  # fmt: skip
        try:
            return await asyncio.wait_for(done, self.timeout_s)
        except TimeoutError as exc:
            raise BusError(f"bus: JetStream did not confirm every publish within {self.timeout_s} s") from exc
        finally:
            self._waiting = None

    async def _on_puback(self, msg: Any) -> None:
        """One PubAck (JSON: ``{"stream", "seq", "duplicate"?}`` or ``{"error": ...}``) for the batch waiting."""
        waiting = self._waiting
        _, batch, row = msg.subject.rsplit(".", 2)
        if waiting is None or int(batch) != waiting[0] or waiting[3].done():
            return  # a late answer to a batch given up on: that batch was not acked to any device
        answer = json.loads(msg.data) if msg.data else {"error": {"description": "empty reply (no responders)"}}
        if "error" in answer:
            waiting[3].set_exception(BusError(f"bus: JetStream refused a publish ({answer['error']})"))
            return
        results, left = waiting[1], waiting[2]
        if results[int(row)] is None:
            results[int(row)] = bool(answer.get("duplicate", False))
            left[0] -= 1
            if left[0] == 0:
                waiting[3].set_result(results)

    # ------------------------------------------------------------------------------------------- worker

    def fetch(self, batch: int, wait_s: float) -> list[tuple[tuple[Any, ...], Any]]:
        """Up to ``batch`` messages of the shared durable consumer, waiting up to ``wait_s`` for the first:
        ``[(row, message)]`` ([] when none came). Ack them with :meth:`ack` after the store write."""
        return self._call(self._fetch(batch, wait_s), wait_s + self.timeout_s)

    async def _fetch(self, batch: int, wait_s: float) -> list[tuple[tuple[Any, ...], Any]]:
        import nats.errors
        from nats.js.api import AckPolicy, ConsumerConfig

        if self._sub is None:
            config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s, max_ack_pending=20000)
            self._sub = await self._js.pull_subscribe(SUBJECTS, durable=CONSUMER, stream=STREAM, config=config)
        try:
            msgs = await self._sub.fetch(batch, timeout=wait_s)
        except nats.errors.TimeoutError:
            return []
        unpack = msgpack.unpackb
        return [(tuple(unpack(m.data, raw=False)), m) for m in msgs]

    def ack(self, messages: Sequence[Any]) -> None:
        """Acknowledge fetched messages (their rows are durable in the store)."""
        self._call(self._ack(messages))

    @staticmethod
    async def _ack(messages: Sequence[Any]) -> None:
        for m in messages:
            await m.ack()

    def pending(self) -> int:
        """Messages of the stream not yet acknowledged by the workers (delivered or not)."""
        return self._call(self._pending())

    async def _pending(self) -> int:
        info = await self._js.consumer_info(STREAM, CONSUMER)
        return int(info.num_pending + info.num_ack_pending)

    def close(self) -> None:
        """Drain nothing (what is unacked is redelivered to another worker), close the connection, end the loop."""
        self._closing = True
        if self._thread.is_alive():
            if self._nc is not None:
                try:
                    self._call(self._nc.close(), 2.0)
                except Exception as exc:  # closing a connection to a dead server: nothing to keep
                    log.info("collector bus: close: %s", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
        if not self._loop.is_running():
            self._loop.close()
