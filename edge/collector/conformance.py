"""The conformance kit's runner: walk docs/PROTOCOL.md §6 (the limits table, as data in
``docs/protocol/limits.json``) row by row against a live collector and report pass/fail per case.

``python -m edge.collector.conformance tcp://HOST:PORT [--limits PATH] [--timeout S] [--json PATH]`` (exit 0 when
every case passes, 1 otherwise). It speaks plain ZeroMQ (no CURVE: point it at a collector without ``--curve``), one
fresh DEALER per case, under the device id ``conformance`` and a boot id new at every run, so reruns never collide
with stored records. For each row it sends the record(s) just past the limit (and, where it is cheap, the ones
exactly at it) and checks the reply: a record within the limits is acknowledged; one past them is rejected under
its own (boot, seq) with the row's code; a ``drop`` row (a frame over the transport's size) gets no reply at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgpack
import zmq

__all__ = ["Case", "Outcome", "cases", "load_rows", "main", "run"]

DEFAULT_LIMITS = Path(__file__).resolve().parents[2] / "docs" / "protocol" / "limits.json"
DEVICE = "conformance"
ACK = "ack"  # the outcome of a record within the limits


@dataclass(frozen=True)
class Case:
    """One message sent for one row of the table: its frames and, per frame, ``(seq, outcome)`` (``"ack"`` or a
    rejection code; for a ``drop`` row the outcome is ``"drop"``: no reply)."""

    row: str
    name: str
    frames: tuple[bytes, ...]
    expect: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Outcome:
    row: str
    case: str
    expected: str
    got: str
    ok: bool


def load_rows(path: Path = DEFAULT_LIMITS) -> dict[str, str]:
    """row → the code the table gives it."""
    return {r["row"]: r["code"] for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}


def _record(boot: str, kind: str, seq: int, body: dict[str, Any], device: str = DEVICE, **extra: Any) -> bytes:
    rec = {"v": 1, "kind": kind, "device": device, "boot": boot, "seq": seq, "t_ns": 1, "wall_ns": 1, "body": body}
    return msgpack.packb({**rec, **extra}, use_bin_type=True)


def _window(**over: Any) -> dict[str, Any]:
    body = {"model": "m@1", "profile": "", "start_ns": 0, "end_ns": 1, "features": {}, "latency": {},
            "predictions": [], "counters": {"frames": 1}}  # fmt: skip
    return {**body, **over}


def _sketch(n: int) -> dict[str, Any]:
    return {"c": [0] * n, "m": [0, 0.0, 0.0, float("inf"), float("-inf")]}


def _capture(n: int) -> dict[str, Any]:
    return {"model": "m@1", "frame_seq": 1, "capture_ns": 1, "reason": "sample", "shape": [1], "dtype": "uint8",
            "codec": "zlib", "data": bytes(n)}  # fmt: skip


def _hello(**over: Any) -> dict[str, Any]:
    body = {"software": "conformance", "kernels": "numpy", "model": "", "profile": "0" * 16, "window_s": 1.0,
            "features": [], "latency_edges_us": [1.0, 10.0]}  # fmt: skip
    return {**body, **over}


def _nested(levels: int) -> dict[str, Any]:
    """event.fields (level 1) holding ``levels`` maps nested in each other, a scalar in the innermost."""
    inner: Any = 1
    for _ in range(levels):
        inner = {"k": inner}
    return inner


def _padded(boot: str, seq: int, size: int) -> bytes:
    """A valid window of exactly ``size`` bytes: an unknown key (ignored by readers, §7) holds a bin padding it."""
    probe = _record(boot, "window", seq, _window(), pad=bytes(1 << 17))
    return _record(boot, "window", seq, _window(), pad=bytes(size - (len(probe) - (1 << 17))))


def cases(boot: str) -> Iterator[Case]:
    """Every case of the table, records numbered from seq 1 under ``boot``."""
    seq = iter(range(1, 1 << 20))

    def one(row: str, name: str, kind: str, body: dict[str, Any], outcome: str, **kw: Any) -> Case:
        s = 0 if kind == "hello" else next(seq)
        return Case(row, name, (_record(boot, kind, s, body, **kw),), ((s, outcome),))

    def window(row: str, name: str, outcome: str, **over: Any) -> Case:
        return one(row, name, "window", _window(**over), outcome)

    def event(row: str, name: str, outcome: str, fields: dict[str, Any]) -> Case:
        return one(row, name, "event", {"name": "conformance", "fields": fields}, outcome)

    s = next(seq)
    yield Case("frame", "exactly 1 MiB, one bin over 786 432 bytes", (_padded(boot, s, 1 << 20),), ((s, ACK),))
    s = next(seq)
    yield Case("frame", "1 MiB + 1 byte", (_padded(boot, s, (1 << 20) + 1),), ((s, "limit"),))
    s = next(seq)
    yield Case("transport", "2 MiB (over ZMQ_MAXMSGSIZE)", (_padded(boot, s, 2 << 20),), ((s, "drop"),))
    first = next(seq)
    seqs = [first] + [next(seq) for _ in range(63)]
    yield Case("records_per_message", "64 records", tuple(_record(boot, "window", s, _window()) for s in seqs),
               tuple((s, ACK) for s in seqs))  # fmt: skip
    seqs = [next(seq) for _ in range(65)]
    frames = tuple(_record(boot, "window", s, _window()) for s in seqs)
    yield Case(
        "records_per_message", "65 records: each rejected under its key", frames, tuple((s, "limit") for s in seqs)
    )
    yield window("features", "257 features", "limit", features={f"f{i}": _sketch(3) for i in range(257)})
    yield window("sketch_counts", "2 counts", "limit", features={"f": _sketch(2)})
    yield window("sketch_counts", "259 counts", "limit", features={"f": _sketch(259)})
    yield window("sketch_counts", "258 counts", ACK, latency={"total": _sketch(258)})
    yield window("prediction_classes", "4096 classes", ACK, predictions=[0] * 4096)
    yield window("prediction_classes", "4097 classes", "limit", predictions=[0] * 4097)
    yield window("latency_stages", "33 stages", "limit", latency={f"s{i}": _sketch(3) for i in range(33)})
    yield window("counters", "65 counters", "limit", counters={"frames": 1, **{f"c{i}": 0 for i in range(64)}})
    yield event("event_fields", "64 fields", ACK, {f"k{i}": i for i in range(64)})
    yield event("event_fields", "65 fields", "limit", {f"k{i}": i for i in range(65)})
    yield event("event_depth", "fields + 4 nested maps (a scalar at level 6)", ACK, _nested(5))
    yield event("event_depth", "fields + 5 nested maps (a scalar at level 7)", "limit", _nested(6))
    yield one("names", "a 256-byte device id", "event", {"name": "n", "fields": {}}, ACK, device="d" * 256)
    yield one("names", "a 257-byte device id", "event", {"name": "n", "fields": {}}, "limit", device="d" * 257)
    yield window("names", "a 257-byte model", "limit", model="m" * 257)
    yield event("strings", "a 1024-byte string", ACK, {"s": "x" * 1024})
    yield event("strings", "a 1025-byte string", "limit", {"s": "x" * 1025})
    yield event("arrays", "an array of 4097 items", "limit", {"a": [0] * 4097})
    yield event("maps", "a map of 513 entries", "limit", {"m": {f"k{i}": 0 for i in range(513)}})
    yield one("capture_data", "786 432 bytes", "capture", _capture(786_432), ACK)
    yield one("capture_data", "786 433 bytes", "capture", _capture(786_433), "limit")
    yield one("profile_json", "524 289 bytes", "hello", _hello(profile_json=bytes(524_289)), "limit")
    yield Case("seq", "seq 2**63", (_record(boot, "window", 1 << 63, _window()),), ((1 << 63, "limit"),))


def _exchange(ctx: zmq.Context, url: str, case: Case, timeout_ms: int) -> dict[str, Any] | None:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(url)
        sock.send_multipart(list(case.frames))
        if not sock.poll(timeout_ms):
            return None
        return msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close(0)


def _judge(case: Case, boot: str, reply: dict[str, Any] | None, expected_code: Callable[[str], str]) -> list[Outcome]:
    out = []
    for seq, outcome in case.expect:
        expected = outcome if outcome == ACK else expected_code(case.row)
        if reply is None:
            got = "drop"
        else:
            acked = any(b == boot and lo <= seq <= hi for b, lo, hi in reply.get("acks", []))
            codes = [r[2] for r in reply.get("rejected", []) if r[0] == boot and r[1] == seq]
            got = ACK if acked and not codes else ",".join(codes) or ("ack" if acked else "no answer for this record")
        out.append(Outcome(case.row, f"{case.name} (seq {seq})", expected, got, got == expected))
    return out


def run(url: str, limits: Path = DEFAULT_LIMITS, timeout_s: float = 5.0) -> list[Outcome]:
    """Send every case to the collector at ``url``; one :class:`Outcome` per record."""
    table = load_rows(limits)
    boot = f"conformance-{os.urandom(8).hex()}"
    ctx = zmq.Context()
    try:
        results: list[Outcome] = []
        for case in cases(boot):
            if case.row not in table:
                raise KeyError(f"{limits}: expected a row {case.row!r} in the limits table, got rows {sorted(table)}")
            # a drop row waits a shorter while: its pass is the absence of a reply
            wait = min(timeout_s, 2.0) if table[case.row] == "drop" else timeout_s
            reply = _exchange(ctx, url, case, int(wait * 1000))
            results.extend(_judge(case, boot, reply, table.__getitem__))
        return results
    finally:
        ctx.destroy(linger=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.collector.conformance", description=__doc__.splitlines()[0])
    p.add_argument("url", help="the collector's endpoint, e.g. tcp://127.0.0.1:7000")
    p.add_argument("--limits", type=Path, default=DEFAULT_LIMITS, help="the limits table as data (limits.json)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    p.add_argument("--json", type=Path, help="write the outcomes here as JSON")
    a = p.parse_args(argv)
    results = run(a.url, a.limits, a.timeout)
    for r in results:
        print(f"{'PASS' if r.ok else 'FAIL'}  {r.row:<20} {r.case:<60} expected {r.expected:<8} got {r.got}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    if a.json:
        a.json.write_text(json.dumps({"outcomes": [asdict(r) for r in results]}, indent=1) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
