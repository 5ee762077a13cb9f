"""ZeroMQ sensor source (msgpack header + raw frame, conflated to the latest; malformed messages rejected and
counted) and the ZeroMQ PUB decision sink, on real sockets over loopback."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
import zmq

from edge.errors import ConfigError
from edge.loop.decision import Decision
from edge.loop.sensors import SensorSlot
from edge.loop.sinks import ZmqDecisionSink
from edge.loop.zmq_source import ZmqSensorSource, encode_frame


def _wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture
def pub(zmq_ctx):
    sock = zmq_ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(0)


@pytest.fixture
def source(zmq_ctx, pub):
    slots = {"camera": SensorSlot("camera", (4, 6, 3)), "speed": SensorSlot("speed", (2,), np.float32)}
    src = ZmqSensorSource(pub[1], slots, context=zmq_ctx).start()
    yield src
    src.close()


def _send_until_received(pub_sock, src, parts, count_before: int) -> None:
    """PUB/SUB joins asynchronously: resend the first message until the subscriber has it."""
    deadline = time.monotonic() + 20
    while src.received + src.rejected <= count_before:
        assert time.monotonic() < deadline, "subscriber never received"
        pub_sock.send_multipart(parts)
        time.sleep(0.01)


def test_frames_flow_into_slots_with_their_capture_time(pub, source, rng) -> None:
    sock, _ = pub
    frame = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    _send_until_received(sock, source, encode_frame("camera", frame, 123_456), 0)
    cam = source.slots["camera"]
    np.testing.assert_array_equal(cam.latest(), frame)
    assert cam.capture_ns == 123_456
    speed = np.array([1.5, -0.25], np.float32)
    sock.send_multipart(encode_frame("speed", speed, 777))
    _wait_for(lambda: source.slots["speed"].seq >= 1)
    np.testing.assert_array_equal(source.slots["speed"].latest(), speed)
    assert source.slots["speed"].capture_ns == 777 and source.rejected == 0


def test_malformed_messages_are_rejected_and_counted_and_good_ones_keep_flowing(pub, source, rng) -> None:
    sock, _ = pub
    good = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    _send_until_received(sock, source, encode_frame("camera", good, 1), 0)
    base_ok = source.received
    header = {"sensor": "camera", "capture_ns": 2, "dtype": "uint8", "shape": [4, 6, 3]}
    bad = [
        ([b"just one part"], "expected 2 parts"),
        ([b"\xc1", good.tobytes()], "msgpack header"),
        ([msgpack.packb([1, 2]), good.tobytes()], "msgpack map"),
        ([msgpack.packb({**header, "sensor": "lidar"}), good.tobytes()], "expected sensor in ['camera', 'speed']"),
        ([msgpack.packb({**header, "dtype": "float32"}), good.tobytes()], "expected dtype 'uint8', got 'float32'"),
        ([msgpack.packb({**header, "shape": [6, 4, 3]}), good.tobytes()], "expected shape [4, 6, 3], got [6, 4, 3]"),
        ([msgpack.packb(header), good.tobytes()[:-1]], "expected 72 bytes of data, got 71"),
        ([msgpack.packb({**header, "capture_ns": -5}), good.tobytes()], "capture_ns an integer >= 0, got -5"),
    ]
    for n, (parts, message) in enumerate(bad, start=1):
        sock.send_multipart(parts)
        _wait_for(lambda n=n: source.rejected == n)
        assert message in source.last_error
    later = good[::-1].copy()
    sock.send_multipart(encode_frame("camera", later, 99))
    _wait_for(lambda: source.received == base_ok + 1)
    np.testing.assert_array_equal(source.slots["camera"].latest(), later)
    assert source.slots["camera"].capture_ns == 99


def test_a_burst_is_conflated_to_the_latest_value(pub, source, rng) -> None:
    sock, _ = pub
    _send_until_received(sock, source, encode_frame("speed", np.zeros(2, np.float32), 0), 0)
    for t in range(1, 201):
        sock.send_multipart(encode_frame("speed", np.full(2, t, np.float32), t))
    _wait_for(lambda: source.slots["speed"].latest() is not None and source.slots["speed"].capture_ns == 200)
    assert source.slots["speed"].latest().tolist() == [200.0, 200.0]


def test_unusable_endpoint_is_a_config_error(zmq_ctx) -> None:
    src = ZmqSensorSource("nonsense://x", {"camera": SensorSlot("camera", (2, 2, 3))}, context=zmq_ctx)
    with pytest.raises(ConfigError, match="cannot open 'nonsense://x'"):
        src.start()
    src.close()


def test_decisions_are_published_as_msgpack(zmq_ctx) -> None:
    sink = ZmqDecisionSink("tcp://127.0.0.1:*", context=zmq_ctx)
    sub = zmq_ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sink.endpoint)
    try:
        d = Decision(2)
        d.seq, d.tick_ns, d.action, d.label, d.confidence = 7, 70_000_000, 3, "left", 0.75
        d.command[:] = [0.5, -1.0]
        d.stage_us[:] = [1, 2, 3, 4, 5, 15]
        got = None
        deadline = time.monotonic() + 20
        while got is None:  # the subscription joins asynchronously
            assert time.monotonic() < deadline
            sink.deliver(d)
            if sub.poll(20):
                got = msgpack.unpackb(sub.recv())
        assert got == {
            "v": 1,
            "seq": 7,
            "tick_ns": 70_000_000,
            "action": 3,
            "label": "left",
            "command": [0.5, -1.0],
            "confidence": 0.75,
            "health": "OK",
            "flags": 0,
            "fallback": False,
            "source": "loop",
            "stage_us": [1.0, 2.0, 3.0, 4.0, 5.0, 15.0],
        }
    finally:
        sub.close(0)
        sink.close()
