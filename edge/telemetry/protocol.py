"""The telemetry wire codec: records and collector replies as msgpack, validated against docs/PROTOCOL.md.

Both ends use this module: the device encodes with :func:`encode_record`, the collector decodes with
:func:`decode_frame` (which enforces every limit and raises :class:`~edge.errors.ProtocolError` on anything
malformed) and answers with :func:`encode_reply`; the device reads the answer with :func:`decode_reply`.
Every function here is pure (no I/O) and allocates only the objects it returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from edge.errors import ProtocolError
from edge.telemetry.bulk import moments_ok, sketches_ok, uints_ok

__all__ = [
    "KINDS",
    "MAX_BATCH_RECORDS",
    "MAX_BINS",
    "MAX_CAPTURE_BYTES",
    "MAX_CLASSES",
    "MAX_FEATURES",
    "MAX_FRAME_BYTES",
    "MAX_IN_FLIGHT",
    "MAX_PROFILE_BYTES",
    "SCHEMA_VERSION",
    "SPOOLED_KINDS",
    "AckRange",
    "Record",
    "RejectedRecord",
    "Reply",
    "ack_ranges",
    "decode_frame",
    "decode_reply",
    "encode_record",
    "encode_reply",
]

SCHEMA_VERSION = 1
KINDS = ("hello", "window", "event", "capture", "heartbeat")
SPOOLED_KINDS = frozenset({"window", "event", "capture"})  # stored, acknowledged, deduplicated; seq >= 1
MAX_FRAME_BYTES = 1 << 20  # one ZeroMQ frame (one record or one reply), bytes
MAX_BATCH_RECORDS = 64  # records (frames) in one multipart message
MAX_IN_FLIGHT = 4  # messages a device may have waiting for a reply (PROTOCOL.md §5, device behaviour 2)
MAX_FEATURES = 256  # features in a window or hello
MAX_BINS = 258  # histogram counts per feature: at most 256 edges + underflow, overflow, NaN
MAX_CLASSES = 4096  # prediction histogram length
MAX_CAPTURE_BYTES = 768 << 10  # compressed capture payload, bytes
MAX_PROFILE_BYTES = 512 << 10  # a reference profile uploaded in a hello (hello.profile_json), bytes
PROFILE_ID_CHARS = 16  # a profile id: 16 lowercase hex digits (PROTOCOL.md §8)
MAX_STR_BYTES = 256  # any string (names, ids, messages)
MAX_ARRAY = 4096  # any array
MAX_MAP = 512  # any map
MAX_DEPTH = 6  # nesting of event fields: event.fields is level 1, a value in a level-n container is at level n + 1
MAX_FIELD_STR_BYTES = 4 * MAX_STR_BYTES  # any string (event field values), msgpack's max_str_len; names: MAX_STR_BYTES
MAX_U64 = (1 << 64) - 1
MAX_SEQ = (1 << 63) - 1  # seq is stored as a signed 64-bit integer (SQLite INTEGER): PROTOCOL.md, "Envelope"


@dataclass(frozen=True)
class Record:
    """One decoded record. ``key`` = ``(device, boot, seq)`` is the deduplication key of spooled kinds.
    ``t_ns``: device clock (ns, the loop's clock); ``wall_ns``: device wall clock (ns since the Unix epoch)."""

    kind: str
    device: str
    boot: str
    seq: int
    t_ns: int
    wall_ns: int
    body: dict[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.device, self.boot, self.seq)

    def to_map(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "kind": self.kind,
            "device": self.device,
            "boot": self.boot,
            "seq": self.seq,
            "t_ns": self.t_ns,
            "wall_ns": self.wall_ns,
            "body": self.body,
        }


@dataclass(frozen=True)
class AckRange:
    """Records ``first..last`` (inclusive) of ``boot`` are durably stored by the collector."""

    boot: str
    first: int
    last: int


@dataclass(frozen=True)
class RejectedRecord:
    """A record the collector will never accept (``code``: ``"malformed"``, ``"version"``, ``"limit"``,
    ``"identity"``; PROTOCOL.md §5)."""

    boot: str
    seq: int
    code: str
    message: str


@dataclass(frozen=True)
class Reply:
    """The collector's answer to one message: what it stored and what it rejected."""

    acks: tuple[AckRange, ...] = ()
    rejected: tuple[RejectedRecord, ...] = ()
    need_profile: str = ""  # the profile id of the message's hello when the collector does not have it ("": none)


# ------------------------------------------------------------------------------------------------ checks


def _fail(where: str, expected: str, got: object, code: str = "malformed") -> ProtocolError:
    try:
        shown = repr(got)
    except RecursionError:  # e.g. an array nested ~1000 deep (msgpack decodes up to 1024 levels)
        shown = "(nested too deeply to show)"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ProtocolError(f"{where}: expected {expected}, got {type(got).__name__} {shown}", code)


def _int(where: str, x: object, lo: int = 0, hi: int = MAX_U64) -> int:
    if type(x) is not int or not lo <= x <= hi:
        raise _fail(where, f"an integer in [{lo}, {hi}]", x)
    return x


def _num(where: str, x: object, *, finite: bool = False) -> float:
    if type(x) not in (int, float) or (finite and not math.isfinite(x)):
        raise _fail(where, "a finite number" if finite else "a number", x)
    return float(x)


def _str(where: str, x: object, *, nonempty: bool = True) -> str:
    expected = f"a {'non-empty ' if nonempty else ''}string of at most {MAX_STR_BYTES} bytes"
    if type(x) is not str or (nonempty and not x):
        raise _fail(where, expected, x)
    if len(x.encode("utf-8")) > MAX_STR_BYTES:
        raise _fail(where, expected, x, "limit")
    return x


def _map(where: str, x: object, required: Iterable[str] = ()) -> dict[str, Any]:
    if type(x) is not dict:
        raise _fail(where, "a map", x)
    missing = [k for k in required if k not in x]
    if missing:
        raise ProtocolError(f"{where}: expected keys {sorted(required)}, missing {missing}")
    return x


def _list(where: str, x: object, lo: int, hi: int) -> list[Any]:
    if type(x) is not list:
        raise _fail(where, f"an array of {lo}..{hi} items", x)
    if not lo <= len(x) <= hi:  # a size out of its range (PROTOCOL.md §6): limit
        raise _fail(where, f"an array of {lo}..{hi} items", x, "limit")
    return x


def _counts(where: str, x: object) -> None:
    for i, c in enumerate(_list(where, x, 3, MAX_BINS)):
        _int(f"{where}[{i}]", c)


def _moments(where: str, x: object) -> None:
    for i, m in enumerate(_list(where, x, 5, 5)):
        _num(f"{where}[{i}]", m)


def _sketches(where: str, x: object, limit: int) -> None:
    m = _map(where, x)
    if len(m) > limit:
        raise _fail(where, f"at most {limit} entries", f"{len(m)} entries", "limit")
    if sketches_ok(m, MAX_BINS, MAX_STR_BYTES):
        return
    for name, s in m.items():
        _str(f"{where} key", name)
        s = _map(f"{where}.{name}", s, ("c", "m"))
        _counts(f"{where}.{name}.c", s["c"])
        _moments(f"{where}.{name}.m", s["m"])
        if not moments_ok(s["c"], s["m"]):
            raise _fail(
                f"{where}.{name}.m",
                "finite count, mean and M2 with 0 <= count <= the finite counts (all of c but the NaN one), M2 >= 0, "
                "min and max not NaN",
                s["m"],
            )


def _profile_id(where: str, x: object) -> None:
    """A profile id (§8): 16 lowercase hex digits, or empty (no profile)."""
    if type(x) is not str or not (x == "" or (len(x) == 16 and set(x) <= _HEX)):
        raise _fail(where, "a profile id: 16 lowercase hex digits (or empty)", x)


def _depth(where: str, x: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _fail(where, f"nesting of at most {MAX_DEPTH} levels", "deeper", "limit")
    if type(x) is dict:
        for k, v in x.items():
            _str(f"{where} key", k)
            _depth(f"{where}.{k}", v, depth + 1)
    elif type(x) is list:
        for i, v in enumerate(x):
            _depth(f"{where}[{i}]", v, depth + 1)
    elif x is not None and type(x) not in (bool, int, float, str):
        raise _fail(where, "nil, bool, int, float, str, array or map", x)


def _hello(b: dict[str, Any]) -> None:
    _map("hello", b, ("software", "kernels", "model", "profile", "window_s", "features", "latency_edges_us"))
    for k in ("software", "kernels", "model"):
        _str(f"hello.{k}", b[k], nonempty=False)
    _profile_id("hello.profile", b["profile"])
    if _num("hello.window_s", b["window_s"], finite=True) <= 0:
        raise _fail("hello.window_s", "a positive number of seconds", b["window_s"])
    for i, f in enumerate(_list("hello.features", b["features"], 0, MAX_FEATURES)):
        f = _map(f"hello.features[{i}]", f, ("name", "edges"))
        _str(f"hello.features[{i}].name", f["name"])
        for j, e in enumerate(_list(f"hello.features[{i}].edges", f["edges"], 2, MAX_BINS - 2)):
            _num(f"hello.features[{i}].edges[{j}]", e, finite=True)
    for j, e in enumerate(_list("hello.latency_edges_us", b["latency_edges_us"], 2, MAX_BINS - 2)):
        _num(f"hello.latency_edges_us[{j}]", e, finite=True)
    if "profile_json" in b:  # optional: the profile's canonical JSON, sent when the collector asked for it
        doc = b["profile_json"]
        if type(doc) is not bytes or not 0 < len(doc) <= MAX_PROFILE_BYTES:
            got = f"{len(doc)} bytes" if type(doc) is bytes else doc
            code = "limit" if type(doc) is bytes and len(doc) > MAX_PROFILE_BYTES else "malformed"
            raise _fail("hello.profile_json", f"1 byte (bin) at least and at most {MAX_PROFILE_BYTES}", got, code)


def _window(b: dict[str, Any]) -> None:
    _map("window", b, ("model", "profile", "start_ns", "end_ns", "features", "latency", "predictions", "counters"))
    _str("window.model", b["model"], nonempty=False)
    _profile_id("window.profile", b["profile"])
    start = _int("window.start_ns", b["start_ns"], -(1 << 63), (1 << 63) - 1)
    end = _int("window.end_ns", b["end_ns"], -(1 << 63), (1 << 63) - 1)
    if end <= start:
        raise _fail("window.end_ns", f"a time after start_ns={start}", end)
    _sketches("window.features", b["features"], MAX_FEATURES)
    _sketches("window.latency", b["latency"], 32)
    predictions = _list("window.predictions", b["predictions"], 0, MAX_CLASSES)
    if not uints_ok(predictions):
        for i, c in enumerate(predictions):
            _int(f"window.predictions[{i}]", c)
    counters = _map("window.counters", b["counters"], ("frames",))
    if len(counters) > 64:
        raise _fail("window.counters", "at most 64 counters", f"{len(counters)} counters", "limit")
    for k, c in counters.items():
        _str("window.counters key", k)
        _int(f"window.counters.{k}", c)


def _event(b: dict[str, Any]) -> None:
    _map("event", b, ("name", "fields"))
    _str("event.name", b["name"])
    fields = _map("event.fields", b["fields"])
    if len(fields) > 64:
        raise _fail("event.fields", "at most 64 fields", f"{len(fields)} fields", "limit")
    _depth("event.fields", fields, 1)


def _capture(b: dict[str, Any]) -> None:
    _map("capture", b, ("model", "frame_seq", "capture_ns", "reason", "shape", "dtype", "codec", "data"))
    _str("capture.model", b["model"], nonempty=False)
    _int("capture.frame_seq", b["frame_seq"])
    _int("capture.capture_ns", b["capture_ns"], -(1 << 63), (1 << 63) - 1)
    if b["reason"] not in ("low_confidence", "drift", "sample"):
        raise _fail("capture.reason", "'low_confidence', 'drift' or 'sample'", b["reason"])
    for i, d in enumerate(_list("capture.shape", b["shape"], 1, 4)):
        _int(f"capture.shape[{i}]", d, 1, 1 << 16)
    if b["dtype"] != "uint8":
        raise _fail("capture.dtype", "'uint8'", b["dtype"])
    if b["codec"] != "zlib":
        raise _fail("capture.codec", "'zlib'", b["codec"])
    if type(b["data"]) is not bytes:
        raise _fail("capture.data", f"bytes (bin) of at most {MAX_CAPTURE_BYTES}", type(b["data"]).__name__)
    if len(b["data"]) > MAX_CAPTURE_BYTES:
        raise _fail("capture.data", f"bytes (bin) of at most {MAX_CAPTURE_BYTES}", f"{len(b['data'])} bytes", "limit")
    for k in ("confidence", "drift_score"):
        if k in b:
            _num(f"capture.{k}", b[k])


def _heartbeat(b: dict[str, Any]) -> None:
    _map("heartbeat", b, ("pending", "spool_bytes"))
    _int("heartbeat.pending", b["pending"])
    _int("heartbeat.spool_bytes", b["spool_bytes"])


_BODY = {"hello": _hello, "window": _window, "event": _event, "capture": _capture, "heartbeat": _heartbeat}


def validate_map(m: object) -> Record:
    """Check a decoded record map against the schema and return it as a :class:`Record`."""
    m = _map("record", m, ("v", "kind", "device", "boot", "seq", "t_ns", "wall_ns", "body"))
    if type(m["v"]) is not int:  # an integer (PROTOCOL.md §3): 1.0 and true are not (bool is no int here)
        v = m["v"]
        raise ProtocolError(
            f"record.v: expected schema version {SCHEMA_VERSION} as an integer, got {type(v).__name__} {v!r}"
        )
    if m["v"] != SCHEMA_VERSION:
        raise ProtocolError(f"record.v: expected schema version {SCHEMA_VERSION}, got {m['v']!r}", "version")
    kind = m["kind"]
    if kind not in _BODY:
        raise _fail("record.kind", f"one of {', '.join(KINDS)}", kind)
    device = _str("record.device", m["device"])
    boot = _str("record.boot", m["boot"])
    seq = _int("record.seq", m["seq"])
    if seq > MAX_SEQ:
        raise _fail("record.seq", f"at most {MAX_SEQ} (2**63 - 1, the collector's integers)", seq, "limit")
    if (kind in SPOOLED_KINDS) != (seq >= 1):
        raise _fail("record.seq", f"{'>= 1' if kind in SPOOLED_KINDS else '0'} for a {kind} record", seq)
    t_ns = _int("record.t_ns", m["t_ns"], -(1 << 63), (1 << 63) - 1)
    wall_ns = _int("record.wall_ns", m["wall_ns"], 0, (1 << 63) - 1)
    body = _map(f"{kind} body", m["body"])
    _BODY[kind](body)
    return Record(kind, device, boot, seq, t_ns, wall_ns, body)


# ------------------------------------------------------------------------------------------------ codec


_SIZES = (
    f"arrays of at most {MAX_ARRAY} items, maps of at most {MAX_MAP} entries, strings of at most {MAX_FIELD_STR_BYTES}"
)


_HEX = frozenset("0123456789abcdef")


def _no_ext(code: int, data: bytes) -> object:
    raise ProtocolError(f"frame: expected no msgpack extension types, got ext type {code}")


def _unpack(data: object, what: str) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail(what, "bytes", data)
    n = len(data)
    if n > MAX_FRAME_BYTES:
        raise ProtocolError(f"{what}: expected at most {MAX_FRAME_BYTES} bytes, got {n}", "limit")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_str_len=MAX_FIELD_STR_BYTES,
            max_bin_len=MAX_FRAME_BYTES,  # a bin's own limit is its field's (capture.data, hello.profile_json)
            max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
            max_ext_len=0,
        )
    except ProtocolError:
        raise
    except ValueError as exc:
        if "exceeds max_" in str(exc):  # msgpack's own message: an array, map or str over its §6 size
            raise ProtocolError(f"{what}: expected {_SIZES}, got {exc}", "limit") from exc
        raise ProtocolError(f"{what}: expected one msgpack map, got undecodable bytes (ValueError: {exc})") from exc
    except (TypeError, msgpack.exceptions.UnpackException, RecursionError) as exc:
        raise ProtocolError(
            f"{what}: expected one msgpack map, got undecodable bytes ({type(exc).__name__}: {exc})"
        ) from exc


def decode_frame(data: bytes | bytearray | memoryview) -> Record:
    """Decode and validate one record frame. :class:`ProtocolError` (message: what was expected, what arrived)
    on bad msgpack, trailing bytes, an unknown kind or schema version, a missing or mistyped field, or any limit
    exceeded."""
    return validate_map(_unpack(data, "frame"))


def encode_record(record: Record) -> bytes:
    """Validate ``record`` (the device never sends what a collector would refuse) and encode it (bytes, ≤
    :data:`MAX_FRAME_BYTES`)."""
    validate_map(record.to_map())
    data = msgpack.packb(record.to_map(), use_bin_type=True)
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(f"record: expected at most {MAX_FRAME_BYTES} bytes encoded, got {len(data)}")
    return data


def ack_ranges(keys: Iterable[tuple[str, int]]) -> list[AckRange]:
    """Compress ``(boot, seq)`` pairs into contiguous :class:`AckRange` runs (sorted)."""
    out: list[AckRange] = []
    for boot, seq in sorted(set(keys)):
        if out and out[-1].boot == boot and out[-1].last + 1 == seq:
            out[-1] = AckRange(boot, out[-1].first, seq)
        else:
            out.append(AckRange(boot, seq, seq))
    return out


def encode_reply(reply: Reply) -> bytes:
    """The collector's answer to one message (see PROTOCOL.md, "Replies")."""
    m = {
        "v": SCHEMA_VERSION,
        "kind": "ack",
        "acks": [[a.boot, a.first, a.last] for a in reply.acks],
        "rejected": [[r.boot, r.seq, r.code, r.message[:MAX_STR_BYTES]] for r in reply.rejected],
    }
    if reply.need_profile:
        m["need_profile"] = reply.need_profile
    return msgpack.packb(m, use_bin_type=True)


def decode_reply(data: bytes | bytearray | memoryview) -> Reply:
    """Decode a collector reply; :class:`ProtocolError` when it is malformed."""
    m = _map("reply", _unpack(data, "reply"), ("v", "kind", "acks", "rejected"))
    if m["v"] != SCHEMA_VERSION or m["kind"] != "ack":
        raise _fail("reply", f"v={SCHEMA_VERSION}, kind='ack'", (m["v"], m["kind"]))
    acks = []
    for i, a in enumerate(_list("reply.acks", m["acks"], 0, MAX_ARRAY)):
        a = _list(f"reply.acks[{i}]", a, 3, 3)
        first, last = _int(f"reply.acks[{i}][1]", a[1], 1), _int(f"reply.acks[{i}][2]", a[2], 1)
        if last < first:
            raise _fail(f"reply.acks[{i}]", "first <= last", a)
        acks.append(AckRange(_str(f"reply.acks[{i}][0]", a[0]), first, last))
    rejected = []
    for i, r in enumerate(_list("reply.rejected", m["rejected"], 0, MAX_ARRAY)):
        r = _list(f"reply.rejected[{i}]", r, 4, 4)
        rejected.append(
            RejectedRecord(
                _str(f"reply.rejected[{i}][0]", r[0], nonempty=False),
                _int(f"reply.rejected[{i}][1]", r[1]),
                _str(f"reply.rejected[{i}][2]", r[2]),
                _str(f"reply.rejected[{i}][3]", r[3], nonempty=False),
            )
        )
    need = m.get("need_profile", "")
    if type(need) is not str or (need and (len(need) != PROFILE_ID_CHARS or need.strip("0123456789abcdef"))):
        raise _fail("reply.need_profile", f"a profile id ({PROFILE_ID_CHARS} lowercase hex digits)", need)
    return Reply(tuple(acks), tuple(rejected), need)


def body_of(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one record body alone (used by tests and tools); returns it as a dict."""
    b = dict(body)
    if kind not in _BODY:
        raise _fail("kind", f"one of {', '.join(KINDS)}", kind)
    _BODY[kind](b)
    return b
