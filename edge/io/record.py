"""The MCAP recorder: a :class:`~edge.contracts.FrameTap` that records the loop's primary frames, decisions, stage
timings and health events into MCAP files (channels and schemas: :mod:`edge.io.mcap_schema`).

Like the telemetry tap it splits the work between two threads:

* loop thread (:meth:`RecordingTap.on_frame`): copies what it keeps into the next entry of a ring allocated at
  :meth:`~RecordingTap.bind` (``queue_frames`` entries, each with its own frame buffer) and advances the write
  index. No allocation, no lock, no I/O. When the writer has not freed an entry the frame is dropped and counted
  (:attr:`RecordingTap.drops`); the loop never waits.
* source thread (:meth:`RecordingTap.tee`, when the primary sensor's source offers its frames, as the
  ``edge.io`` sources do once :meth:`~RecordingTap.use_tee` is called): the image is copied there, into a ring of
  the last ``queue_frames`` images by capture time, so that the loop thread copies no image at all (the 640×480×3
  copy was ~100 µs of the loop's frame); the writer takes the image a decision used from that ring by its capture
  time (one no longer there is counted in :attr:`RecordingTap.images_lost`). Sensors fed by ZeroMQ or pushes have
  no tee: their image is copied on the loop thread as above.
* writer thread: encodes the entries in order and writes them with the ``mcap`` package; a file that reaches
  ``max_bytes`` is finished and the next one begun (``out.mcap``, ``out-001.mcap``, ``out-002.mcap``, ...),
  keeping the newest ``keep`` files.

A frame's image is stored only when it is a new value of the slot (a loop faster than its camera does not store the same
image again); every frame's decision and timings are stored.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from edge.contracts import HEALTH_NAMES, STAGES, FrameContext, Model
from edge.errors import ConfigError
from edge.io.mcap_schema import (
    CONFIG_METADATA,
    DECISION_TOPIC,
    EVENT_TOPIC,
    SCHEMAS,
    TIMING_TOPIC,
    encode_image,
    image_topic,
)

__all__ = ["RecordingTap", "segment_path", "segments"]

log = logging.getLogger("edge.io")
_IDLE_S = 0.002  # the writer's poll period when the ring is empty


def segment_path(path: Path, index: int) -> Path:
    """The ``index``-th file of a recording: ``out.mcap``, ``out-001.mcap``, ..."""
    return path if index == 0 else path.with_name(f"{path.stem}-{index:03d}{path.suffix}")


def segments(path: str | Path) -> list[Path]:
    """The files of the recording begun at ``path`` that exist, oldest first."""
    path = Path(path)
    found = sorted(path.parent.glob(f"{path.stem}-[0-9][0-9][0-9]{path.suffix}"))
    return ([path] if path.exists() else []) + found


class _Entry:
    """One ring entry: the frame and the fields of one loop frame (references and preallocated arrays)."""

    __slots__ = (
        "action",
        "capture_ns",
        "command",
        "confidence",
        "fallback",
        "flags",
        "frame",
        "has_image",
        "health",
        "label",
        "model",
        "seq",
        "stage_us",
        "tick_ns",
    )

    def __init__(self, frame_shape: tuple[int, ...], command_size: int) -> None:
        self.frame = np.zeros(frame_shape, np.uint8)
        self.command = np.zeros(command_size, np.float64)
        self.stage_us = np.zeros(len(STAGES), np.float64)
        self.seq = self.tick_ns = self.capture_ns = self.action = self.flags = self.health = 0
        self.has_image = self.fallback = False
        self.confidence = math.nan
        self.label = self.model = ""


class RecordingTap:
    """Records the loop into MCAP files beginning at ``path`` (see the module docstring).

    ``sensor``/``frame_shape``/``channel_order``: the primary sensor (its frames are uint8 ``(H, W, 3)``);
    ``command_size``: the length of the decisions' command vector (regression policies; 0 for classification);
    ``max_bytes``: size of one file before rotation (bytes); ``keep``: files kept; ``queue_frames``: ring size;
    ``config``: the device.toml the loop was built from, stored in every file as MCAP metadata
    (:data:`~edge.io.mcap_schema.CONFIG_METADATA`: its ``path`` and ``toml`` text) so that ``edge replay`` can rebuild
    the loop without it.
    """

    def __init__(
        self,
        path: str | Path,
        sensor: str,
        frame_shape: tuple[int, ...],
        *,
        channel_order: str = "RGB",
        command_size: int = 0,
        max_bytes: int = 256 * 1024 * 1024,
        keep: int = 4,
        queue_frames: int = 16,
        config: Path | None = None,
    ) -> None:
        if len(frame_shape) != 3 or frame_shape[2] != 3:
            raise ConfigError(f"record: expected a (H, W, 3) primary sensor to record, got shape {frame_shape}")
        if queue_frames < 2 or keep < 1 or max_bytes < 1:
            raise ConfigError(
                f"record: expected queue_frames >= 2, keep >= 1, max_bytes >= 1, got {queue_frames}, "
                f"{keep}, {max_bytes}"
            )
        try:
            import mcap  # noqa: F401  (the writer thread's; checked here so a missing package fails at start)
        except ImportError as exc:
            raise ConfigError(
                f"record: MCAP recording needs the mcap package: pip install 'edge[record]' ({exc})"
            ) from exc
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ConfigError(f"record.path: expected a file in an existing folder, got {self.path}")
        self.sensor, self.frame_shape, self.channel_order = sensor, tuple(frame_shape), channel_order
        self.max_bytes, self.keep, self.queue_frames = max_bytes, keep, queue_frames
        self.command_size = command_size
        self.metadata = {"path": str(config), "toml": config.read_text()} if config is not None else None
        self.drops = 0  # frames not recorded because the ring was full (loop thread)
        self.recorded = 0  # frames written (writer thread)
        self.files: list[Path] = []  # files written so far, oldest first (deleted ones removed)
        self.errors = 0
        self.images_lost = 0  # images a decision used that the tee no longer held (writer thread)
        self._tee: _ImageTee | None = None
        self._ring: tuple[_Entry, ...] = ()
        self._head = 0  # entries handed over (loop thread writes)
        self._tail = 0  # entries written (writer thread writes)
        self._last_capture = -1
        self._last_frame: np.ndarray | None = None
        self._events: deque[tuple[str, int, dict[str, Any]]] = deque()
        self._tick = 0
        self._stop = threading.Event()
        self._writer: _McapFiles | None = None
        self._thread = threading.Thread(target=self._write_loop, name=f"edge-record {self.path.name}", daemon=True)
        self._closed = False

    # ------------------------------------------------------------------------------------------ loop thread

    def bind(self, ctx: FrameContext, model: Model) -> None:
        """Allocate the ring and start the writer (first bind); a later bind (a model swap) changes nothing here:
        the swap reaches the recording as an event, and decisions carry the model's version."""
        if self._ring:
            return
        self._ring = tuple(_Entry(self.frame_shape, self.command_size) for _ in range(self.queue_frames))
        self._writer = _McapFiles(self.path, self.max_bytes, self.keep, self.files, self.metadata)
        self._thread.start()

    def use_tee(self) -> None:
        """From now on the primary sensor's source hands its images to :meth:`tee` (call before it starts)."""
        if self._tee is None:
            self._tee = _ImageTee(self.frame_shape, self.queue_frames)

    def tee(self, frame: np.ndarray, capture_ns: int) -> None:
        """The source thread's copy of an image it pushed with ``capture_ns`` (see the module docstring)."""
        if self._tee is not None and frame.shape == self.frame_shape:
            self._tee.offer(frame, capture_ns)

    def on_frame(self, ctx: FrameContext) -> None:
        """Copy this frame into the ring (allocates nothing; never waits)."""
        head = self._head
        if head - self._tail >= self.queue_frames:
            self.drops += 1
            return
        e = self._ring[head % self.queue_frames]
        frame = ctx.frame  # a new value is another of the slot's views, or the same one with a new capture time
        new = frame is not self._last_frame or ctx.capture_ns != self._last_capture
        e.has_image = frame is not None and new and frame.shape == self.frame_shape
        if e.has_image:
            if self._tee is None:
                np.copyto(e.frame, frame)
            self._last_frame, self._last_capture = frame, ctx.capture_ns
        d = ctx.decision
        e.seq, e.tick_ns, e.capture_ns = ctx.seq, ctx.tick_ns, ctx.capture_ns if frame is not None else 0
        e.flags, e.health, e.confidence, e.model = ctx.flags, ctx.health, ctx.confidence, ctx.model_version
        e.action, e.label, e.fallback = d.action, d.label, d.fallback
        if e.command.shape == d.command.shape:
            np.copyto(e.command, d.command)
        np.copyto(e.stage_us, ctx.stage_us)
        self._tick = ctx.tick_ns
        self._head = head + 1

    def on_event(self, kind: str, fields: dict[str, Any]) -> None:
        """A rare event (health transition, swap, stop): queued for the writer (may allocate; never blocks)."""
        self._events.append((kind, self._tick, dict(fields)))

    # ------------------------------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        try:
            while True:
                stopping = self._stop.is_set()
                wrote = self._drain()
                if stopping and not wrote:
                    return
                if not wrote:
                    self._stop.wait(_IDLE_S)
        except Exception as exc:  # counted and logged; the loop keeps running (recording stops)
            self.errors += 1
            log.exception("record %s: writer stopped: %s", self.path, exc)

    def _drain(self) -> bool:
        w = self._writer
        assert w is not None
        wrote = False
        while self._events:
            kind, tick, fields = self._events.popleft()
            w.write(EVENT_TOPIC, tick, json.dumps({"kind": kind, "tick_ns": tick, "fields": fields}, default=str))
            wrote = True
        while self._tail < self._head:
            e = self._ring[self._tail % self.queue_frames]
            if e.has_image and self._tee is not None and not self._tee.take(e.capture_ns, e.frame):
                e.has_image = False
                self.images_lost += 1
            if e.has_image:
                w.write(
                    image_topic(self.sensor),
                    e.tick_ns,
                    encode_image(e.frame, e.capture_ns, self.sensor, self.channel_order),
                )
            w.write(DECISION_TOPIC, e.tick_ns, _decision_json(e))
            timings = {"seq": e.seq, "tick_ns": e.tick_ns, **dict(zip(STAGES, e.stage_us.tolist(), strict=True))}
            w.write(TIMING_TOPIC, e.tick_ns, json.dumps(timings))
            self._tail += 1
            self.recorded += 1
            wrote = True
        return wrote

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what was handed over and finish the file (bounded by ``timeout_s``)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():  # still writing: the last file is left without its MCAP footer
            log.warning("record %s: the writer did not finish within %.1f s", self.path, timeout_s)
        elif self._writer is not None:
            self._writer.finish()
        if self.drops:
            log.warning("record %s: %d frames dropped (the writer fell behind)", self.path, self.drops)
        if self.images_lost:
            log.warning("record %s: %d images lost (the writer fell behind the camera)", self.path, self.images_lost)


