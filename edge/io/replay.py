"""Replay of an MCAP recording (:mod:`edge.io.record`): a source that plays its frames into a slot
(``source = "mcap"``), and a lockstep driver that runs the same :class:`~edge.loop.runner.Loop` frame by frame
from a recording, for decisions that can be compared with the recorded ones.

:class:`Recording` reads the files: :meth:`Recording.frames` yields ``(tick_ns, capture_ns, frame or None)`` per
recorded loop frame in order (the frame only where the loop saw a new capture), :meth:`Recording.decisions` the
recorded decisions. A corrupt or truncated file is a :class:`~edge.errors.ConfigError` naming it.

:class:`ReplayDriver` drives the loop under a :class:`~edge.loop.clock.LockstepClock`: for each recorded frame it
pushes the recorded image (with its recorded capture time) into the primary slot, sets the loop's next tick to the
recorded tick and runs one :meth:`~edge.loop.runner.Loop.step`. With the same model and configuration the
decisions are the recorded ones, except where the recorded run had real-time effects a lockstep run cannot have
(deadline misses, a sensor that was read between two pushes). Decoding happens between steps, on the driving
thread: this is an offline tool, not the device's loop thread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.io.mcap_schema import CONFIG_METADATA, DECISION_TOPIC, decode_image, image_topic
from edge.io.record import segments
from edge.io.video import RATES, _Decoded
from edge.loop.clock import Clock, LockstepClock
from edge.loop.sensors import SensorSlot

__all__ = ["DecisionDiff", "McapSource", "Recording", "ReplayDriver", "compare_decisions", "frame_difference"]


class Recording:
    """The recording begun at ``path`` (all its rotated files, oldest first), for sensor ``sensor``."""

    def __init__(self, path: str | Path, sensor: str) -> None:
        self.path = Path(path)
        self.files = segments(self.path)
        if not self.files:
            raise ConfigError(f"recording {self.path}: expected an MCAP file, got none (not found)")
        self.sensor = sensor
        self._image_topic = image_topic(sensor)

    def _messages(self, topics: list[str]) -> Iterator[tuple[str, Any]]:
        from mcap.exceptions import McapError
        from mcap.reader import make_reader

        for file in self.files:
            try:
                with file.open("rb") as f:
                    for _schema, channel, message in make_reader(f).iter_messages(topics=topics, log_time_order=False):
                        yield channel.topic, message
            except (McapError, OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"recording {file}: expected a readable MCAP file, got an error: {exc}") from exc

    def frames(self) -> Iterator[tuple[int, int, np.ndarray | None]]:
        """``(tick_ns, capture_ns, frame)`` per recorded loop frame; ``frame`` is the image first used at that
        tick (``None`` when the loop reused an earlier one or had none)."""
        pending: dict[int, np.ndarray] = {}
        for topic, m in self._messages([self._image_topic, DECISION_TOPIC]):
            if topic == self._image_topic:
                try:
                    cap, h, w, _enc, raw = decode_image(m.data)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigError(f"recording {self.path}: expected a foxglove.RawImage, got {exc}") from exc
                pending[cap] = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                continue
            d = json.loads(m.data)
            yield d["tick_ns"], d["capture_ns"], pending.pop(d["capture_ns"], None)

    def config(self) -> dict[str, str] | None:
        """The device.toml the recorded loop was built from (``{"path", "toml"}``), or ``None`` if not recorded."""
        from mcap.exceptions import McapError
        from mcap.reader import make_reader

        file = self.files[-1]  # every file holds it; the newest is the one rotation kept for sure
        try:
            with file.open("rb") as f:
                for record in make_reader(f).iter_metadata():
                    if record.name == CONFIG_METADATA:
                        return dict(record.metadata)
        except (McapError, OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"recording {file}: expected a readable MCAP file, got an error: {exc}") from exc
        return None

    def decisions(self) -> list[dict[str, Any]]:
        """The recorded decisions, in frame order (plain dicts; see ``edge.Decision``)."""
        return [json.loads(m.data) for _t, m in self._messages([DECISION_TOPIC])]


class ReplayDriver:
    """Runs ``loop`` (built on ``clock``, a :class:`LockstepClock`) from ``recording``; see the module docstring."""

    def __init__(self, loop: Any, clock: LockstepClock, recording: Recording) -> None:
        if not isinstance(clock, LockstepClock):
            raise ConfigError(f"replay: expected the loop on a LockstepClock, got {type(clock).__name__}")
        self.loop, self.clock, self.recording = loop, clock, recording
        self.slot: SensorSlot = loop.slot(recording.sensor)
        self.frames = 0

    def run(self, max_frames: int | None = None) -> list[dict[str, Any]]:
        """Replay every recorded frame (or the first ``max_frames``); returns the replayed decisions."""
        out = []
        for tick, cap, frame in self.recording.frames():
            if max_frames is not None and self.frames >= max_frames:
                break
            if frame is not None:
                self.slot.push(frame, cap)
            if self.frames == 0:
                self.clock.sleep_until(tick)
            else:
                self.loop.schedule.next_ns = tick
            out.append(self.loop.step().snapshot())
            self.frames += 1
        return out


@dataclass(frozen=True)
class DecisionDiff:
    """How replayed decisions differ from recorded ones, frame by frame (matched by ``seq``).

    ``frames``: frames compared; ``agreement``: fraction with the same action, fallback and health (and, for
    regression, a command within ``tolerance``); ``max_command_diff``/``rms_command_diff``: over all command
    elements (0 for classification); ``first_difference``: ``seq`` of the first frame that disagrees (-1: none).
    """

    frames: int
    agreement: float
    max_command_diff: float
    rms_command_diff: float
    first_difference: int


def frame_difference(recorded: dict[str, Any], replayed: dict[str, Any], tolerance: float = 0.0) -> tuple[bool, float]:
    """``(agree, max |command difference|)`` of one frame's decisions: they agree when action, fallback and health
    are the same and every command element is within ``tolerance``."""
    diffs = [abs(a - b) for a, b in zip(recorded["command"], replayed["command"], strict=False)]
    worst = max(diffs, default=0.0)
    same = all(recorded[k] == replayed[k] for k in ("action", "fallback", "health")) and worst <= tolerance
    return same, worst


def compare_decisions(
    recorded: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]], tolerance: float = 0.0
) -> DecisionDiff:
    """Compare decisions (``edge.Decision`` dicts or :meth:`Decision.snapshot` dicts) frame by frame."""
    by_seq = {d["seq"]: d for d in replayed}
    same = n = 0
    first = -1
    sq, worst, count = 0.0, 0.0, 0
    for r in recorded:
        p = by_seq.get(r["seq"])
        if p is None:
            continue
        n += 1
        agree, frame_worst = frame_difference(r, p, tolerance)
        worst = max(worst, frame_worst)
        sq += sum((a - b) ** 2 for a, b in zip(r["command"], p["command"], strict=False))
        count += min(len(r["command"]), len(p["command"]))
        if agree:
            same += 1
        elif first < 0:
            first = r["seq"]
    rms = math.sqrt(sq / count) if count else 0.0
    return DecisionDiff(n, same / n if n else 0.0, worst, rms, first)


class McapSource(_Decoded):
    """Plays the recorded frames of ``slot``'s sensor from the recording at ``path`` into ``slot``, at the recorded
    rate (``rate="native"``: recorded capture times shifted to start now on ``clock``) or ``"as_fast_as_loop"``;
    ``loop``: start over at the end. The images are already raw: no scaling, the shapes must match."""

    def __init__(
        self,
        slot: SensorSlot,
        path: str | Path,
        *,
        clock: Clock | None = None,
        rate: str = "native",
        loop: bool = False,
    ) -> None:
        self.recording = Recording(path, slot.name)
        super().__init__(
            f"mcap source {slot.name!r} ({path})", slot, clock=clock, channel_order="RGB", drop_probability=0.0, seed=0
        )
        if rate not in RATES:
            raise ConfigError(f"{self.name}.rate: expected one of {list(RATES)}, got {rate!r}")
        self.rate, self.loop = rate, loop

    def _open(self) -> None:
        first = next((f for _t, _c, f in self.recording.frames() if f is not None), None)
        if first is None:
            raise ConfigError(f"{self.name}: expected recorded images of sensor {self.slot.name!r}, found none")
        if first.shape != self.slot.shape:
            raise ConfigError(f"{self.name}: expected images of shape {self.slot.shape}, got {first.shape}")

    def _convert(self, frame: Any) -> np.ndarray:
        return frame

    def _run(self) -> None:
        while not self._stopping.is_set():
            offset = None  # each pass starts now on the clock
            for _tick, cap, frame in self.recording.frames():
                if frame is None:
                    continue
                if offset is None:
                    offset = self.clock.now_ns() - cap
                stamp = cap + offset
                if self.rate == "as_fast_as_loop":
                    if not self._wait_consumed():
                        return
                    stamp = max(self.clock.now_ns(), self.last_capture_ns + 1)
                elif (delay := stamp - self.clock.now_ns()) > 0 and self._stopping.wait(delay / 1e9):
                    return
                self._offer(frame, stamp)
            if not self.loop:
                if self.rate == "as_fast_as_loop":
                    self._wait_consumed()
                self._ended()
                return
