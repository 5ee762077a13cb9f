"""The publisher: its own thread and ZeroMQ DEALER socket; spool first, send, delete on acknowledgement.

Every poll (``poll_ms``) the thread takes what the loop handed over (closed windows from the
:class:`~edge.telemetry.window.WindowRing`, events, captures), encodes each as a record with the next ``seq`` of
this boot, appends it to the :class:`~edge.telemetry.spool.Spool`, and sends pending records in batches (one
multipart message, one record per frame, at most ``batch_max``) with at most ``max_inflight`` messages awaiting a
reply. Every message gets exactly one reply from the collector; a reply names the records it stored (deleted from
the spool) or rejected (deleted and counted). No reply within ``ack_timeout_s`` means the link is gone: the socket
is closed and a new one connects after a backoff that doubles from ``backoff_min_s`` to ``backoff_max_s``; a new
connection starts with a hello and replays everything pending, oldest first. When the reply to a hello asks for
its profile (``need_profile``: the collector does not have it), the hello is sent again with the profile's canonical
JSON (``profile_json``, at most :data:`~edge.telemetry.protocol.MAX_PROFILE_BYTES`; a larger profile is not sent
and ``profile_too_large`` counts it); the collector handles a socket's messages in order, so every window sent after
that hello is scored against it (windows that reached the collector before it are stored, not scored). With
nothing to send for ``heartbeat_s`` a heartbeat goes out. The loop thread only touches :meth:`submit_event` (a
deque append).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from edge.errors import ProtocolError
from edge.telemetry.capture import CapturePool
from edge.telemetry.protocol import MAX_IN_FLIGHT, MAX_PROFILE_BYTES, Record, decode_reply, encode_record
from edge.telemetry.records import event_body, heartbeat_body, hello_body, window_body
from edge.telemetry.security import CurveKeys
from edge.telemetry.spool import Spool
from edge.telemetry.window import WindowRing

__all__ = ["Publisher", "PublisherSettings"]

log = logging.getLogger("edge.telemetry")


@dataclass(frozen=True)
class PublisherSettings:
    """Link settings; times in seconds."""

    endpoint: str
    window_s: float = 1.0
    heartbeat_s: float = 5.0
    ack_timeout_s: float = 3.0
    backoff_min_s: float = 0.1
    backoff_max_s: float = 10.0
    batch_max: int = 32
    max_inflight: int = MAX_IN_FLIGHT
    max_events: int = 256
    poll_ms: int = 20
    close_flush_s: float = 1.0


class Publisher:
    """Owns one thread, one :class:`zmq.Context` and socket, and the spool (closed by :meth:`stop`)."""

    def __init__(
        self,
        settings: PublisherSettings,
        spool: Spool,
        *,
        device_id: str,
        boot_id: str,
        clock_ns: Callable[[], int],
        curve: CurveKeys | None = None,
        captures: CapturePool | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.device_id, self.boot_id = device_id, boot_id
        self.curve = curve
        self.captures = captures
        self._clock_ns = clock_ns
        self._rings: collections.deque[WindowRing] = collections.deque()
        self._events: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-telemetry", daemon=True)
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self._to_send: collections.deque[tuple[str, int]] = collections.deque()
        self._outstanding: collections.deque[float] = collections.deque()
        self._need_hello = False
        self._hello_ring: WindowRing | None = None
        self._hello_wait = 0  # replies still due up to the last hello's (0: none)
        self._profile_upload: bytes | None = None  # the profile JSON the next hello carries
        self._uploaded = ""  # the profile id uploaded on this connection (asked twice: not again)
        self._backoff = settings.backoff_min_s
        self._next_connect = 0.0
        self._last_send = 0.0
        self.seq = 0
        self.link_up = False
        # counters (publisher thread writes; readers tolerate stale values)
        self.events_dropped = 0
        self.rejected = 0
        self.acked = 0
        self.sent = 0
        self.reconnects = 0
        self.bad_replies = 0
        self.profile_uploads = 0
        self.profile_too_large = 0
        self._reported = {"spool_evicted": 0, "spool_torn": 0, "events_dropped": 0, "rejected": 0}

    # ------------------------------------------------------------------------------------- loop-thread side

    def add_ring(self, ring: WindowRing) -> None:
        """A new model's window ring (from ``bind``); the previous ring is drained first."""
        self._rings.append(ring)

    def submit_event(self, name: str, fields: dict[str, Any]) -> bool:
        """Hand an event over without blocking; False (and counted) when ``max_events`` are already waiting."""
        if len(self._events) >= self.settings.max_events:
            self.events_dropped += 1
            return False
        self._events.append((name, fields))
        return True

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float | None = None) -> None:
        """Spool what was handed over, try to send what is pending for up to ``close_flush_s``, then close the
        socket, the context and the spool. Returns within about ``timeout_s`` (default ``close_flush_s + 1``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.settings.close_flush_s + 1.0 if timeout_s is None else timeout_s)
        elif self._ctx is not None:  # never started
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None  # type: ignore[assignment]
        self.spool.close()

    # ------------------------------------------------------------------------------------- thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
            self._drain()
            deadline = time.monotonic() + self.settings.close_flush_s
            while self.spool.pending and self._sock is not None and time.monotonic() < deadline:
                self._step()
        except Exception:  # the loop must not die with telemetry; this thread logs and stops
            log.exception("telemetry publisher stopped on an unexpected error")
        finally:
            self._shutdown()

    def _step(self) -> None:
        self._drain()
        now = time.monotonic()
        if self._sock is None and now >= self._next_connect:
            self._connect()
        if self._sock is not None:
            self._send(now)
            if self._sock.poll(self.settings.poll_ms, zmq.POLLIN):
                while self._sock is not None and self._sock.poll(0, zmq.POLLIN):
                    self._on_reply(self._sock.recv(zmq.NOBLOCK))
            now = time.monotonic()
            if self._outstanding and now - self._outstanding[0] > self.settings.ack_timeout_s:
                log.info(
                    "telemetry: no reply from %s for %.1f s; reconnecting",
                    self.settings.endpoint,
                    now - self._outstanding[0],
                )
                self._disconnect(now)
        else:
            self._stop.wait(self.settings.poll_ms / 1e3)
        self.spool.tick()

    # ------------------------------------------------------------------------------------- spooling

    def _spool(self, kind: str, t_ns: int, body: dict[str, Any]) -> None:
        rec = Record(kind, self.device_id, self.boot_id, self.seq + 1, int(t_ns), time.time_ns(), body)
        try:
            data = encode_record(rec)
        except ProtocolError:
            log.exception("telemetry: %s record does not encode; dropped", kind)
            return
        self.seq += 1
        key = (self.boot_id, self.seq)
        self.spool.append(key, data)
        self._to_send.append(key)

    def _extra_counters(self) -> dict[str, int]:
        now = {
            "spool_evicted": self.spool.evicted,
            "spool_torn": self.spool.torn,
            "events_dropped": self.events_dropped,
            "rejected": self.rejected,
        }
        extra = {k: v - self._reported[k] for k, v in now.items()}
        self._reported = now
        extra["spool_pending"] = self.spool.pending
        return extra

    def _drain(self) -> None:
        while self._rings:
            ring = self._rings[0]
            slot = ring.take_ready()
            while slot is not None:
                self._spool("window", slot.end_ns, window_body(ring, slot, self._extra_counters()))
                if ring.has_reference:
                    ring.drift_score = slot.features.drift_score(ring.reference)
                ring.release()
                slot = ring.take_ready()
            if ring.retired and len(self._rings) > 1:
                self._rings.popleft()
                continue
            break
        while self._events:
            name, fields = self._events.popleft()
            self._spool("event", self._clock_ns(), event_body(name, fields))
        if self.captures is not None:
            for body in self.captures.drain():
                self._spool("capture", self._clock_ns(), body)

    # ------------------------------------------------------------------------------------- link

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.immediate = True  # queue only on a completed connection: while the collector is away, sends fail fast
        sock.sndhwm = sock.rcvhwm = 64
        sock.reconnect_ivl = max(1, int(self.settings.backoff_min_s * 1e3))
        sock.reconnect_ivl_max = max(1, int(self.settings.backoff_max_s * 1e3))
        if self.curve is not None:
            self.curve.apply_client(sock)
        sock.connect(self.settings.endpoint)
        self._sock = sock
        self._need_hello = True
        self._to_send = collections.deque(self.spool.pending_keys())
        self._outstanding.clear()
        self._hello_wait, self._profile_upload, self._uploaded = 0, None, ""

    def _disconnect(self, now: float) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self.link_up = False
        self.reconnects += 1
        self._outstanding.clear()
        self._hello_wait = 0
        self._next_connect = now + self._backoff
        self._backoff = min(self._backoff * 2, self.settings.backoff_max_s)

    def _post(self, parts: list[bytes], now: float) -> bool:
        try:
            self._sock.send_multipart(parts, zmq.NOBLOCK)  # type: ignore[union-attr]
        except zmq.Again:
            return False
        self._outstanding.append(now)
        self._last_send = now
        return True

    def _send(self, now: float) -> None:
        ring = self._rings[-1] if self._rings else None
        if ring is not None and ring is not self._hello_ring:
            self._need_hello = True
        if self._need_hello and ring is not None:
            if len(self._outstanding) >= self.settings.max_inflight:
                return
            body = hello_body(ring, self.settings.window_s)
            if self._profile_upload is not None:
                body["profile_json"] = self._profile_upload
            hello = Record("hello", self.device_id, self.boot_id, 0, self._clock_ns(), time.time_ns(), body)
            if not self._post([encode_record(hello)], now):
                return
            self._need_hello, self._hello_ring = False, ring
            self._hello_wait = len(self._outstanding)
            if self._profile_upload is not None:
                self._profile_upload = None
                self.profile_uploads += 1
        while self._to_send and len(self._outstanding) < self.settings.max_inflight:
            keys, parts = [], []
            while self._to_send and len(parts) < self.settings.batch_max:
                key = self._to_send.popleft()
                data = self.spool.read(key)
                if data is not None:
                    keys.append(key)
                    parts.append(data)
            if not parts:
                break
            if not self._post(parts, now):
                self._to_send.extendleft(reversed(keys))
                return
            self.sent += len(parts)
        if not self._outstanding and now - self._last_send >= self.settings.heartbeat_s:
            body = heartbeat_body(self.spool.pending, self.spool.total_bytes)
            beat = Record("heartbeat", self.device_id, self.boot_id, 0, self._clock_ns(), time.time_ns(), body)
            self._post([encode_record(beat)], now)

    def _on_reply(self, data: bytes) -> None:
        try:
            reply = decode_reply(data)
        except ProtocolError as exc:
            self.bad_replies += 1
            log.warning("telemetry: bad reply from the collector: %s", exc)
            return
        if self._outstanding:
            self._outstanding.popleft()
        if self._hello_wait:
            self._hello_wait -= 1
            if self._hello_wait == 0 and reply.need_profile:
                self._upload(reply.need_profile)
        self.link_up = True
        self._backoff = self.settings.backoff_min_s
        for a in reply.acks:
            if a.boot != self.boot_id or a.last - a.first > self.spool.pending:
                keys = [k for k in self.spool.pending_keys() if k[0] == a.boot and a.first <= k[1] <= a.last]
            else:
                keys = [(a.boot, s) for s in range(a.first, a.last + 1)]
            for k in keys:
                self.acked += self.spool.ack(k)
        for r in reply.rejected:
            if self.spool.ack((r.boot, r.seq)):
                self.rejected += 1
                log.warning("telemetry: collector rejected record %s/%d (%s): %s", r.boot, r.seq, r.code, r.message)

    def _upload(self, profile_id: str) -> None:
        """The collector asked for the hello's profile: the next hello carries it (once per connection)."""
        ring = self._hello_ring
        if ring is None or ring.profile_id != profile_id or self._uploaded == profile_id:
            return
        self._uploaded = profile_id
        doc = ring.profile.to_bytes()
        if len(doc) > MAX_PROFILE_BYTES:
            self.profile_too_large += 1
            log.warning("telemetry: profile %s is %d bytes, over the %d a hello may carry; install it at the "
                        "collector instead", profile_id, len(doc), MAX_PROFILE_BYTES)  # fmt: skip
            return
        self._profile_upload = doc
        self._need_hello = True