class _ImageTee:
    """The last ``size`` images a source pushed, by capture time: written by the source thread, read by the writer
    thread, under one lock held for a copy (the loop thread never touches it)."""

    def __init__(self, shape: tuple[int, ...], size: int) -> None:
        self.frames = tuple(np.zeros(shape, np.uint8) for _ in range(size))
        self.captures = [-1] * size
        self.next = 0
        self.lock = threading.Lock()

    def offer(self, frame: np.ndarray, capture_ns: int) -> None:
        with self.lock:
            i = self.next
            self.next = (i + 1) % len(self.frames)
            np.copyto(self.frames[i], frame)
            self.captures[i] = capture_ns

    def take(self, capture_ns: int, out: np.ndarray) -> bool:
        """Copy the image captured at ``capture_ns`` into ``out``; False when it is no longer held."""
        with self.lock:
            for i, cap in enumerate(self.captures):
                if cap == capture_ns:
                    np.copyto(out, self.frames[i])
                    return True
        return False


def _decision_json(e: _Entry) -> bytes:
    conf = None if math.isnan(e.confidence) else e.confidence
    msg = {
        "seq": e.seq,
        "tick_ns": e.tick_ns,
        "capture_ns": e.capture_ns,
        "action": e.action,
        "label": e.label,
        "command": e.command.tolist(),
        "confidence": conf,
        "health": HEALTH_NAMES[e.health],
        "flags": e.flags,
        "fallback": e.fallback,
        "model": e.model,
    }
    return json.dumps(msg).encode()


