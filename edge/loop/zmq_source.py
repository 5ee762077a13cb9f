"""ZeroMQ SUB source: another process (a camera driver, a ROS bridge) feeds sensor slots over ZeroMQ.

Wire format, one two-part message per sensor value:

1. a msgpack map: ``sensor`` (str, the slot name), ``capture_ns`` (int >= 0, ``CLOCK_MONOTONIC`` ns on this host,
   i.e. Python's ``time.monotonic_ns()``, the loop's device clock), ``dtype`` (numpy dtype name, e.g. ``"uint8"``),
   ``shape`` (list of int, e.g. ``[480, 640, 3]``);
2. the raw value: exactly ``prod(shape) * itemsize`` bytes, C order.

:func:`encode_frame` builds one. ``ZMQ_CONFLATE`` does not work with multipart messages, so a receiver thread (with
its own socket) drains whatever is queued without blocking, keeps only the newest message per sensor and copies it
into that sensor's slot: the loop thread never touches the socket. A malformed message (wrong part count, bad
header, unknown sensor, dtype/shape/size mismatch) is rejected and counted in :attr:`ZmqSensorSource.rejected`
(the first few are logged with the reason); good messages keep flowing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np
import zmq

from edge.errors import ConfigError, ProtocolError
from edge.loop.sensors import SensorSlot

__all__ = ["ZmqSensorSource", "decode_frame", "encode_frame"]

log = logging.getLogger("edge.loop")
_LOGGED_REJECTS = 5


def encode_frame(sensor: str, value: np.ndarray, capture_ns: int) -> list[bytes | memoryview]:
    """The two message parts for ``value`` (any numpy array) captured at ``capture_ns``."""
    value = np.ascontiguousarray(value)
    header = {"sensor": sensor, "capture_ns": int(capture_ns), "dtype": value.dtype.name, "shape": list(value.shape)}
    return [msgpack.packb(header), memoryview(value).cast("B")]


def decode_frame(parts: list[Any], slots: Mapping[str, SensorSlot]) -> tuple[SensorSlot, np.ndarray, int]:
    """Check a received message against ``slots``; return ``(slot, value view, capture_ns)`` or raise
    :class:`ProtocolError` saying what was expected and what arrived."""
    if len(parts) != 2:
        raise ProtocolError(f"sensor message: expected 2 parts (msgpack header, raw value), got {len(parts)}")
    try:
        header = msgpack.unpackb(bytes(parts[0].buffer if hasattr(parts[0], "buffer") else parts[0]))
    except Exception as exc:
        raise ProtocolError(f"sensor message: expected a msgpack header, got undecodable bytes ({exc})") from exc
    if not isinstance(header, dict):
        raise ProtocolError(f"sensor message: expected a msgpack map header, got {type(header).__name__}")
    name, cap, dtype, shape = (header.get(k) for k in ("sensor", "capture_ns", "dtype", "shape"))
    slot = slots.get(name) if isinstance(name, str) else None
    if slot is None:
        raise ProtocolError(f"sensor message: expected sensor in {sorted(slots)}, got {name!r}")
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise ProtocolError(f"sensor {name}: expected capture_ns an integer >= 0, got {cap!r}")
    if dtype != slot.dtype.name:
        raise ProtocolError(f"sensor {name}: expected dtype {slot.dtype.name!r}, got {dtype!r}")
    if not isinstance(shape, list) or tuple(shape) != slot.shape:
        raise ProtocolError(f"sensor {name}: expected shape {list(slot.shape)}, got {shape!r}")
    buf = parts[1].buffer if hasattr(parts[1], "buffer") else memoryview(parts[1])
    nbytes = slot._bufs[0].nbytes
    if buf.nbytes != nbytes:
        raise ProtocolError(f"sensor {name}: expected {nbytes} bytes of data, got {buf.nbytes}")
    return slot, np.frombuffer(buf, dtype=slot.dtype).reshape(slot.shape), cap


class ZmqSensorSource:
    """A receiver thread with its own SUB socket on ``endpoint`` (connected, or bound with ``bind=True``) that
    feeds ``slots`` (name → :class:`SensorSlot`). ``stamp="receive"`` replaces the sender's ``capture_ns`` with
    the arrival time on the monotonic clock (for senders without a shared clock)."""

    def __init__(
        self,
        endpoint: str,
        slots: Mapping[str, SensorSlot],
        *,
        bind: bool = False,
        stamp: str = "capture",
        context: zmq.Context | None = None,
        poll_ms: int = 50,
    ) -> None:
        if stamp not in ("capture", "receive"):
            raise ConfigError(f"sensors.stamp: expected 'capture' or 'receive', got {stamp!r}")
        self.endpoint, self.slots, self.stamp = endpoint, dict(slots), stamp
        self.received = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._ctx = context or zmq.Context.instance()
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._bind = bind
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._receive, name=f"edge-zmq-sub {endpoint}", daemon=True)

    def start(self, timeout: float = 5.0) -> ZmqSensorSource:
        """Start the receiver; returns once its socket is bound/connected (raises :class:`ConfigError` if not)."""
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise ConfigError(f"sensors.endpoint: cannot open {self.endpoint!r}: {self._error}") from self._error
        return self

    def _receive(self) -> None:
        sock = self._ctx.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 4)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            try:
                sock.bind(self.endpoint) if self._bind else sock.connect(self.endpoint)
                if self._bind:
                    self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            except zmq.ZMQError as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            newest: dict[str, tuple[SensorSlot, np.ndarray, int]] = {}
            while not self._stop.is_set():
                if not poller.poll(self._poll_ms):
                    continue
                while True:  # drain to the newest message per sensor, without blocking
                    try:
                        parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    try:
                        slot, value, cap = decode_frame(parts, self.slots)
                    except ProtocolError as exc:
                        self.rejected += 1
                        self.last_error = str(exc)
                        if self.rejected <= _LOGGED_REJECTS:
                            log.warning("zmq source %s: rejected: %s", self.endpoint, exc)
                        continue
                    newest[slot.name] = (slot, value, cap)
                for slot, value, cap in newest.values():
                    slot.push(value, time.monotonic_ns() if self.stamp == "receive" else cap)
                    self.received += 1
                newest.clear()
        finally:
            sock.close(0)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the receiver thread and close its socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
