"""``source = "ros2"``: a ROS 2 topic (``sensor_msgs/Image``, ``CompressedImage`` or ``Imu``) feeds a SensorSlot.

The subscription runs on its own reader thread: a DDS reader with ROS 2's sensor-data QoS (best effort, keep last
5, volatile) on ``rt/<topic>``, a wait set woken by new data (or every ``poll_ms`` to notice a stop), ``take`` of
what is queued, and only the newest sample is converted and pushed (older ones count as ``dropped``). The loop
thread never touches DDS.

Conversions (into the slot's shape, uint8, in the slot's channel order, "RGB" unless the sensor says "BGR"):

* ``Image``: encodings ``rgb8``, ``bgr8`` (3 channels) and ``mono8`` (copied to every channel of an (H, W, 3) slot,
  or as is into (H, W) / (H, W, 1)); rows may be padded (``step`` > width × channels). Any other encoding, a size
  other than the slot's, or too few bytes is rejected with the reason (counted, the first few logged).
* ``CompressedImage``: JPEG or PNG decoded with Pillow (``pip install edge[ros2]``); a format other than jpeg/png
  (e.g. ``compressedDepth``) is rejected. Pillow rather than PyAV: one call decodes one still image and it is a
  small wheel already in the dev extra (matplotlib's); PyAV is for streams (``source = "video"``).
* ``Imu``: a float slot of shape (10,) = orientation x, y, z, w, angular velocity x, y, z (rad/s), linear
  acceleration x, y, z (m/s²), or (6,) = angular velocity then linear acceleration.

Timestamps (``stamp = "capture"``, the default): the message's ``header.stamp`` is ROS time, the publisher's
``CLOCK_REALTIME`` (unless it runs on simulated time). The loop's clock is ``CLOCK_MONOTONIC``. On arrival the reader
reads both clocks and maps the stamp by the message's age: ``capture_ns = monotonic_now - (realtime_now - stamp)``.
A zero stamp (unset) or one in the future (clocks of two hosts disagreeing) falls back to the arrival time and is
counted in :attr:`Ros2Source.restamped`. ``stamp = "receive"`` always uses the arrival time. Simulated time
(``use_sim_time``) is not supported: its stamps are not wall-clock times and would all look stale.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from cyclonedds.core import DDSException, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.sub import DataReader
from cyclonedds.util import duration

from edge.errors import ConfigError, ProtocolError
from edge.io.ros2_dds import participant, ros2_topic, sensor_data_qos
from edge.io.ros2_msgs import CompressedImage, Image, Imu
from edge.io.source import SourceThread
from edge.loop.sensors import SensorSlot

__all__ = ["KINDS", "Ros2Source", "decode_compressed", "image_view", "imu_values", "stamp_ns"]

KINDS = {"image": Image, "compressed_image": CompressedImage, "imu": Imu}
_TAKE = 16  # samples taken per wake-up (the reader keeps the last 5 anyway)


def stamp_ns(msg: Any) -> int:
    """``header.stamp`` in ns (ROS time)."""
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


def image_view(msg: Image, shape: tuple[int, ...], order: str = "RGB") -> np.ndarray:
    """A view of ``msg.data`` with ``shape`` (H, W, 3) / (H, W, 1) / (H, W) in channel ``order``, uint8; raises
    :class:`ProtocolError` saying what was expected and what arrived."""
    h, w = shape[0], shape[1]
    channels = shape[2] if len(shape) == 3 else 1
    enc = msg.encoding
    per_pixel = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(enc)
    if per_pixel is None:
        raise ProtocolError(f"Image: expected encoding rgb8, bgr8 or mono8, got {enc!r}")
    if (msg.height, msg.width) != (h, w):
        raise ProtocolError(f"Image: expected {w}x{h} (width x height), got {msg.width}x{msg.height}")
    if per_pixel == 3 and channels != 3:
        raise ProtocolError(f"Image: expected mono8 for a {channels}-channel sensor, got {enc!r}")
    row = w * per_pixel
    if msg.step < row:
        raise ProtocolError(f"Image: expected step >= {row} bytes for {w} {enc} pixels, got {msg.step}")
    if len(msg.data) < msg.step * h:
        raise ProtocolError(f"Image: expected {msg.step * h} bytes of data (step x height), got {len(msg.data)}")
    rows = np.frombuffer(msg.data, np.uint8, count=msg.step * h).reshape(h, msg.step)[:, :row]
    if per_pixel == 1:
        mono = rows.reshape(h, w, 1)
        return np.broadcast_to(mono, shape) if channels == 3 else mono.reshape(shape)
    pixels = rows.reshape(h, w, 3)
    return pixels if enc[:3] == order.lower() else pixels[:, :, ::-1]


def decode_compressed(msg: CompressedImage, shape: tuple[int, ...], order: str = "RGB") -> np.ndarray:
    """Decode a JPEG/PNG ``msg`` (Pillow) into an array of ``shape`` in channel ``order``; raises
    :class:`ProtocolError` for another format, undecodable data or another size."""
    fmt = msg.format.lower()
    if "jpeg" not in fmt and "jpg" not in fmt and "png" not in fmt:
        raise ProtocolError(f"CompressedImage: expected format jpeg or png, got {msg.format!r}")
    from PIL import Image as PILImage  # checked at construction

    try:
        with PILImage.open(io.BytesIO(msg.data)) as img:
            mode = "RGB" if len(shape) == 3 and shape[2] == 3 else "L"
            pixels = np.asarray(img.convert(mode))
    except Exception as exc:
        raise ProtocolError(f"CompressedImage ({msg.format}): undecodable data ({exc})") from None
    if pixels.shape[:2] != shape[:2]:
        raise ProtocolError(
            f"CompressedImage: expected {shape[1]}x{shape[0]} (width x height), got {pixels.shape[1]}x{pixels.shape[0]}"
        )
    if pixels.ndim == 3 and order == "BGR":
        pixels = pixels[:, :, ::-1]
    return pixels.reshape(shape)


def imu_values(msg: Imu, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` ((10,): orientation xyzw, angular velocity, linear acceleration; or (6,): the last two)."""
    o, g, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    vals = (g.x, g.y, g.z, a.x, a.y, a.z)
    if out.shape[0] == 10:
        out[:4] = (o.x, o.y, o.z, o.w)
        out[4:] = vals
    else:
        out[:] = vals
    return out


