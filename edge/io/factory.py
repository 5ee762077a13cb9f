"""``device.toml`` → robot I/O adapters: the sources of ``[sensors.NAME]`` tables with ``source`` = ``"video"``,
``"camera"``/``"v4l2"`` or ``"mcap"`` (keys in ``SensorConfig.options``), and the MCAP recorder of ``[record]``.
The device service calls these; nothing here starts a thread (sources start in ``start()``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from edge.io.record import RecordingTap
from edge.io.source import SourceThread
from edge.loop.clock import Clock
from edge.loop.config import DeviceConfig, RecordConfig, SensorConfig
from edge.loop.sensors import SensorSlot

__all__ = ["recorder_from_config", "sources_from_config"]


def _video(s: SensorConfig, slot: SensorSlot, clock: Clock) -> SourceThread:
    from edge.io.video import VideoSource

    o = s.options
    return VideoSource(
        slot,
        o["path"],
        clock=clock,
        rate=o["rate"],
        loop=o["loop"],
        fps=o["fps"] or 30.0,
        channel_order=s.channel_order,
        drop_probability=o["drop_probability"],
        seed=o["seed"],
    )


def _camera(s: SensorConfig, slot: SensorSlot, clock: Clock) -> SourceThread:
    from edge.io.camera import CameraSource

    o = s.options
    return CameraSource(
        slot,
        o["path"],
        clock=clock,
        resolution=o["resolution"],
        fps=o["fps"],
        pixel_format=o["pixel_format"],
        channel_order=s.channel_order,
        drop_probability=o["drop_probability"],
        seed=o["seed"],
    )


def _mcap(s: SensorConfig, slot: SensorSlot, clock: Clock) -> SourceThread:
    from edge.io.replay import McapSource

    return McapSource(slot, s.options["path"], clock=clock, rate=s.options["rate"], loop=s.options["loop"])


_BUILDERS: dict[str, Callable[[SensorConfig, SensorSlot, Clock], SourceThread]] = {
    "video": _video,
    "camera": _camera,
    "v4l2": _camera,
    "mcap": _mcap,
}


def sources_from_config(cfg: DeviceConfig, slots: Mapping[str, SensorSlot], clock: Clock) -> list[SourceThread]:
    """One (unstarted) source per sensor whose ``source`` is a robot I/O kind, feeding ``slots[name]``."""
    return [_BUILDERS[s.source](s, slots[s.name], clock) for s in cfg.sensors if s.source in _BUILDERS]


def recorder_from_config(cfg: DeviceConfig, record: RecordConfig, slots: Mapping[str, SensorSlot]) -> RecordingTap:
    """The MCAP recorder of the primary sensor (a FrameTap; its writer starts at the loop's first bind)."""
    primary = next(s for s in cfg.sensors if s.primary)
    return RecordingTap(
        record.path,
        primary.name,
        slots[primary.name].shape,
        channel_order=primary.channel_order,
        command_size=cfg.policy.size if cfg.policy.kind == "regression" else 0,
        max_bytes=record.max_bytes,
        keep=record.keep,
        queue_frames=record.queue_frames,
        config=cfg.path if cfg.path.is_file() else None,
    )
