"""``source = "ros2"``: conversions of Image / CompressedImage / Imu, and a real DDS peer process publishing to it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image as PILImage
from ros2_harness import Peer, unique_domain, wait_until

from edge.errors import ConfigError, ProtocolError
from edge.io.ros2_dds import loopback_config
from edge.io.ros2_msgs import CompressedImage, Header, Image, Imu, Time
from edge.io.ros2_source import Ros2Source, decode_compressed, image_view, imu_values, stamp_ns
from edge.loop.sensors import SensorSlot

H, W = 6, 5


def pattern(height: int, step: int) -> np.ndarray:
    """What the peer sends: ``arange(step * height) % 251``."""
    return (np.arange(step * height) % 251).astype(np.uint8)


def image(encoding: str, step: int, height: int = H, width: int = W) -> Image:
    return Image(height=height, width=width, encoding=encoding, step=step, data=pattern(height, step).tobytes())


# ------------------------------------------------------------------------------------------- conversions


def test_rgb8_and_bgr8_land_in_the_slots_channel_order() -> None:
    rgb = pattern(H, W * 3).reshape(H, W, 3)
    assert np.array_equal(image_view(image("rgb8", W * 3), (H, W, 3)), rgb)
    assert np.array_equal(image_view(image("bgr8", W * 3), (H, W, 3)), rgb[:, :, ::-1])
    assert np.array_equal(image_view(image("bgr8", W * 3), (H, W, 3), "BGR"), rgb)


def test_padded_rows_are_skipped() -> None:
    step = W * 3 + 4
    rows = pattern(H, step).reshape(H, step)
    assert np.array_equal(image_view(image("rgb8", step), (H, W, 3)), rows[:, : W * 3].reshape(H, W, 3))


def test_mono8_fills_every_channel_or_a_mono_slot() -> None:
    mono = pattern(H, W).reshape(H, W)
    three = image_view(image("mono8", W), (H, W, 3))
    assert three.shape == (H, W, 3) and all(np.array_equal(three[:, :, c], mono) for c in range(3))
    assert np.array_equal(image_view(image("mono8", W), (H, W)), mono)


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (image("yuv422", W * 2), "expected encoding rgb8, bgr8 or mono8, got 'yuv422'"),
        (image("rgb8", W * 3, height=H + 1), f"expected {W}x{H} .width x height., got {W}x{H + 1}"),
        (image("rgb8", W * 3 - 1), f"expected step >= {W * 3} bytes"),
        (Image(height=H, width=W, encoding="rgb8", step=W * 3, data=bytes(10)), "bytes of data"),
    ],
)
def test_bad_images_are_refused_with_the_reason(msg: Image, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        image_view(msg, (H, W, 3))


def test_rgb8_into_a_mono_slot_is_refused() -> None:
    with pytest.raises(ProtocolError, match="expected mono8 for a 1-channel sensor"):
        image_view(image("rgb8", W * 3), (H, W))


@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8"])
def test_compressed_png_decodes_exactly(fmt: str) -> None:
    rgb = pattern(H, W * 3).reshape(H, W, 3)
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    msg = CompressedImage(format=fmt, data=buf.getvalue())
    assert np.array_equal(decode_compressed(msg, (H, W, 3)), rgb)
    assert np.array_equal(decode_compressed(msg, (H, W, 3), "BGR"), rgb[:, :, ::-1])


def test_compressed_jpeg_decodes_close() -> None:
    rgb = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="JPEG", quality=95)
    out = decode_compressed(CompressedImage(format="jpeg", data=buf.getvalue()), (16, 16, 3))
    assert np.abs(out.astype(int) - rgb).max() <= 4


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (CompressedImage(format="16UC1; compressedDepth", data=b"x"), "expected format jpeg or png"),
        (CompressedImage(format="jpeg", data=b"\0not a jpeg"), "undecodable data"),
    ],
)
def test_bad_compressed_images_are_refused(msg: CompressedImage, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_compressed(msg, (H, W, 3))


def test_imu_fields_in_order() -> None:
    msg = Imu()
    msg.orientation.x, msg.orientation.w = 0.5, 0.75
    msg.angular_velocity.z, msg.linear_acceleration.x, msg.linear_acceleration.z = 0.25, 1.5, -9.81
    ten, six = imu_values(msg, np.zeros(10)), imu_values(msg, np.zeros(6))
    assert ten.tolist() == [0.5, 0, 0, 0.75, 0, 0, 0.25, 1.5, 0, -9.81]
    assert six.tolist() == ten[4:].tolist()


@pytest.mark.parametrize(
    ("kind", "slot", "match"),
    [
        ("image", SensorSlot("cam", (H, W, 3), np.float32), "dtype uint8 for type 'image'"),
        ("image", SensorSlot("cam", (H, W, 4)), "expected shape .H, W, 3."),
        ("imu", SensorSlot("imu", (9,), np.float32), "expected shape .10. or .6. and a float dtype"),
        ("lidar", SensorSlot("cam", (H, W, 3)), "type: expected one of"),
    ],
)
def test_a_slot_that_cannot_take_the_type_is_a_config_error(kind: str, slot: SensorSlot, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Ros2Source("s", "/t", kind, slot, domain_id=0)


# ------------------------------------------------------------------------------------------- over DDS


@pytest.fixture
def domain() -> int:
    return unique_domain()


@pytest.fixture
def peer(domain: int) -> Iterator[Peer]:
    p = Peer(domain)
    yield p
    p.close()


def _source(domain: int, topic: str, kind: str, slot: SensorSlot, **kw) -> Ros2Source:
    src = Ros2Source(slot.name, topic, kind, slot, domain_id=domain, config=loopback_config(domain), **kw)
    src.start()
    return src


@pytest.mark.parametrize("reliable", [True, False], ids=["reliable-publisher", "best-effort-publisher"])
def test_images_from_a_peer_reach_the_slot_with_the_header_stamp(domain: int, peer: Peer, reliable: bool) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = _source(domain, "/camera/image_raw", "image", slot)
    try:
        peer.request("writer", topic="/camera/image_raw", type="image", reliable=reliable)
        peer.wait_matched("/camera/image_raw")
        wait_until(lambda: src.reader.get_matched_publications(), "our reader to match the peer's writer")
        before = time.monotonic_ns()
        for seq in range(1, 4):  # best effort may lose one; keep sending until one lands
            peer.request("image", topic="/camera/image_raw", height=H, width=W, encoding="bgr8", step=W * 3, age_ms=200)
            try:
                wait_until(lambda: slot.seq >= 1, "an image in the slot", timeout=5.0 if seq < 3 else 20.0)
                break
            except AssertionError:
                if seq == 3:
                    raise
        value = slot.latest()
        assert np.array_equal(value, pattern(H, W * 3).reshape(H, W, 3)[:, :, ::-1])
        # stamped 200 ms before it was sent: the capture time is ~200 ms before it arrived, on the monotonic clock
        assert before - 250_000_000 < slot.capture_ns < before - 200_000_000 + 2_000_000_000
        assert slot.capture_ns < time.monotonic_ns() - 150_000_000
        assert src.stats.errors == 0 and src.stats.delivered >= 1 and src.restamped == 0
    finally:
        src.close()


def test_bad_messages_are_counted_and_good_ones_keep_flowing(domain: int, peer: Peer) -> None:
    slot = SensorSlot("camera", (H, W, 3))
    src = _source(domain, "/cam", "image", slot, stamp="receive")
    try:
        peer.request("writer", topic="/cam", type="image", reliable=True)
        peer.wait_matched("/cam")
        wait_until(lambda: src.reader.get_matched_publications(), "our reader to match the peer's writer")
        peer.request("image", topic="/cam", height=H, width=W, encoding="yuv422", step=W * 2, age_ms=None)
        wait_until(lambda: src.stats.errors >= 1, "the bad encoding to be counted")
        assert "expected encoding rgb8, bgr8 or mono8, got 'yuv422'" in src.stats.last_error
        assert slot.seq == 0
        peer.request("image", topic="/cam", height=H, width=W, encoding="rgb8", step=W * 3, age_ms=None)
        wait_until(lambda: slot.seq == 1, "the good image after the bad one")
        assert src.running
    finally:
        src.close()
    assert not src.running


def test_compressed_images_and_imu_from_a_peer(domain: int, peer: Peer) -> None:
    cam = SensorSlot("camera", (H, W, 3))
    imu = SensorSlot("imu", (10,), np.float64)
    srcs = [_source(domain, "/camera/compressed", "compressed_image", cam), _source(domain, "/imu", "imu", imu)]
    try:
        peer.request("writer", topic="/camera/compressed", type="compressed_image", reliable=True)
        peer.request("writer", topic="/imu", type="imu", reliable=True)
        for topic, src in zip(("/camera/compressed", "/imu"), srcs, strict=True):
            peer.wait_matched(topic)
            wait_until(lambda s=src: s.reader.get_matched_publications(), f"our reader on {topic} to match")
        peer.request("compressed", topic="/camera/compressed", format="png", height=H, width=W, age_ms=None)
        values = [0.0, 0.0, 0.6, 0.8, 0.1, 0.2, 0.3, 1.0, 2.0, 9.81]
        peer.request("imu", topic="/imu", values=values, age_ms=5)
        wait_until(lambda: cam.seq == 1 and imu.seq == 1, "a decoded PNG and an IMU sample")
        assert np.array_equal(cam.latest(), pattern(H, W * 3).reshape(H, W, 3))
        assert srcs[0].restamped == 1  # the PNG had no stamp: stamped on arrival
        assert imu.latest().tolist() == values
    finally:
        for s in srcs:
            s.close()


def test_header_stamp_helpers() -> None:
    msg = Image(header=Header(stamp=Time(sec=3, nanosec=5)))
    assert stamp_ns(msg) == 3_000_000_005
