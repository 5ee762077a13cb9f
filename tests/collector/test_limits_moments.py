"""Moments that cannot be true (PROTOCOL.md §4.2) are refused at ingest by every reader: the validator rejects them
as ``malformed`` naming the field, the native fast accept and its twin decline them (never accept what the validator
refuses), and a real collector over a real socket rejects them under their key and stores nothing of them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.errors import ProtocolError
from edge.kernels import implementation
from edge.telemetry.protocol import decode_frame

COUNTS = [1, 2, 3, 4, 5]  # 3 edges: underflow, 2 bins, overflow, NaN: 10 finite values, 5 NaN
GOOD = [10, 0.5, 2.0, -1.0, 3.0]
BAD = {
    "nan count": [math.nan, 0.5, 2.0, -1.0, 3.0],
    "inf mean": [10, math.inf, 2.0, -1.0, 3.0],
    "nan M2": [10, 0.5, math.nan, -1.0, 3.0],
    "count 2**64 - 1": [(1 << 64) - 1, 0.5, 2.0, -1.0, 3.0],
    "count over the finite counts": [11, 0.5, 2.0, -1.0, 3.0],
    "float count over the finite counts": [10.5, 0.5, 2.0, -1.0, 3.0],
    "negative count": [-1, 0.5, 2.0, -1.0, 3.0],
    "negative M2": [10, 0.5, -0.25, -1.0, 3.0],
    "nan min": [10, 0.5, 2.0, math.nan, 3.0],
    "nan max (float32)": [10, 0.5, 2.0, -1.0, math.nan],
}
EDGE_CASES_ACCEPTED = {
    "empty sketch": [0, 0, 0, math.inf, -math.inf],
    "count equal to the finite counts": GOOD,
    "count 0 with NaN-only values": [0, 0.0, 0.0, math.inf, -math.inf],
}


def frame(moments: list[Any], seq: int = 1, *, float32: bool = False, counts: list[int] = COUNTS) -> bytes:
    body = {"model": "m@1", "profile": "", "start_ns": 0, "end_ns": 1, "features": {"f": {"c": counts, "m": moments}},
            "latency": {}, "predictions": [], "counters": {"frames": 1}}  # fmt: skip
    rec = {"v": 1, "kind": "window", "device": "d", "boot": "b", "seq": seq, "t_ns": 0, "wall_ns": 0, "body": body}
    return msgpack.packb(rec, use_bin_type=True, use_single_float=float32)


def readers() -> list[Any]:
    out = [implementation("numpy")["window_envelope"]]
    try:
        out.append(implementation("native")["window_envelope"])
    except Exception:  # native kernels not built (EDGE_PUREPYTHON=1 runs): the twin alone
        pass
    return out


@pytest.mark.parametrize("name", sorted(BAD))
def test_impossible_moments_are_refused_by_every_reader(name: str) -> None:
    data = frame(BAD[name], float32=name.endswith("(float32)"))
    with pytest.raises(ProtocolError, match=r"window\.features\.f\.m: expected finite count") as info:
        decode_frame(data)
    assert info.value.code == "malformed"
    assert [r(data) for r in readers()] == [None] * len(readers())


@pytest.mark.parametrize("name", sorted(EDGE_CASES_ACCEPTED))
def test_possible_moments_are_accepted_by_every_reader(name: str) -> None:
    data = frame(EDGE_CASES_ACCEPTED[name])
    assert decode_frame(data).seq == 1
    assert [r(data) for r in readers()] == [("d", "b", 1, 0, 0)] * len(readers())


BIG = (1 << 64) - 1
EXACT_COMPARISONS = [  # (counts, count, accepted): the sum of the finite counts past 2**53 and past 2**64
    ([BIG, 1, 0, 0], BIG, True),  # the sum carries past 2**64
    ([BIG, 1, 0, 0], 2.0**64, True),
    ([BIG, 1, 0, 0], 2.0**64 + 4096, False),  # the next double above 2**64
    ([BIG, 0, 0, 0], 2.0**64, False),  # 2**64 - 1 < 2**64
    ([2**53 + 1, 0, 0, 0], 2**53 + 1, True),  # an integer count compared exactly
    ([2**53, 0, 0, 0], 2**53 + 1, False),
    ([2**53, 0, 0, 0], 2.0**53, True),
    ([3, 0, 0, 0], 2.5, True),
    ([3, 0, 0, 0], 3.5, False),
]


@pytest.mark.parametrize(("counts", "count", "accepted"), EXACT_COMPARISONS)
def test_count_against_the_finite_counts_is_exact_in_every_reader(
    counts: list[int], count: Any, accepted: bool
) -> None:
    data = frame([count, 0.5, 2.0, -1.0, 3.0], counts=counts)
    try:
        decode_frame(data)
        valid = True
    except ProtocolError:
        valid = False
    assert valid is accepted
    expected = ("d", "b", 1, 0, 0) if accepted else None
    assert [r(data) for r in readers()] == [expected] * len(readers())


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "m.db", http=None))
    yield s
    s.close()


def test_a_real_collector_rejects_them_under_their_keys_and_acks_the_rest(collector: CollectorServer) -> None:
    ctx = zmq.Context()
    dev = Device(ctx, collector.endpoint, "moments")
    try:
        bad = [frame(BAD[name], seq=i + 2) for i, name in enumerate(sorted(BAD))]
        dev.send(frame(GOOD, seq=1), *bad)
        rep = dev.reply()
        assert [(r.boot, r.seq, r.code) for r in rep.rejected] == [("b", i + 2, "malformed") for i in range(len(BAD))]
        assert [(a.boot, a.first, a.last) for a in rep.acks] == [("b", 1, 1)]
        assert collector.store.record_count() == 1 and collector.counters["rejects"] == len(BAD)
    finally:
        dev.close()
        ctx.term()
