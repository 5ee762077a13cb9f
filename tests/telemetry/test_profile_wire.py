"""The profile upload on the wire (PROTOCOL.md §4.1 ``profile_json``, §5 ``need_profile``): what the codec accepts,
what it refuses and why, and the reply example of PROTOCOL.md byte for byte."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from edge.drift import default_profile
from edge.errors import ProtocolError
from edge.telemetry.protocol import (
    MAX_FRAME_BYTES,
    MAX_PROFILE_BYTES,
    Record,
    Reply,
    decode_frame,
    decode_reply,
    encode_record,
    encode_reply,
)

PROTOCOL_MD = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"


def _hello(**extra: object) -> Record:
    body = {
        "software": "edge test",
        "kernels": "numpy",
        "model": "m@1",
        "profile": default_profile(3).profile_id,
        "window_s": 1.0,
        "features": [{"name": "f", "edges": [0.0, 1.0]}],
        "latency_edges_us": [1.0, 10.0],
        **extra,
    }
    return Record("hello", "dev-1", "b0", 0, 5, 6, body)


def test_hello_carries_the_profile_bytes_unchanged() -> None:
    doc = default_profile(3).to_bytes()
    rec = decode_frame(encode_record(_hello(profile_json=doc)))
    assert rec.body["profile_json"] == doc and type(rec.body["profile_json"]) is bytes
    assert "profile_json" not in decode_frame(encode_record(_hello())).body  # optional


def test_hello_profile_at_the_limit_is_taken_one_byte_more_is_a_limit() -> None:
    assert MAX_PROFILE_BYTES == 524_288 and MAX_PROFILE_BYTES < MAX_FRAME_BYTES - 4096
    ok = encode_record(_hello(profile_json=b"x" * MAX_PROFILE_BYTES))
    assert len(decode_frame(ok).body["profile_json"]) == MAX_PROFILE_BYTES
    big = msgpack.packb(_hello(profile_json=b"x" * (MAX_PROFILE_BYTES + 1)).to_map(), use_bin_type=True)
    expected = r"hello.profile_json: expected 1 byte \(bin\) at least and at most 524288, got str '524289 bytes'"
    with pytest.raises(ProtocolError, match=expected):
        decode_frame(big)


@pytest.mark.parametrize("value", ["{}", b"", 5, None, [1]])
def test_hello_profile_must_be_non_empty_bin(value: object) -> None:
    frame = msgpack.packb(_hello(profile_json=value).to_map(), use_bin_type=True)
    with pytest.raises(ProtocolError, match=r"hello.profile_json: expected 1 byte \(bin\) at least"):
        decode_frame(frame)


def test_reply_need_profile_round_trips_and_is_optional() -> None:
    pid = default_profile(3).profile_id
    assert decode_reply(encode_reply(Reply(need_profile=pid))) == Reply(need_profile=pid)
    plain = encode_reply(Reply())
    assert b"need_profile" not in plain and decode_reply(plain).need_profile == ""
    # a reader that does not know the key still reads the reply (it is an additive key, PROTOCOL.md §7)
    assert set(msgpack.unpackb(encode_reply(Reply(need_profile=pid)))) == {"v", "kind", "acks", "rejected",
                                                                           "need_profile"}  # fmt: skip


@pytest.mark.parametrize("value", ["3F9A0C1B2D4E5F60", "3f9a", "3f9a0c1b2d4e5f6g", 7, None, ["3f9a0c1b2d4e5f60"]])
def test_reply_need_profile_must_be_a_profile_id(value: object) -> None:
    data = msgpack.packb({"v": 1, "kind": "ack", "acks": [], "rejected": [], "need_profile": value})
    with pytest.raises(ProtocolError, match=r"reply\.need_profile: expected a profile id"):
        decode_reply(data)


def test_protocol_md_need_profile_reply_is_what_goes_on_the_wire() -> None:
    doc = PROTOCOL_MD.read_text()
    block = doc.split("asks for the profile of the hello it answers, in one frame:")[1].split("```")[1]
    tokens = []
    for line in block.splitlines():
        for t in line.split():
            if len(t) != 2 or any(ch not in "0123456789abcdef" for ch in t):
                break  # the annotation starts
            tokens.append(t)
    wire = bytes.fromhex(" ".join(tokens))
    assert wire == encode_reply(Reply(need_profile="3f9a0c1b2d4e5f60"))
    assert decode_reply(wire) == Reply(need_profile="3f9a0c1b2d4e5f60")
