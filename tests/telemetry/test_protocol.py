"""The wire codec: round trips of every record kind (hypothesis), the worked example of docs/PROTOCOL.md byte for byte,
and schema validation: every malformed or oversized frame is a ProtocolError that says what was expected."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ProtocolError
from edge.telemetry.protocol import (
    MAX_BINS,
    MAX_FEATURES,
    MAX_FRAME_BYTES,
    AckRange,
    Record,
    RejectedRecord,
    Reply,
    ack_ranges,
    decode_frame,
    decode_reply,
    encode_record,
    encode_reply,
)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
u63 = st.integers(0, (1 << 63) - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
ends = st.floats(allow_nan=False)
# moments that can be true (PROTOCOL.md §4.2): count within the finite counts, mean and M2 finite, M2 >= 0
sketch = st.lists(st.integers(0, 1 << 40), min_size=3, max_size=20).flatmap(
    lambda c: st.fixed_dictionaries(
        {
            "c": st.just(c),
            "m": st.tuples(st.integers(0, sum(c[:-1])), finite, st.floats(0, allow_infinity=False), ends, ends).map(
                list
            ),
        }
    )
)


@st.composite
def window_body(draw: st.DrawFn) -> dict:
    start = draw(st.integers(-(1 << 62), 1 << 62))
    return {
        "model": draw(names),
        "profile": "0123456789abcdef",
        "start_ns": start,
        "end_ns": start + draw(st.integers(1, 1 << 40)),
        "features": draw(st.dictionaries(names, sketch, max_size=6)),
        "latency": draw(st.dictionaries(st.sampled_from(["infer", "total", "policy"]), sketch, max_size=3)),
        "predictions": draw(st.lists(st.integers(0, 1 << 31), max_size=12)),
        "counters": {"frames": draw(st.integers(0, 1 << 31)), **draw(st.dictionaries(names, st.integers(0, 99)))},
    }


field_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 63) - 1) | finite | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
    max_leaves=12,
)

bodies = st.one_of(
    st.tuples(st.just("window"), window_body()),
    st.tuples(st.just("event"), st.fixed_dictionaries({"name": names, "fields": st.dictionaries(names, field_values)})),
    st.tuples(
        st.just("capture"),
        st.fixed_dictionaries(
            {
                "model": names,
                "frame_seq": u63,
                "capture_ns": u63,
                "reason": st.sampled_from(["low_confidence", "drift", "sample"]),
                "shape": st.lists(st.integers(1, 4096), min_size=1, max_size=4),
                "dtype": st.just("uint8"),
                "codec": st.just("zlib"),
                "data": st.binary(max_size=300),
                "confidence": finite,
            }
        ),
    ),
)


@settings(max_examples=150, deadline=None)
@given(kind_body=bodies, device=names, boot=names, seq=st.integers(1, (1 << 63) - 1), t_ns=u63, wall_ns=u63)
def test_spooled_records_round_trip(kind_body, device, boot, seq, t_ns, wall_ns) -> None:
    kind, body = kind_body
    rec = Record(kind, device, boot, seq, t_ns, wall_ns, body)
    data = encode_record(rec)
    assert len(data) <= MAX_FRAME_BYTES
    back = decode_frame(data)
    assert back.kind == kind and back.key == (device, boot, seq)
    assert (back.t_ns, back.wall_ns) == (t_ns, wall_ns)
    assert msgpack.packb(back.body) == msgpack.packb(body)  # NaN-safe equality of the body


@settings(max_examples=50, deadline=None)
@given(pending=st.integers(0, 1 << 40), nbytes=st.integers(0, 1 << 40))
def test_heartbeat_round_trip_and_seq_zero(pending, nbytes) -> None:
    rec = Record("heartbeat", "d", "b", 0, 1, 2, {"pending": pending, "spool_bytes": nbytes})
    assert decode_frame(encode_record(rec)) == rec
    with pytest.raises(ProtocolError, match=r"record\.seq: expected 0 for a heartbeat"):
        encode_record(Record("heartbeat", "d", "b", 5, 1, 2, {"pending": 0, "spool_bytes": 0}))


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.tuples(st.sampled_from(["b1", "b2"]), st.integers(1, 60)), max_size=40))
def test_ack_ranges_cover_exactly_the_keys(keys) -> None:
    ranges = ack_ranges(keys)
    covered = {(a.boot, s) for a in ranges for s in range(a.first, a.last + 1)}
    assert covered == set(keys)
    reply = decode_reply(encode_reply(Reply(tuple(ranges), (RejectedRecord("b1", 3, "malformed", "bad"),))))
    assert list(reply.acks) == ranges
    assert reply.rejected == (RejectedRecord("b1", 3, "malformed", "bad"),)


# The worked example of docs/PROTOCOL.md, assembled by hand from the msgpack spec.
def _s(text: str) -> bytes:  # fixstr
    return bytes([0xA0 | len(text)]) + text.encode()


HEARTBEAT_HEX = (
    "88 a1 76 01 a4 6b 69 6e 64 a9 68 65 61 72 74 62 65 61 74 a6 64 65 76 69 63 65 a5 64 65 76 2d 37 a4 62 6f 6f 74 "
    "a2 62 30 a3 73 65 71 00 a4 74 5f 6e 73 cf 00 00 00 01 2a 05 f2 00 a7 77 61 6c 6c 5f 6e 73 cf 18 79 eb ce 36 5b "
    "40 00 a4 62 6f 64 79 82 a7 70 65 6e 64 69 6e 67 03 ab 73 70 6f 6f 6c 5f 62 79 74 65 73 cd 06 00"
)


def test_worked_example_heartbeat_bytes() -> None:
    by_hand = (
        b"\x88"
        + _s("v") + b"\x01"
        + _s("kind") + _s("heartbeat")
        + _s("device") + _s("dev-7")
        + _s("boot") + _s("b0")
        + _s("seq") + b"\x00"
        + _s("t_ns") + b"\xcf" + (5_000_000_000).to_bytes(8, "big")
        + _s("wall_ns") + b"\xcf" + (1_763_700_000_000_000_000).to_bytes(8, "big")
        + _s("body") + b"\x82" + _s("pending") + b"\x03" + _s("spool_bytes") + b"\xcd\x06\x00"
    )  # fmt: skip
    assert by_hand == bytes.fromhex(HEARTBEAT_HEX)
    rec = decode_frame(by_hand)
    assert rec == Record("heartbeat", "dev-7", "b0", 0, 5_000_000_000, 1_763_700_000_000_000_000,
                         {"pending": 3, "spool_bytes": 1536})  # fmt: skip
    assert encode_record(rec) == by_hand


def test_worked_example_ack_bytes() -> None:
    by_hand = (
        b"\x84" + _s("v") + b"\x01" + _s("kind") + _s("ack")
        + _s("acks") + b"\x91\x93" + _s("b0") + b"\x01\x03"
        + _s("rejected") + b"\x90"
    )  # fmt: skip
    assert encode_reply(Reply((AckRange("b0", 1, 3),))) == by_hand
    assert decode_reply(by_hand) == Reply((AckRange("b0", 1, 3),))


def _window_map(**body_changes) -> dict:
    body = {
        "model": "m@1",
        "profile": "0123456789abcdef",
        "start_ns": 0,
        "end_ns": 10,
        "features": {"f": {"c": [0, 1, 0], "m": [1.0, 0.5, 0.0, 0.5, 0.5]}},
        "latency": {},
        "predictions": [],
        "counters": {"frames": 1},
    }
    body.update(body_changes)
    return {"v": 1, "kind": "window", "device": "d", "boot": "b", "seq": 1, "t_ns": 10, "wall_ns": 1, "body": body}


def _bad(m: object) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_frame(msgpack.packb(m, use_bin_type=True))
    return str(info.value)


def test_schema_violations_say_what_was_expected_and_what_arrived() -> None:
    assert decode_frame(msgpack.packb(_window_map())).seq == 1
    assert "expected schema version 1, got 2" in _bad({**_window_map(), "v": 2})
    assert "record.kind: expected one of hello, window" in _bad({**_window_map(), "kind": "telemetry"})
    assert "missing ['boot']" in _bad({k: v for k, v in _window_map().items() if k != "boot"})
    assert "record.seq: expected >= 1 for a window record, got int 0" in _bad({**_window_map(), "seq": 0})
    assert "window.end_ns: expected a time after start_ns=0, got int 0" in _bad(_window_map(end_ns=0))
    assert "window.features.f.c: expected an array of 3..258 items" in _bad(
        _window_map(features={"f": {"c": [1], "m": [0.0] * 5}})
    )
    assert "window.features.f.c[1]: expected an integer in [0," in _bad(
        _window_map(features={"f": {"c": [0, -1, 0], "m": [0.0] * 5}})
    )
    assert "window.counters.frames: expected an integer" in _bad(_window_map(counters={"frames": "ten"}))
    assert "expected a map, got list" in _bad([1, 2, 3])


def test_limits() -> None:
    feats = {f"f{i}": {"c": [0, 0, 0], "m": [0.0] * 5} for i in range(MAX_FEATURES + 1)}
    assert f"window.features: expected at most {MAX_FEATURES} entries" in _bad(_window_map(features=feats))
    wide = {"f": {"c": [0] * (MAX_BINS + 1), "m": [0.0] * 5}}
    assert f"3..{MAX_BINS} items" in _bad(_window_map(features=wide))
    with pytest.raises(ProtocolError, match=f"expected at most {MAX_FRAME_BYTES} bytes, got {MAX_FRAME_BYTES + 1}"):
        decode_frame(b"\x00" * (MAX_FRAME_BYTES + 1))
    deep: object = 1
    for _ in range(10):
        deep = [deep]
    event = {**_window_map(), "kind": "event", "body": {"name": "x", "fields": {"a": deep}}}
    assert "nesting of at most" in _bad(event)


def test_undecodable_bytes_trailing_data_and_ext_types() -> None:
    good = msgpack.packb(_window_map())
    for data in (b"", b"\xc1", good[:-3], good + b"\x00"):
        with pytest.raises(ProtocolError, match="frame: expected one msgpack map"):
            decode_frame(data)
    with pytest.raises(ProtocolError, match="ext"):
        decode_frame(msgpack.packb({"v": msgpack.ExtType(5, b"xx")}))
    with pytest.raises(ProtocolError, match="frame: expected bytes"):
        decode_frame("not bytes")  # type: ignore[arg-type]


def test_encode_refuses_what_a_collector_would_refuse() -> None:
    with pytest.raises(ProtocolError, match=r"capture\.reason"):
        encode_record(Record("capture", "d", "b", 1, 0, 0, {"model": "", "frame_seq": 0, "capture_ns": 0,
                                                           "reason": "because", "shape": [2], "dtype": "uint8",
                                                           "codec": "zlib", "data": b""}))  # fmt: skip


def test_malformed_replies() -> None:
    with pytest.raises(ProtocolError, match="first <= last"):
        decode_reply(msgpack.packb({"v": 1, "kind": "ack", "acks": [["b", 5, 2]], "rejected": []}))
    with pytest.raises(ProtocolError, match="reply"):
        decode_reply(msgpack.packb({"v": 1, "kind": "nope", "acks": [], "rejected": []}))


def test_protocol_md_event_example_is_what_goes_on_the_wire() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    block = doc.split("An event record (seq 4) announcing a model swap encodes as:")[1].split("```")[1]
    wire = bytes.fromhex(block)
    rec = Record("event", "dev-7", "b0", 4, 5_000_000_000, 1_763_700_000_000_000_000,
                 {"name": "swap", "fields": {"model": "det@2"}})  # fmt: skip
    assert encode_record(rec) == wire
    assert decode_frame(wire) == rec
    assert (
        HEARTBEAT_HEX.split()[:4] == ["88", "a1", "76", "01"]
        and f"The frame is {len(HEARTBEAT_HEX.split())} bytes" in doc
    )


def test_protocol_md_annotated_heartbeat_is_the_worked_example() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    block = doc.split("The frame is 106 bytes:")[1].split("```")[1]
    tokens = []
    for line in block.splitlines():
        for t in line.split():
            if len(t) != 2 or any(ch not in "0123456789abcdef" for ch in t):
                break  # the annotation starts
            tokens.append(t)
    assert bytes.fromhex(" ".join(tokens)) == bytes.fromhex(HEARTBEAT_HEX)


@pytest.mark.parametrize(("v", "arrived"), [(1.0, "float 1.0"), (True, "bool True"), ("1", "str '1'")])
def test_schema_version_is_an_integer(v: object, arrived: str) -> None:
    """PROTOCOL.md §3: ``v`` is an integer; 1.0 and true equal 1 in Python but are not the version."""
    message = _bad({**_window_map(), "v": v})
    assert message.startswith("record.v: expected schema version 1 as an integer") and arrived in message
    assert decode_frame(msgpack.packb({**_window_map(), "v": 1})).seq == 1
