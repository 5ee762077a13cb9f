"""The collector's frame readers against the shared validator: the fast accept of window frames (the native kernel
and its twin, ``edge.kernels`` wire_accept) must accept exactly what the validator accepts (valid windows of every
shape, seeded hostile frames, one mutation per rule of PROTOCOL.md). (The scoring digest: test_block_digest.py.)"""

from __future__ import annotations

import os
from typing import Any

import collector_streams as streams
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import corpus

from edge.kernels import implementation
from edge.telemetry.protocol import Record, decode_frame, encode_record


def _native_or_skip() -> Any:
    try:
        return implementation("native")["window_envelope"]
    except ImportError as exc:
        if os.environ.get("EDGE_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"native frame readers not built: {exc}")


@pytest.fixture(scope="module")
def native() -> Any:
    return _native_or_skip()


@pytest.fixture(scope="module")
def twin() -> Any:
    return implementation("numpy")["window_envelope"]


def validator(frame: bytes) -> tuple[str, str, int, int, int] | None:
    """The oracle, independent of the twin's code: decode_frame's verdict, the envelope of a valid window."""
    try:
        rec = decode_frame(frame)
    except Exception:  # the validator's own failures (e.g. RecursionError) count as refusals
        return None
    return (rec.device, rec.boot, rec.seq, rec.t_ns, rec.wall_ns) if rec.kind == "window" else None


def has_repeated_keys(frame: bytes) -> bool:
    """A map with the same key twice (a dict keeps the last; the native reader leaves those to the validator)."""
    seen = []

    def pairs(items: list[tuple[Any, Any]]) -> dict[Any, Any]:
        keys = [k for k, _ in items]
        seen.append(len(set(keys)) != len(keys))
        return dict(items)

    try:
        msgpack.unpackb(frame, raw=False, object_pairs_hook=pairs, strict_map_key=False)
    except Exception:  # undecodable: no keys to compare
        return False
    return any(seen)


def window_map(rng: np.random.Generator, **body: Any) -> dict[str, Any]:
    b = {**streams.window_body(rng), **body}
    return Record("window", "dev-1", "boot-1", 7, -5, 1_763_700_000_000_000_000, b).to_map()


def pack(m: dict[str, Any]) -> bytes:
    return msgpack.packb(m, use_bin_type=True)


# ------------------------------------------------------------------------------------------- fast accept


def test_valid_windows_are_accepted_with_the_validators_envelope(native, twin, rng: np.random.Generator) -> None:
    envelope = native
    for n in (1, 4, 32, 256):
        body = streams.window_body(rng, n_features=n)
        frame = encode_record(Record("window", "dév-✓", "b", 2**63 - 1, -(2**63), 2**63 - 1, body))
        assert envelope(frame) == twin(frame) == validator(frame)
        assert envelope(frame) == ("dév-✓", "b", 2**63 - 1, -(2**63), 2**63 - 1)


def test_other_kinds_and_non_bytes_are_left_to_the_validator(native, twin, rng: np.random.Generator) -> None:
    envelope = native
    event = encode_record(Record("event", "d", "b", 1, 0, 0, {"name": "swap", "fields": {}}))
    for frame in (event, bytearray(pack(window_map(rng))), memoryview(pack(window_map(rng)))):
        assert envelope(frame) is None and twin(frame) is None  # type: ignore[arg-type]


def _mutations(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """One frame per rule of PROTOCOL.md §3/§4.2/§6 that a window can break, plus msgpack-level refusals."""
    base = window_map(rng)
    b = base["body"]
    f0 = next(iter(b["features"]))
    sk = b["features"][f0]
    out: list[tuple[str, dict[str, Any] | bytes]] = [
        ("v=2", {**base, "v": 2}),
        ("v=1.0", {**base, "v": 1.0}),  # a float equal to 1: the validator accepts it, the native reader defers
        ("v=True", {**base, "v": True}),
        ("kind", {**base, "kind": "heartbeat"}),
        ("empty device", {**base, "device": ""}),
        ("long device", {**base, "device": "x" * 257}),
        ("device 256 bytes", {**base, "device": "é" * 128}),
        ("device 257 bytes", {**base, "device": "é" * 128 + "x"}),
        ("bin device", {**base, "device": b"dev"}),
        ("seq 0", {**base, "seq": 0}),
        ("seq 2**63", {**base, "seq": 2**63}),
        ("seq bool", {**base, "seq": True}),
        ("t_ns 2**63", {**base, "t_ns": 2**63}),
        ("wall_ns -1", {**base, "wall_ns": -1}),
        ("no body", {k: v for k, v in base.items() if k != "body"}),
        ("body list", {**base, "body": [1]}),
        ("end = start", {**base, "body": {**b, "end_ns": b["start_ns"]}}),
        ("start float", {**base, "body": {**b, "start_ns": 1.0}}),
        ("model int", {**base, "body": {**b, "model": 3}}),
        ("empty model", {**base, "body": {**b, "model": ""}}),
        ("long profile", {**base, "body": {**b, "profile": "p" * 257}}),
        ("non-hex profile", {**base, "body": {**b, "profile": "0123456789abcdeg"}}),
        ("upper-case profile", {**base, "body": {**b, "profile": "0123456789ABCDEF"}}),
        ("15-digit profile", {**base, "body": {**b, "profile": "0123456789abcde"}}),
        ("empty profile", {**base, "body": {**b, "profile": ""}}),
        ("no counters", {**base, "body": {k: v for k, v in b.items() if k != "counters"}}),
        ("no frames", {**base, "body": {**b, "counters": {"fallbacks": 1}}}),
        ("65 counters", {**base, "body": {**b, "counters": {"frames": 1, **{f"c{i}": 0 for i in range(64)}}}}),
        ("64 counters", {**base, "body": {**b, "counters": {"frames": 1, **{f"c{i}": 0 for i in range(63)}}}}),
        ("counter -1", {**base, "body": {**b, "counters": {"frames": -1}}}),
        ("counter float", {**base, "body": {**b, "counters": {"frames": 1.0}}}),
        ("empty counter name", {**base, "body": {**b, "counters": {"frames": 1, "": 0}}}),
        ("predictions 4096", {**base, "body": {**b, "predictions": [1] * 4096}}),
        ("prediction -1", {**base, "body": {**b, "predictions": [1, -1]}}),
        ("prediction 2**64-1", {**base, "body": {**b, "predictions": [2**64 - 1]}}),
        ("no features", {**base, "body": {**b, "features": {}}}),
        ("257 features", {**base, "body": {**b, "features": {f"f{i}": sk for i in range(257)}}}),
        ("256 features", {**base, "body": {**b, "features": {f"f{i}": sk for i in range(256)}}}),
        ("33 stages", {**base, "body": {**b, "latency": {f"s{i}": sk for i in range(33)}}}),
        ("empty name", {**base, "body": {**b, "features": {"": sk}}}),
        ("2 counts", {**base, "body": {**b, "features": {f0: {**sk, "c": [1, 2]}}}}),
        ("259 counts", {**base, "body": {**b, "features": {f0: {**sk, "c": [1] * 259}}}}),
        ("258 counts", {**base, "body": {**b, "features": {f0: {**sk, "c": [1] * 258}}}}),
        ("count -1", {**base, "body": {**b, "features": {f0: {**sk, "c": [1, -1, 2]}}}}),
        ("count 2**64-1", {**base, "body": {**b, "features": {f0: {**sk, "c": [1, 2**64 - 1, 2]}}}}),
        ("count float", {**base, "body": {**b, "features": {f0: {**sk, "c": [1, 2.0, 2]}}}}),
        ("4 moments", {**base, "body": {**b, "features": {f0: {**sk, "m": [0, 0, 0, 0]}}}}),
        ("bool moment", {**base, "body": {**b, "features": {f0: {**sk, "m": [0, 0, 0, 0, True]}}}}),
        ("int moments", {**base, "body": {**b, "features": {f0: {**sk, "m": [0, -3, 0, 2**64 - 1, 1]}}}}),
        ("inf moments", {**base, "body": {**b, "features": {f0: {**sk, "m": [0, 0.0, 0, np.inf, -np.inf]}}}}),
        ("no m", {**base, "body": {**b, "features": {f0: {"c": sk["c"]}}}}),
        ("sketch list", {**base, "body": {**b, "features": {f0: [1]}}}),
        (
            "extra keys",
            {**base, "x": [None, {"a": b"\x00"}], "body": {**b, "y": 1.5, "features": {f0: {**sk, "z": 1}}}},
        ),
        ("long unknown string", {**base, "x": "y" * 1025}),
        ("unknown string 1024", {**base, "x": "y" * 1024}),
        ("long unknown array", {**base, "x": [0] * 4097}),
        ("big unknown map", {**base, "x": {str(i): 0 for i in range(513)}}),
        ("int map key", msgpack.packb({**base, 1: 2}, use_bin_type=True, strict_types=False)),
        ("bin map key", {**base, b"v": 3}),
        ("ext", {**base, "x": msgpack.ExtType(5, b"ab")}),
        ("trailing", pack(base) + b"\x00"),
        ("truncated", pack(base)[:-1]),
        ("reserved byte", pack({**base, "x": 1})[:-1] + b"\xc1"),
        ("float32 numbers", msgpack.packb(base, use_bin_type=True, use_single_float=True)),
    ]
    raw_name = pack({**base, "body": {**b, "features": {"ZZ": sk}}})
    out += [
        ("invalid utf-8", raw_name.replace(b"\xa2ZZ", b"\xa2\xc3\x28")),
        ("surrogate", raw_name.replace(b"\xa2ZZ", b"\xa3\xed\xa0\x80")),
        ("overlong", raw_name.replace(b"\xa2ZZ", b"\xa2\xc0\xaf")),
        ("beyond U+10FFFF", raw_name.replace(b"\xa2ZZ", b"\xa4\xf4\x90\x80\x80")),
        ("4-byte utf-8", raw_name.replace(b"\xa2ZZ", b"\xa4\xf0\x9f\x98\x80")),
        ("renamed model key", raw_name.replace(b"\xa5model", b"\xa5xodel")),
    ]
    return [(name, m if isinstance(m, bytes) else pack(m)) for name, m in out]


def test_each_rule_gets_the_validators_verdict(native, twin, rng: np.random.Generator) -> None:
    envelope = native
    verdicts = {}
    for name, frame in _mutations(rng):
        expected = validator(frame)
        assert twin(frame) == expected, name
        got = envelope(frame)
        if got is not None or not has_repeated_keys(frame):
            assert got == expected, name
        verdicts[name] = expected is not None
    # the oracle itself: a sample of the rules, so a validator that accepts everything cannot pass
    assert not any(verdicts[k] for k in ("v=2", "seq 0", "259 counts", "65 counters", "invalid utf-8", "ext"))
    assert not any(verdicts[k] for k in ("v=1.0", "v=True"))  # PROTOCOL.md §3: v is an integer (bool is not)
    assert all(verdicts[k] for k in ("258 counts", "64 counters", "int moments", "inf moments", "extra keys"))
    assert not any(verdicts[k] for k in ("non-hex profile", "upper-case profile", "15-digit profile"))
    assert verdicts["empty profile"]
    assert all(verdicts[k] for k in ("device 256 bytes", "4-byte utf-8", "unknown string 1024", "256 features"))
    assert verdicts["float32 numbers"]


def test_a_repeated_key_is_left_to_the_validator(native, twin, rng: np.random.Generator) -> None:
    envelope = native
    frame = pack(window_map(rng))
    twice = frame.replace(b"\xa4boot\xa6boot-1", b"\xa4boot\xa6boot-9", 1)
    twice = b"\x89" + twice[1:] + b"\xa4boot\xa6boot-1"  # the map gets a 9th entry: "boot" again, last wins
    assert has_repeated_keys(twice) and validator(twice) == validator(frame)
    assert envelope(twice) is None and envelope(frame) == validator(frame)
    assert twin(twice) == validator(twice) and twin(frame) == validator(frame)  # the twin reads what a dict keeps


def test_seeded_hostile_corpus_same_verdicts(native, twin, rng: np.random.Generator) -> None:
    envelope = native
    valid = pack(window_map(rng))
    accepted = 0
    for frame in corpus(rng, valid, 6000):
        expected = validator(frame)
        assert twin(frame) == expected, frame[:80]
        got = envelope(frame)
        if got is not None or not has_repeated_keys(frame):
            assert got == expected, frame[:80]
        accepted += expected is not None
    assert 0 < accepted < 1000  # byte flips leave some frames valid; most are refused


def _records(valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Window records within every rule (``valid``), or loosely typed ones that break some."""
    i64 = st.integers(-(2**63), 2**63 - 1)
    u64 = st.integers(0, 2**64 - 1)
    ints = st.integers(-(2**63), 2**64 - 1)
    if valid:
        name, text, count, uint = st.text(min_size=1, max_size=60), st.text(max_size=60), u64, u64
        number = u64 | i64 | st.floats()
        moments, counts = st.lists(number, min_size=5, max_size=5), st.lists(count, min_size=3, max_size=12)
    else:
        name, text, count, uint = st.text(max_size=70), st.text(max_size=70), st.integers(-1, 2**64 - 1), ints
        number = ints | st.floats() | st.booleans() | st.none()
        moments, counts = st.lists(number, min_size=4, max_size=6), st.lists(count, min_size=2, max_size=12)
    sketch = st.fixed_dictionaries({"c": counts, "m": moments})
    hex_id = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
    profile_id = st.just("") | hex_id if valid else text | hex_id  # PROTOCOL.md §8: 16 lowercase hex digits or ""
    if valid:  # moments that can be true (PROTOCOL.md §4.2): finite, 0 <= count <= the finite counts, M2 >= 0
        finite = st.floats(allow_nan=False, allow_infinity=False)

        def possible(c: list[int]) -> st.SearchStrategy[list[Any]]:
            n = sum(c) - c[-1]
            count = st.integers(0, min(n, 2**64 - 1)) | st.floats(0, float(n)).filter(lambda x: x <= n)
            ends = st.floats(allow_nan=False) | u64 | i64
            return st.tuples(count, finite | i64, st.floats(0, allow_infinity=False) | u64, ends, ends).map(list)

        sketch = counts.flatmap(lambda c: st.fixed_dictionaries({"c": st.just(c), "m": possible(c)}))
    window = st.tuples(st.integers(-(2**62), 2**62), st.integers(1 if valid else -2, 2**62)).map(
        lambda t: {"start_ns": t[0], "end_ns": t[0] + t[1]}
    )
    body = st.tuples(
        window,
        st.fixed_dictionaries(
            {
                "model": text,
                "profile": profile_id,
                "features": st.dictionaries(name, sketch, max_size=5),
                "latency": st.dictionaries(name, sketch, max_size=3),
                "predictions": st.lists(count, max_size=5),
                "counters": st.dictionaries(name, uint, max_size=3).map(lambda c: {"frames": 1, **c}),
            },
            optional={"extra": st.none() | st.binary(max_size=4) | st.lists(ints, max_size=3)},
        ),
    ).map(lambda t: {**t[0], **t[1]})
    return st.fixed_dictionaries(
        {
            "v": st.just(1) if valid else st.sampled_from([1, 2]),
            "kind": st.just("window") if valid else st.sampled_from(["window", "event"]),
            "device": name,
            "boot": name,
            "seq": st.integers(1, 2**63 - 1) if valid else st.integers(-1, 2**64 - 1),
            "t_ns": i64 if valid else ints,
            "wall_ns": st.integers(0, 2**63 - 1) if valid else ints,
            "body": body,
        }
    )


def test_hypothesis_windows_same_verdicts(native, twin) -> None:
    envelope = native
    seen = {True: 0, False: 0}

    @settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(_records(valid=True) | _records(valid=False), st.data())
    def one(m: dict[str, Any], data: st.DataObject) -> None:
        frame = pack(m)
        if data.draw(st.integers(0, 3)) == 0:  # a byte flip
            i = data.draw(st.integers(0, len(frame) - 1))
            frame = frame[:i] + bytes([frame[i] ^ data.draw(st.integers(1, 255))]) + frame[i + 1 :]
        expected = validator(frame)
        assert twin(frame) == expected
        got = envelope(frame)
        if got is not None or not has_repeated_keys(frame):
            assert got == expected
        seen[expected is not None] += 1

    one()
    assert seen[True] > 50 and seen[False] > 50  # both verdicts, many times (about 1 in 5 frames is valid)
