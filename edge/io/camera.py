"""A live V4L2 camera by device path (``/dev/video0``) through PyAV's ``v4l2`` input (FFmpeg's libavdevice, inside
the PyAV wheel), decoded on the source's thread into a :class:`~edge.loop.sensors.SensorSlot`.

Why PyAV and not OpenCV: the same decoder, conversion and error path as the video-file source (one dependency,
``edge[video]``), and FFmpeg's v4l2 options map one to one onto the camera settings: ``resolution`` →
``video_size``, ``fps`` → ``framerate``, ``pixel_format`` → ``input_format`` (e.g. ``"mjpeg"``, ``"yuyv422"``).
Frames are scaled to the slot's shape if the camera delivers another size, and stamped with the loop's clock
when the driver hands them over (the driver's own timestamps are not on the loop's clock).

A missing device, a device that is not a camera and a busy one (opened by another process) raise
:class:`~edge.errors.SensorFault` naming the device at start. Not tested on hardware: this project's CI has no
camera; the tests cover the option mapping and the missing-device error only.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, SensorFault
from edge.io.video import _av, _Decoded
from edge.loop.clock import Clock
from edge.loop.sensors import SensorSlot

__all__ = ["CameraSource", "v4l2_options"]


def v4l2_options(
    resolution: tuple[int, int] | None = None, fps: float | None = None, pixel_format: str | None = None
) -> dict[str, str]:
    """FFmpeg ``v4l2`` input options for a camera setting (``resolution`` as (width, height) pixels, ``fps``
    frames per second, ``pixel_format`` the camera's format such as ``"mjpeg"``); ``None`` keeps the driver's."""
    opts: dict[str, str] = {}
    if resolution is not None:
        w, h = resolution
        if w < 1 or h < 1:
            raise ConfigError(f"camera resolution: expected [width, height] > 0, got {list(resolution)}")
        opts["video_size"] = f"{int(w)}x{int(h)}"
    if fps is not None:
        if fps <= 0:
            raise ConfigError(f"camera fps: expected a number > 0, got {fps!r}")
        opts["framerate"] = f"{fps:g}"
    if pixel_format is not None:
        opts["input_format"] = pixel_format
    return opts


class CameraSource(_Decoded):
    """Feeds ``slot`` from the V4L2 camera at ``device`` (see the module docstring)."""

    def __init__(
        self,
        slot: SensorSlot,
        device: str | Path,
        *,
        clock: Clock | None = None,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        pixel_format: str | None = None,
        channel_order: str = "RGB",
        drop_probability: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.device = str(device)
        name = f"camera source {slot.name!r} ({self.device})"
        super().__init__(
            name, slot, clock=clock, channel_order=channel_order, drop_probability=drop_probability, seed=seed
        )
        self.options = v4l2_options(resolution, fps, pixel_format)
        self._container: Any = None

    def _open(self) -> None:
        if not Path(self.device).exists():
            raise SensorFault(f"{self.name}: expected a V4L2 camera device, got {self.device} (not found)")
        av = _av()
        try:
            self._container = av.open(self.device, format="v4l2", options=self.options)
        except (av.FFmpegError, OSError) as exc:
            busy = getattr(exc, "errno", None) == errno.EBUSY
            what = "busy (opened by another process)" if busy else f"cannot be opened: {exc}"
            raise SensorFault(
                f"{self.name}: expected a free V4L2 camera with {self.options}, the device is {what}"
            ) from exc
        if not self._container.streams.video:
            self._release()
            raise SensorFault(f"{self.name}: expected a video stream from the device, got none")

    def _run(self) -> None:
        av = _av()
        stream = self._container.streams.video[0]
        try:
            for frame in self._container.decode(stream):
                if self._stopping.is_set():
                    return
                self._offer(frame, max(self.clock.now_ns(), self.last_capture_ns + 1))
        except (av.FFmpegError, OSError) as exc:
            self.error(f"camera read failed: {exc}")
        if not self._stopping.is_set():
            self._ended()

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
