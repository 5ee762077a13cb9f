"""Capture of raw input frames: sampled, rate-limited, triggered by low confidence or a local drift score.

The loop thread calls :meth:`CapturePool.consider` every frame: when nothing triggers it returns after a few
comparisons and allocates nothing. When a capture triggers, the frame is copied into one of ``pool`` buffers
preallocated at start-up (``max_frame_bytes`` each) and marked ready; the publisher thread compresses it (zlib),
turns it into a capture record and frees the buffer. No free buffer, an oversized or non-uint8 frame, or a
compressed size over ``max_bytes`` drops the capture and counts it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import ConfigError

__all__ = ["REASONS", "CapturePool", "CaptureSettings"]

REASONS = ("low_confidence", "drift", "sample")
FREE, READY = 0, 2


@dataclass(frozen=True)
class CaptureSettings:
    """``confidence_below``: capture when the policy's confidence is under it (0 = off); ``drift_above``: when the
    last window's local drift score (largest PSI vs the reference) is over it (0 = off); ``sample_every_s``: one
    capture at least this often regardless (0 = off); ``min_interval_s``: at most one capture per this many
    seconds of clock time; ``max_bytes``: compressed size cap (bytes); ``max_frame_bytes``: raw size of one
    buffer (bytes); ``pool``: buffers; ``level``: zlib level."""

    enabled: bool = False
    confidence_below: float = 0.0
    drift_above: float = 0.0
    sample_every_s: float = 0.0
    min_interval_s: float = 10.0
    max_bytes: int = 256 << 10
    max_frame_bytes: int = 1 << 20
    pool: int = 2
    level: int = 6

    def __post_init__(self) -> None:
        if self.pool < 1 or self.max_frame_bytes < 1 or self.max_bytes < 1 or not 0 <= self.level <= 9:
            raise ConfigError(
                "telemetry.capture: expected pool >= 1, max_frame_bytes >= 1, max_bytes >= 1 and level 0..9, got "
                f"pool={self.pool}, max_frame_bytes={self.max_frame_bytes}, max_bytes={self.max_bytes}, "
                f"level={self.level}"
            )


class CapturePool:
    """Preallocated capture buffers shared by the loop thread (fills) and the publisher (drains)."""

    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings
        n = settings.pool
        self._buffers = [np.empty(settings.max_frame_bytes, dtype=np.uint8) for _ in range(n)]
        self._state = [FREE] * n
        self._meta: list[list[Any]] = [[0, 0, 0, (), 0.0, 0.0, "", ""] for _ in range(n)]
        self._conf = settings.confidence_below
        self._drift = settings.drift_above
        self._interval_ns = int(settings.min_interval_s * 1e9)
        self._sample_ns = int(settings.sample_every_s * 1e9)
        self._last_ns: int | None = None
        self._read = 0
        self._write = 0
        self.taken = 0
        self.dropped = 0

    def consider(self, ctx: Any, drift_score: float, model_version: str) -> None:
        """Loop thread, every frame: copy ``ctx.frame`` into a free buffer if a trigger fires."""
        tick = ctx.tick_ns
        last = self._last_ns
        if last is not None and tick - last < self._interval_ns:
            return
        conf = ctx.confidence
        if self._conf > 0.0 and conf < self._conf:
            reason = 0
        elif self._drift > 0.0 and drift_score > self._drift:
            reason = 1
        elif self._sample_ns and (last is None or tick - last >= self._sample_ns):
            reason = 2
        else:
            return
        self._last_ns = tick
        frame = ctx.frame
        i = self._write
        if frame is None or frame.dtype != np.uint8 or frame.nbytes > self.settings.max_frame_bytes:
            self.dropped += 1
            return
        if self._state[i] != FREE:
            self.dropped += 1
            return
        n = frame.nbytes
        np.copyto(self._buffers[i][:n].reshape(frame.shape), frame)
        meta = self._meta[i]
        meta[0], meta[1], meta[2], meta[3] = ctx.seq, ctx.capture_ns, n, frame.shape
        meta[4], meta[5], meta[6], meta[7] = conf, drift_score, model_version, REASONS[reason]
        self._state[i] = READY
        self._write = (i + 1) % len(self._buffers)
        self.taken += 1

    def drain(self) -> list[dict[str, Any]]:
        """Publisher thread: capture record bodies for every ready buffer (compressed), freeing the buffers."""
        out = []
        while self._state[self._read] == READY:
            i = self._read
            seq, capture_ns, n, shape, conf, drift, model, reason = self._meta[i]
            data = zlib.compress(self._buffers[i][:n].tobytes(), self.settings.level)
            self._state[i] = FREE
            self._read = (i + 1) % len(self._buffers)
            if len(data) > self.settings.max_bytes:
                self.dropped += 1
                continue
            body = {
                "model": model,
                "frame_seq": int(seq),
                "capture_ns": int(capture_ns),
                "reason": reason,
                "shape": [int(d) for d in shape],
                "dtype": "uint8",
                "codec": "zlib",
                "data": data,
                "confidence": float(conf),
                "drift_score": float(drift),
            }
            out.append(body)
        return out
