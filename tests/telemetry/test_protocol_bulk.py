"""The validator's bulk fast path accepts and rejects exactly what the item-by-item checks do, with their messages;
seq is limited to 2**63 - 1; a ~1000-deep nested frame is a ProtocolError, not a RecursionError."""

from __future__ import annotations

import msgpack
import pytest

from edge.errors import ProtocolError
from edge.telemetry.protocol import MAX_SEQ, Record, decode_frame, encode_record


def window(**body_changes: object) -> dict:
    body = {
        "model": "m@1",
        "profile": "0123456789abcdef",
        "start_ns": 0,
        "end_ns": 10,
        "features": {
            "a": {"c": [0, 1, 0], "m": [1.0, 0.5, 0.0, 0.5, 0.5]},
            "b": {"c": [2, 0, 0, 1], "m": [2, 3, 0, 3, 3]},
        },
        "latency": {},
        "predictions": [1, 2, 3],
        "counters": {"frames": 1},
    }
    body.update(body_changes)
    return {"v": 1, "kind": "window", "device": "d", "boot": "b", "seq": 1, "t_ns": 10, "wall_ns": 1, "body": body}


def bad(m: object) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_frame(msgpack.packb(m, use_bin_type=True))
    return str(info.value)


U64 = "window.features.b.c[1]: expected an integer in [0, 18446744073709551615], "


def feats(**b: object) -> dict:
    return {"a": {"c": [0, 1, 0], "m": [0.0] * 5}, "b": {"c": [0, 0, 0], "m": [0.0] * 5, **b}}


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            feats(c=[0, True, 0]),
            U64 + "got bool True",
        ),
        (
            feats(c=[0, 1.0, 0]),
            U64 + "got float 1.0",
        ),
        (feats(c=[0, 0, -1]), "window.features.b.c[2]" + U64[22:] + "got int -1"),
        (feats(c=[0, 0, None]), "window.features.b.c[2]: expected an integer"),
        (feats(c=(0, 0)), "window.features.b.c: expected an array of 3..258 items, got list [0, 0]"),
        (feats(m=[0.0, 0.0, 0.0, 0.0, "x"]), "window.features.b.m[4]: expected a number, got str 'x'"),
        (feats(m=[0.0, 0.0, 0.0, 0.0, False]), "window.features.b.m[4]: expected a number, got bool False"),
        (feats(m=[0.0] * 4), "window.features.b.m: expected an array of 5..5 items"),
        ({"a": [1]}, "window.features.a: expected a map, got list [1]"),
        ({"a": {"c": [0, 0, 0]}}, "window.features.a: expected keys ['c', 'm'], missing ['m']"),
        ({"": {"c": [0, 0, 0], "m": [0] * 5}}, "window.features key: expected a non-empty string"),
        (
            {"é" * 129: {"c": [0, 0, 0], "m": [0] * 5}},
            "features key: expected a non-empty string of at most 256",
        ),
    ],
)
def test_bulk_path_rejects_with_the_item_messages(features: dict, message: str) -> None:
    assert message in bad(window(features=features))


def test_bulk_path_accepts_the_edges_of_the_ranges() -> None:
    # the extremes of possible moments (PROTOCOL.md §4.2): count = the finite counts, +-inf min/max, huge M2
    big = {"x" * 64: {"c": [0, (1 << 64) - 1, 7], "m": [(1 << 64) - 1, -1e300, 1e300, float("-inf"), float("inf")]}}
    name_256_bytes = {"é" * 128: {"c": [0, 0, 0], "m": [0] * 5}}  # 128 code points, 256 UTF-8 bytes
    for f in (big, name_256_bytes, {}):
        back = decode_frame(msgpack.packb(window(features=f), use_bin_type=True)).body["features"]
        assert msgpack.packb(back) == msgpack.packb(f)  # NaN-safe equality
    assert decode_frame(msgpack.packb(window(predictions=[(1 << 64) - 1, 0]))).body["predictions"][0] == (1 << 64) - 1
    assert "window.predictions[1]: expected an integer" in bad(window(predictions=[0, True]))
    assert "window.predictions[0]: expected an integer" in bad(window(predictions=[-1]))


def test_seq_is_at_most_2_63_minus_1_a_limit() -> None:
    assert decode_frame(msgpack.packb({**window(), "seq": MAX_SEQ})).seq == MAX_SEQ == (1 << 63) - 1
    message = bad({**window(), "seq": 1 << 63})
    assert (
        message.startswith("record.seq: expected at most 9223372036854775807")
        and "got int 9223372036854775808" in message
    )
    with pytest.raises(ProtocolError, match=r"record\.seq: expected at most"):
        encode_record(Record("event", "d", "b", (1 << 64) - 1, 0, 0, {"name": "x", "fields": {}}))


@pytest.mark.parametrize("depth", [900, 1000, 1023, 1024, 1025, 3000])
@pytest.mark.parametrize("prefix", [b"\x91", b"\x81\xa1a"])
def test_deep_nesting_is_a_protocol_error(depth: int, prefix: bytes) -> None:
    with pytest.raises(ProtocolError, match="expected"):
        decode_frame(prefix * depth + b"\x00")
    inner: object = 0
    for _ in range(depth if depth < 1020 else 1000):
        inner = [inner]
    with pytest.raises(ProtocolError, match=r"window\.features: expected a map, got list"):
        decode_frame(msgpack.packb(window(features=inner)))
