"""A minimal real collector for tests and benchmarks: a ZeroMQ ROUTER that decodes with the shared codec and acks.

:class:`CollectorPeer` binds a ROUTER (optionally a CURVE server with a :class:`ZapAllowList`), decodes every
frame with :func:`~edge.telemetry.protocol.decode_frame`, stores spooled kinds deduplicated on
``(device, boot, seq)`` and answers every message with one reply (acks for what it stored, rejections for what it
could not decode). It runs on its own thread with its own context; :meth:`close` stops it within a timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from edge.errors import ProtocolError
from edge.telemetry.protocol import SPOOLED_KINDS, RejectedRecord, Reply, ack_ranges, decode_frame, encode_reply
from edge.telemetry.security import ZapAllowList, make_curve_server

__all__ = ["CollectorPeer", "wait_for"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 5 ms until it holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)


class CollectorPeer:
    """A test collector. ``endpoint``: where to bind (``tcp://127.0.0.1:0`` picks a port; :attr:`endpoint` is
    the bound address afterwards). ``ack=False`` makes it receive without replying (a stalled collector).
    ``curve``: ``(public, secret, allowed device public keys)`` to require CURVE."""

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:0",
        *,
        ack: bool = True,
        curve: tuple[bytes, bytes, list[bytes]] | None = None,
    ) -> None:
        self.ack = ack
        self._ctx = zmq.Context()
        self.zap: ZapAllowList | None = None
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.linger = 0
        if curve is not None:
            public, secret, allowed = curve
            self.zap = ZapAllowList(self._ctx, allowed).start()
            make_curve_server(self._sock, public, secret)
        self._sock.bind(endpoint)
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.records: dict[tuple[str, str, int], Any] = {}  # unique spooled records by key
        self.received = 0  # spooled-kind frames received, duplicates included
        self.duplicates = 0
        self.duplicate_keys: list[tuple[str, str, int]] = []  # every duplicate received, in arrival order
        self.hellos: list[Any] = []
        self.heartbeats = 0
        self.malformed: list[str] = []
        self.messages = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-peer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not dict(poller.poll(10)):
                continue
            ident, *frames = self._sock.recv_multipart()
            stored, rejected = [], []
            with self._lock:
                self.messages += 1
                for data in frames:
                    try:
                        rec = decode_frame(data)
                    except ProtocolError as exc:
                        self.malformed.append(str(exc))
                        boot, seq = _best_effort_key(data)
                        rejected.append(RejectedRecord(boot, seq, "malformed", str(exc)))
                        continue
                    if rec.kind == "hello":
                        self.hellos.append(rec)
                    elif rec.kind == "heartbeat":
                        self.heartbeats += 1
                    elif rec.kind in SPOOLED_KINDS:
                        self.received += 1
                        if rec.key in self.records:
                            self.duplicates += 1
                            self.duplicate_keys.append(rec.key)
                        else:
                            self.records[rec.key] = rec
                        stored.append((rec.boot, rec.seq))
            if self.ack:
                self._sock.send_multipart([ident, encode_reply(Reply(tuple(ack_ranges(stored)), tuple(rejected)))])

    def of_kind(self, kind: str) -> list[Any]:
        """Unique records of ``kind``, sorted by (boot, seq)."""
        with self._lock:
            return sorted((r for r in self.records.values() if r.kind == kind), key=lambda r: (r.boot, r.seq))

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"collector peer thread did not stop within {timeout_s} s")
        self._sock.close(linger=0)
        if self.zap is not None:
            self.zap.stop()
        self._ctx.term()

    def __enter__(self) -> CollectorPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _best_effort_key(data: bytes) -> tuple[str, int]:
    """(boot, seq) of an undecodable record when its envelope is readable, else ("", 0)."""
    try:
        m = msgpack.unpackb(data, raw=False, max_buffer_size=len(data) + 1)
        boot, seq = m.get("boot", ""), m.get("seq", 0)
        if isinstance(boot, str) and type(seq) is int and seq >= 0:
            return boot, seq
    except Exception:
        pass
    return "", 0