def _check_slot(name: str, kind: str, slot: SensorSlot, order: str) -> None:
    key = f"sensors.{name}"
    if kind not in KINDS:
        raise ConfigError(f"{key}.type: expected one of {sorted(KINDS)}, got {kind!r}")
    if kind == "imu":
        if slot.shape not in ((10,), (6,)) or slot.dtype.kind != "f":
            raise ConfigError(
                f"{key}: expected shape [10] or [6] and a float dtype for type 'imu', "
                f"got shape {list(slot.shape)} dtype {slot.dtype.name}"
            )
        return
    image_shape = len(slot.shape) == 2 or (len(slot.shape) == 3 and slot.shape[2] in (1, 3))
    if slot.dtype != np.uint8 or not image_shape:
        raise ConfigError(
            f"{key}: expected shape [H, W, 3], [H, W, 1] or [H, W] and dtype uint8 for type {kind!r}, "
            f"got shape {list(slot.shape)} dtype {slot.dtype.name}"
        )
    if order not in ("RGB", "BGR"):
        raise ConfigError(f"{key}.channel_order: expected 'RGB' or 'BGR' for a ros2 image, got {order!r}")
    if kind == "compressed_image":
        try:
            import PIL.Image  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{key}: type 'compressed_image' decodes JPEG/PNG with Pillow, which is not installed; "
                "install it with: pip install 'edge[ros2]'"
            ) from None


class Ros2Source(SourceThread):
    """Subscribes ROS 2 topic ``topic`` (``kind``: "image" | "compressed_image" | "imu") and pushes into ``slot``.

    ``domain_id``: the DDS domain (``None``: ``ROS_DOMAIN_ID``, else 0); ``config``: Cyclone DDS XML for it
    (``None``: ``CYCLONEDDS_URI``); ``stamp``: "capture" (header stamp mapped to the monotonic clock) or "receive".
    :attr:`stats` (:class:`~edge.io.source.SourceStats`): ``delivered``, ``dropped`` (superseded by a newer sample
    in the same wake-up), ``errors`` / ``last_error`` (rejected samples).
    """

    def __init__(
        self,
        name: str,
        topic: str,
        kind: str,
        slot: SensorSlot,
        *,
        domain_id: int | None = None,
        config: str | None = None,
        stamp: str = "capture",
        channel_order: str = "RGB",
        poll_ms: int = 50,
    ) -> None:
        _check_slot(slot.name, kind, slot, channel_order)
        if stamp not in ("capture", "receive"):
            raise ConfigError(f"sensors.{slot.name}.stamp: expected 'capture' or 'receive', got {stamp!r}")
        super().__init__(f"ros2 {name!r} ({topic}, {kind})")
        self.topic, self.kind, self.slot = topic, kind, slot
        self.stamp, self.order, self.poll_ms = stamp, channel_order, poll_ms
        self.domain_id, self.config = domain_id, config
        self.restamped = 0
        self._imu = np.zeros(slot.shape, np.float64) if kind == "imu" else None
        self._dds: tuple[Any, ...] = ()

    def _open(self) -> None:
        """Create the DDS reader on ``rt/<topic>`` (does not wait for a publisher)."""
        dp, domain = participant(self.domain_id, self.config)
        topic = ros2_topic(dp, self.topic, KINDS[self.kind])
        try:
            reader = DataReader(dp, topic, qos=sensor_data_qos())
        except DDSException as exc:
            raise ConfigError(f"{self.name}: cannot subscribe: {exc}") from exc
        cond = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        waitset = WaitSet(dp)
        waitset.attach(cond)
        self._dds = (domain, dp, topic, reader, cond, waitset)

    @property
    def reader(self) -> DataReader:
        """The DDS reader (tests wait on its matched publications)."""
        return self._dds[3]

    def _run(self) -> None:
        _, _, _, reader, cond, waitset = self._dds
        timeout = duration(milliseconds=self.poll_ms)
        while not self._stopping.is_set():
            waitset.wait(timeout)
            try:
                samples = reader.take(_TAKE, condition=cond)
            except Exception as exc:  # an undecodable sample: count it, keep reading
                self.error(f"undecodable sample: {exc}")
                continue
            if not samples:
                continue
            self.stats.dropped += len(samples) - 1
            self._deliver(samples[-1])

    def _deliver(self, msg: Any) -> None:
        mono, real = time.monotonic_ns(), time.time_ns()
        try:
            if self.kind == "image":
                value = image_view(msg, self.slot.shape, self.order)
            elif self.kind == "compressed_image":
                value = decode_compressed(msg, self.slot.shape, self.order)
            else:
                value = imu_values(msg, self._imu)
        except ProtocolError as exc:
            self.error(f"rejected: {exc}")
            return
        capture = mono
        if self.stamp == "capture":
            stamp = stamp_ns(msg)
            if stamp == 0 or stamp > real:
                self.restamped += 1
            else:
                capture = mono - (real - stamp)
        self.slot.push(value, capture)
        if self.tee is not None:  # the recorder's copy, here rather than on the loop thread
            self.tee(value, capture)
        self.stats.delivered += 1

    def _release(self) -> None:
        self._dds = ()
