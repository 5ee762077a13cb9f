"""Hostile input on the ingest path: random, truncated, mutated, deeply nested, wrongly typed and oversized frames
(more than 10 000 in all). The server never crashes, rejects and counts each bad frame, and still acks the good
record sent in the same message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import msgpack
import numpy as np
import pytest
import zmq
from collector_devices import Device
from collector_support import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.collector.server import CollectorServer, CollectorSettings
from edge.telemetry.protocol import MAX_BATCH_RECORDS, MAX_FRAME_BYTES, decode_frame, encode_record


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CollectorServer, zmq.Context]]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "f.db", http=None))
    ctx = zmq.Context()
    yield s, ctx
    ctx.destroy(linger=0)
    s.close()


def exchange(dev: Device, bad: list[bytes], good_body: dict) -> int:
    """Send the hostile frames plus one good window in one message; the good one must be acked. Returns how many
    frames were rejected (a byte flip can leave a record valid: it is then stored and acked like any other)."""
    good = dev.record("window", good_body)
    dev.send(*bad, encode_record(good))
    reply = dev.reply()
    assert reply is not None, "the server did not answer"
    assert good.seq in dev.acked
    assert len(reply.rejected) <= len(bad)
    assert all(r.code in ("malformed", "limit", "version") and r.message for r in reply.rejected)
    return len(reply.rejected)


def accepted_by_validator(frame: bytes) -> bool:
    try:
        rec = decode_frame(frame)
    except Exception:  # the validator's own failures (RecursionError on deep nesting) count as refusals
        return False
    return rec.seq < (1 << 63)


def corpus(rng: np.random.Generator, valid: bytes, n: int) -> list[bytes]:
    """Seeded hostile frames: random bytes, truncations and byte flips of a valid record, deep nesting, wrong
    types in the envelope, huge declared lengths."""
    out: list[bytes] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(rng.bytes(int(rng.integers(0, 300))))
        elif kind == 1:
            out.append(valid[: int(rng.integers(0, len(valid)))])
        elif kind == 2:
            b = bytearray(valid)
            for j in rng.integers(0, len(b), 1 + i % 5):
                b[j] ^= int(rng.integers(1, 256))
            out.append(bytes(b) if bytes(b) != valid else b"\xc1")
        elif kind == 3:
            depth = int(rng.integers(7, 3000))
            out.append(b"\x91" * depth + b"\x00")  # nested one-element arrays
        elif kind == 4:
            m = msgpack.unpackb(valid)
            key = ["v", "kind", "device", "boot", "seq", "t_ns", "wall_ns", "body"][i % 8]
            m[key] = [None, -1, 1.5, "x" * 300, {"a": 1}, [1, 2], 2**64 - 1, b"\x00"][int(rng.integers(0, 8))]
            out.append(msgpack.packb(m, use_bin_type=True))
        else:
            out.append(b"\xdd\xff\xff\xff\xff" + rng.bytes(8))  # array32 declaring 4 billion items
    return out


def test_seeded_hostile_corpus(served, rng: np.random.Generator) -> None:
    server, ctx = served
    dev = Device(ctx, server.endpoint, "fuzz-1")
    valid = encode_record(dev.record("window", streams.window_body(rng)))
    frames = corpus(rng, valid, 9000)
    body = streams.window_body(rng)
    rejected = 0
    for i in range(0, len(frames), MAX_BATCH_RECORDS - 1):
        rejected += exchange(dev, frames[i : i + MAX_BATCH_RECORDS - 1], body)
    # the server rejects exactly what the shared validator refuses (or fails on); a byte flip in a number or a
    # string can leave a valid record, which is stored and acked like any other
    expected = sum(1 for f in frames if not accepted_by_validator(f))
    assert server.counters["rejects"] == rejected == expected > 8000
    # a message of more records than a batch may hold is refused whole, and counted
    dev.send(*[valid] * (MAX_BATCH_RECORDS + 1))
    reply = dev.reply()
    assert reply is not None and reply.acks == () and reply.rejected[0].code == "limit"
    dev.close()


def test_hypothesis_frames(served, rng: np.random.Generator) -> None:
    server, ctx = served
    dev = Device(ctx, server.endpoint, "fuzz-2")
    body = streams.window_body(rng)
    ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
    leaves = st.none() | st.booleans() | ints | st.floats() | st.text(max_size=20) | st.binary(max_size=20)
    values = st.recursive(
        leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)
    )
    envelope = st.fixed_dictionaries(
        {
            "v": st.integers(0, 2),
            "kind": st.sampled_from(["window", "hello", "event", "nope"]),
            "device": st.text(),
            "boot": st.text(),
            "seq": st.integers(-2, 2**64 - 1),
            "t_ns": ints,
            "wall_ns": ints,
            "body": values,
        }
    )
    frames = st.one_of(st.binary(max_size=400), envelope.map(lambda m: msgpack.packb(m, use_bin_type=True)))
    sent = []

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames, min_size=5, max_size=40))
    def one(bad: list[bytes]) -> None:
        sent.append((len(bad), exchange(dev, bad, body)))

    one()
    assert server.counters["rejects"] == sum(r for _, r in sent) and sum(n for n, _ in sent) >= 1000
    dev.close()


def test_oversized_frame_is_cut_by_the_socket_and_the_server_goes_on(served, rng) -> None:
    server, ctx = served
    big = Device(ctx, server.endpoint, "fuzz-big")
    big.send(b"\x00" * (MAX_FRAME_BYTES + 64 * 1024))  # over ZMQ_MAXMSGSIZE: libzmq drops the connection
    good = Device(ctx, server.endpoint, "fuzz-good")
    wait_for(lambda: exchange(good, [], streams.window_body(rng)) or True, what="a good exchange")
    assert server.counters["messages"] == 1 and server.counters["rejects"] == 0
    big.close()
    good.close()


def test_rejection_codes_and_keys(served, rng: np.random.Generator) -> None:
    server, ctx = served
    dev = Device(ctx, server.endpoint, "codes")
    rec = dev.record("window", streams.window_body(rng))
    v2 = msgpack.packb({**rec.to_map(), "v": 2}, use_bin_type=True)
    bad_body = msgpack.packb({**rec.to_map(), "seq": 9, "body": {"model": 1}}, use_bin_type=True)
    too_many = {**rec.body, "predictions": [0] * 4097}
    dev.send(v2, b"\xc1junk", bad_body, msgpack.packb({**rec.to_map(), "seq": 10, "body": too_many}))
    reply = dev.reply()
    assert [(r.boot, r.seq, r.code) for r in reply.rejected] == [
        (dev.boot, 1, "version"),
        ("", 0, "malformed"),
        (dev.boot, 9, "malformed"),
        (dev.boot, 10, "limit"),  # an array over 4096 items in the body: the envelope before it names the record
    ]
    assert reply.acks == () and server.store.record_count() == 0
    dev.close()
