"""Video sources: a file (mp4/mkv/avi/... through PyAV, FFmpeg inside the wheel), an image folder (PNG/JPEG, sorted
by name) decoded on the source's own thread into a :class:`~edge.loop.sensors.SensorSlot`.

Every frame is converted (and scaled, by FFmpeg's swscale) to the slot's ``(H, W, 3)`` uint8 shape in the slot's
channel order on the source thread; :meth:`SensorSlot.push` copies it into the slot's preallocated buffer, so the
loop thread neither decodes nor allocates.

Capture timestamps are on the loop's clock (``clock.now_ns()``):

* ``rate="native"`` (files, folders): frame ``i`` is stamped ``t0 + (pts_i - pts_0)`` (ns; ``t0``: the clock when
  the source started, plus one clip duration per completed ``loop``) and pushed when the clock reaches that stamp,
  so the file plays at its own rate; a decoder that falls behind delivers late frames with their true stamps (the
  slot's staleness check sees them);
* ``rate="as_fast_as_loop"``: the next frame is pushed as soon as the loop has read the previous one (the slot's
  ``capture_ns`` equals the last pushed stamp), stamped with the clock at push time; the stream's own time of the
  latest frame is in :attr:`VideoSource.media_ns`;

``drop_probability`` drops decoded frames at random (``random.Random(seed)``: the same seed drops the same frames)
for stress tests; drops are counted in ``stats.dropped``. A missing, unreadable or empty input raises
:class:`~edge.errors.ConfigError` naming it at :meth:`~edge.io.source.SourceThread.start`; a decode error later
(a truncated file) is counted in ``stats.errors`` and ends the stream (or restarts it with ``loop``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.io.source import SourceThread
from edge.loop.clock import Clock, MonotonicClock
from edge.loop.sensors import SensorSlot

__all__ = ["IMAGE_SUFFIXES", "RATES", "VideoSource"]

RATES = ("native", "as_fast_as_loop")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_POLL_S = 0.0005  # how often an as_fast_as_loop source looks whether the loop has read its frame


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # the runtime extra
        raise ConfigError(f"video sources need PyAV: pip install 'edge[video]' ({exc})") from exc
    return av


def _pixel_format(slot: SensorSlot, order: str, what: str) -> str:
    """The FFmpeg pixel format that gives the slot's layout, or ConfigError."""
    if slot.dtype != np.uint8 or len(slot.shape) != 3 or slot.shape[2] != 3:
        raise ConfigError(
            f"{what}: expected a uint8 (H, W, 3) sensor shape for decoded video, got {slot.dtype.name} {slot.shape}"
        )
    if order.upper() not in ("RGB", "BGR"):
        raise ConfigError(f"{what}.channel_order: expected 'RGB' or 'BGR' for video, got {order!r}")
    return "rgb24" if order.upper() == "RGB" else "bgr24"


class _Decoded(SourceThread):
    """What files, folders and cameras share: conversion to the slot's layout, drops, the push."""

    def __init__(
        self,
        name: str,
        slot: SensorSlot,
        *,
        clock: Clock | None,
        channel_order: str,
        drop_probability: float,
        seed: int,
    ) -> None:
        super().__init__(name)
        if not 0.0 <= drop_probability < 1.0:
            raise ConfigError(f"{name}.drop_probability: expected a number in [0, 1), got {drop_probability!r}")
        self.slot = slot
        self.clock = clock or MonotonicClock()
        self._format = _pixel_format(slot, channel_order, name)
        self._h, self._w = slot.shape[0], slot.shape[1]
        self._drop_p = drop_probability
        self._rng = random.Random(seed)
        self.media_ns = 0  # stream time of the last pushed frame (ns from the first frame of the stream)
        self.last_capture_ns = -1
        self.on_end: Callable[[], None] | None = None  # called on the source thread when a finite input has ended

    def _convert(self, frame: Any) -> np.ndarray:
        if frame.width == self._w and frame.height == self._h:
            # no scaling: conversion only, on this thread (threads=1). swscale's default slice threading costs more
            # than it saves at 640x480 here (bench_io.py: ~0.55x the time of PyAV's default to_ndarray), and the
            # converted frame stays in this core's cache for the slot copy that follows
            return frame.to_ndarray(format=self._format, threads=1)
        return frame.to_ndarray(format=self._format, width=self._w, height=self._h)

    def _offer(self, frame: Any, capture_ns: int) -> bool:
        """Convert and push one decoded frame unless it is dropped; True when pushed."""
        if self._drop_p and self._rng.random() < self._drop_p:
            self.stats.dropped += 1
            return False
        value = self._convert(frame)
        self.slot.push(value, capture_ns)
        if self.tee is not None:  # the recorder's copy, here rather than on the loop thread
            self.tee(value, capture_ns)
        self.last_capture_ns = capture_ns
        self.stats.delivered += 1
        return True

    def _consumed(self) -> bool:
        """True once the loop has read the last pushed value (``latest()`` sets the slot's ``capture_ns``)."""
        return self.last_capture_ns < 0 or self.slot.capture_ns >= self.last_capture_ns

    def _wait_consumed(self) -> bool:
        while not self._consumed():
            if self._stopping.wait(_POLL_S):
                return False
        return True

    def _ended(self) -> None:
        if self.on_end is not None:
            self.on_end()


