"""Actuator sinks: where decisions go. A Python callable, a ZeroMQ PUB socket (msgpack), a log.

A sink's ``deliver(decision)`` runs on the thread that owns it — the loop thread for the loop's sinks, the watchdog
thread for the watchdog's — and must not block. ``close()`` releases what it holds.

Decision messages (:class:`ZmqDecisionSink`) are one-part msgpack maps: ``v`` (schema, 1), ``seq``, ``tick_ns``
(loop clock ns), ``action`` (int, -1: none), ``label`` (str), ``command`` (list of float), ``confidence`` (float,
NaN: none), ``health`` ("OK" | "DEGRADED" | "SAFE_STOP"), ``flags`` (int, :mod:`edge.contracts.frame` bits),
``fallback`` (bool), ``source`` ("loop" | "watchdog"), ``stage_us`` (list of float, in ``STAGES`` order); with a
detection policy also ``detections``: a list of maps ``class`` (int), ``label`` (str), ``score`` (float), ``box``
([x1, y1, x2, y2], camera-frame pixels), best score first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import msgpack
import zmq

from edge.contracts import HEALTH_NAMES
from edge.errors import ConfigError
from edge.loop.decision import Decision

__all__ = ["CallableSink", "DecisionSink", "LogSink", "ZmqDecisionSink", "decision_message"]

log = logging.getLogger("edge.loop")
SCHEMA = 1


class DecisionSink(Protocol):
    def deliver(self, decision: Decision) -> None: ...

    def close(self) -> None: ...


class CallableSink:
    """Calls ``fn(decision)`` (the loop's reused object: copy what you keep). Allocation-free on the loop's side."""

    def __init__(self, fn: Callable[[Decision], Any]) -> None:
        if not callable(fn):
            raise ConfigError(f"sink: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def deliver(self, decision: Decision) -> None:
        self.fn(decision)

    def close(self) -> None:
        pass


def decision_message(d: Decision) -> bytes:
    """The msgpack bytes of ``d`` (the wire format in the module docstring)."""
    msg = {
        "v": SCHEMA,
        "seq": d.seq,
        "tick_ns": d.tick_ns,
        "action": d.action,
        "label": d.label,
        "command": d.command.tolist(),
        "confidence": d.confidence,
        "health": HEALTH_NAMES[d.health],
        "flags": d.flags,
        "fallback": d.fallback,
        "source": d.source,
        "stage_us": d.stage_us.tolist(),
    }
    if d.detections.capacity:
        msg["detections"] = d.detections.to_list()
    return msgpack.packb(msg)


class ZmqDecisionSink:
    """Publishes every decision on a ZeroMQ PUB socket bound (or connected) to ``endpoint``. Sends never block:
    when the peer's queue is full the message is dropped and counted in :attr:`dropped`. Packing allocates a few
    hundred bytes per frame (freed at once); use a :class:`CallableSink` where even that matters."""

    def __init__(self, endpoint: str, *, bind: bool = True, context: zmq.Context | None = None, hwm: int = 100) -> None:
        self._ctx = context or zmq.Context.instance()
        self.socket = self._ctx.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(endpoint) if bind else self.socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise ConfigError(
                f"sinks.zmq.endpoint: cannot {'bind' if bind else 'connect'} {endpoint!r}: {exc}"
            ) from exc
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint
        self.sent = 0
        self.dropped = 0

    def deliver(self, decision: Decision) -> None:
        try:
            self.socket.send(decision_message(decision), zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self.socket.close(0)


class LogSink:
    """Logs one decision in ``every`` at INFO on ``logger`` (and every fallback at WARNING)."""

    def __init__(self, every: int = 1, logger: logging.Logger | None = None) -> None:
        if every < 1:
            raise ConfigError(f"sinks.log_every: expected an integer >= 1, got {every!r}")
        self.every = every
        self.log = logger or log

    def deliver(self, d: Decision) -> None:
        if d.fallback:
            self.log.warning("decision %d: %s fallback %s (flags %#x)", d.seq, HEALTH_NAMES[d.health], d.label, d.flags)
        elif d.seq % self.every == 0:
            self.log.info(
                "decision %d: %s %s conf %.3f",
                d.seq,
                d.label or d.command.tolist(),
                HEALTH_NAMES[d.health],
                d.confidence,
            )

    def close(self) -> None:
        pass