class _McapFiles:
    """The writer thread's MCAP files: one open at a time, rotated at ``max_bytes``, the newest ``keep`` kept."""

    def __init__(
        self, path: Path, max_bytes: int, keep: int, files: list[Path], metadata: dict[str, str] | None
    ) -> None:
        from mcap.writer import CompressionType, Writer

        self._writer_cls, self._compression = Writer, CompressionType.NONE
        self.path, self.max_bytes, self.keep, self.files = path, max_bytes, keep, files
        self.metadata = metadata
        self.index = -1
        self._out: Any = None
        self._open_next()

    def _open_next(self) -> None:
        self.finish()
        self.index += 1
        path = segment_path(self.path, self.index)
        self._out = path.open("wb")
        self._mcap = self._writer_cls(self._out, compression=self._compression, chunk_size=256 * 1024)
        self._mcap.start(profile="", library="edge")
        if self.metadata is not None:  # every file: the oldest ones are deleted by rotation
            self._mcap.add_metadata(CONFIG_METADATA, self.metadata)
        self._schemas = {
            title: self._mcap.register_schema(title, "jsonschema", json.dumps(s).encode())
            for title, s in SCHEMAS.items()
        }
        self._channels: dict[str, int] = {}
        self.files.append(path)
        while len(self.files) > self.keep:
            self.files.pop(0).unlink(missing_ok=True)

    def write(self, topic: str, log_ns: int, data: bytes | str) -> None:
        if self._out.tell() >= self.max_bytes:
            self._open_next()
        ch = self._channels.get(topic)
        if ch is None:
            schema = {DECISION_TOPIC: "edge.Decision", TIMING_TOPIC: "edge.StageTimings", EVENT_TOPIC: "edge.Event"}
            sid = self._schemas[schema.get(topic, "foxglove.RawImage")]
            ch = self._channels[topic] = self._mcap.register_channel(topic, "json", sid)
        payload = data.encode() if isinstance(data, str) else data
        self._mcap.add_message(ch, log_time=log_ns, data=payload, publish_time=log_ns)

    def finish(self) -> None:
        if self._out is not None:
            self._mcap.finish()
            self._out.close()
            self._out = None