class VideoSource(_Decoded):
    """Plays ``path`` (a video file or a folder of PNG/JPEG images) into ``slot``; see the module docstring.

    ``fps``: the rate of an image folder (frames per second; ignored for files, which carry their own
    timestamps). ``loop``: start over at the end (stamps keep increasing). ``on_end`` (attribute): called when a
    non-looping input has been played to the end (and, with ``as_fast_as_loop``, its last frame read).
    """

    def __init__(
        self,
        slot: SensorSlot,
        path: str | Path,
        *,
        clock: Clock | None = None,
        rate: str = "native",
        loop: bool = False,
        fps: float = 30.0,
        channel_order: str = "RGB",
        drop_probability: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.path = Path(path)
        name = f"video source {slot.name!r} ({self.path})"
        super().__init__(
            name, slot, clock=clock, channel_order=channel_order, drop_probability=drop_probability, seed=seed
        )
        if rate not in RATES:
            raise ConfigError(f"{name}.rate: expected one of {list(RATES)}, got {rate!r}")
        if fps <= 0:
            raise ConfigError(f"{name}.fps: expected a number > 0, got {fps!r}")
        self.rate, self.loop, self.fps = rate, loop, float(fps)
        self.loops = 0  # completed passes through the input
        self._images: list[Path] | None = None
        self._container: Any = None

    # ------------------------------------------------------------------------------------------ opening

    def _open(self) -> None:
        if not self.path.exists():
            raise ConfigError(f"{self.name}: expected a video file or an image folder, got {self.path} (not found)")
        if self.path.is_dir():
            images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise ConfigError(f"{self.name}: expected PNG/JPEG images in the folder, found none")
            self._images = images
            self._decode_image(images[0])  # an unreadable first image fails here, at start
            return
        self._container = self._open_file()
        try:
            next(self._decode_file())
        except StopIteration:
            self._release()
            raise ConfigError(f"{self.name}: expected at least one video frame, the file has none") from None
        except ConfigError:
            self._release()
            raise
        self._container.seek(0)

    def _open_file(self) -> Any:
        av = _av()
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise ConfigError(f"{self.name}: expected a readable video file, got an error: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise ConfigError(f"{self.name}: expected a video stream, the file has none")
        container.streams.video[0].thread_type = "AUTO"
        return container

    def _decode_file(self) -> Iterator[tuple[int, Any]]:
        """(pts in ns, frame) of every frame of the open file; ConfigError on a decode error."""
        av = _av()
        stream = self._container.streams.video[0]
        tb = stream.time_base
        try:
            for frame in self._container.decode(stream):
                pts = frame.pts if frame.pts is not None else 0
                yield int(pts * tb.numerator * 1_000_000_000 // tb.denominator), frame
        except (av.FFmpegError, OSError) as exc:
            raise ConfigError(f"{self.name}: expected decodable video, got an error: {exc}") from exc

    def _decode_image(self, path: Path) -> Any:
        av = _av()
        try:
            with av.open(str(path)) as c:
                return next(c.decode(video=0))
        except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
            raise ConfigError(f"{self.name}: expected a readable PNG/JPEG image, got {path.name}: {exc}") from exc

    def _frames(self) -> Iterator[tuple[int, Any]]:
        """(stream time in ns from the first frame, frame) of one pass through the input."""
        if self._images is not None:
            period = 1e9 / self.fps
            for i, p in enumerate(self._images):
                yield round(i * period), self._decode_image(p)
            return
        first = None
        for pts, frame in self._decode_file():
            first = pts if first is None else first
            yield pts - first, frame

    # ------------------------------------------------------------------------------------------ playing

    def _run(self) -> None:
        t0 = self.clock.now_ns()
        while not self._stopping.is_set():
            last, period = self._play_once(t0)
            if self._stopping.is_set():
                return
            self.loops += 1
            if not self.loop:
                if self.rate == "as_fast_as_loop":
                    self._wait_consumed()
                else:
                    self._stopping.wait(period / 1e9)  # the last frame gets its frame time
                if not self._stopping.is_set():
                    self._ended()
                return
            t0 += last + period
            if self._container is not None:
                self._container.seek(0)

    def _play_once(self, t0: int) -> tuple[int, int]:
        """Push one pass; returns (stream time of its last frame, frame period) in ns."""
        last = prev = 0
        period = round(1e9 / self.fps)
        try:
            for media_ns, frame in self._frames():
                if media_ns > prev:
                    period = media_ns - prev
                prev = last = media_ns
                if not self._pace(t0 + media_ns):
                    break
                self.media_ns = media_ns
                native = self.rate == "native"
                self._offer(frame, t0 + media_ns if native else max(self.clock.now_ns(), self.last_capture_ns + 1))
        except ConfigError as exc:  # a truncated or corrupt file past its start: counted; the pass ends here
            self.error(str(exc))
        return last, period

    def _pace(self, capture_ns: int) -> bool:
        """Wait until the frame is due; False when stopping."""
        if self.rate == "as_fast_as_loop":
            return self._wait_consumed()
        delay = capture_ns - self.clock.now_ns()
        return not (delay > 0 and self._stopping.wait(delay / 1e9))

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
