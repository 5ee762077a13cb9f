"""Simulated devices for the collector tests: real DEALER sockets speaking PROTOCOL.md with the telemetry codec."""

from __future__ import annotations

import time
from typing import Any

import zmq

from edge.telemetry.protocol import Record, Reply, decode_reply, encode_record


class Device:
    """One device: its DEALER (optionally a CURVE client), its boot id and sequence numbers."""

    def __init__(self, ctx: zmq.Context, endpoint: str, name: str, curve: Any = None) -> None:
        self.name, self.boot, self.seq = name, f"{name}-boot", 0
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve is not None:
            curve.apply_client(self.sock)
        self.sock.connect(endpoint)
        self.acked: set[int] = set()

    def record(self, kind: str, body: dict[str, Any], t_ns: int = 0) -> Record:
        if kind in ("window", "event", "capture"):
            self.seq += 1
            seq = self.seq
        else:
            seq = 0
        return Record(kind, self.name, self.boot, seq, t_ns, time.time_ns(), body)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def send_records(self, *records: Record) -> None:
        self.send(*(encode_record(r) for r in records))

    def reply(self, timeout_ms: int = 20000) -> Reply | None:
        if not self.sock.poll(timeout_ms):
            return None
        rep = decode_reply(self.sock.recv())
        for a in rep.acks:
            if a.boot == self.boot:  # (fuzzing sends records of other boots through this socket too)
                self.acked.update(range(a.first, a.last + 1))
        return rep

    def close(self) -> None:
        self.sock.close(linger=0)
