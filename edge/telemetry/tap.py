"""The telemetry tap: the loop's :class:`~edge.contracts.FrameTap` that sketches every frame and hands windows over.

``on_frame`` (loop thread) gathers the frame's drift features into a preallocated vector, updates the active
window's feature and latency sketches through the native kernel, counts the top-1 class, flags and health, and
considers a capture. When ``ctx.tick_ns`` reaches the window's end (windows are aligned to multiples of
``window_s`` on the loop's clock, so lockstep runs give the same windows every time) it writes the window's
counters and hands the slot to the publisher (:meth:`WindowRing.close`): no allocation, no lock, no I/O.
"""

from __future__ import annotations

import logging
import math
import socket
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from edge.contracts import DEADLINE_MISS, FALLBACK, INVALID_SENSOR, MODEL_FAULT, STALE_SENSOR, FrameContext, Model
from edge.drift.profile import ReferenceProfile, profile_for_model
from edge.errors import ConfigError
from edge.telemetry.capture import CapturePool
from edge.telemetry.config import TelemetrySettings
from edge.telemetry.publisher import Publisher
from edge.telemetry.security import CurveKeys, load_keypair, load_public_key
from edge.telemetry.spool import Spool
from edge.telemetry.window import COUNTERS, WindowRing

__all__ = ["TelemetryTap", "default_device_id"]

log = logging.getLogger("edge.telemetry")
_I = {name: i for i, name in enumerate(COUNTERS)}
MAX_PREDICTION_CLASSES = 1000
_NOT_STARTED = -(1 << 62)


def _detection_feature(decision: Any, count: bool, cls: int) -> float:
    """Detections of class ``cls`` in ``decision`` this frame: how many (``count``), else the best score (NaN when
    none, or when the policy makes no detections). Allocation-free: at most ``max_detections`` rows."""
    det = getattr(decision, "detections", None)
    if det is None or not det.capacity:
        return math.nan
    n, best = 0, math.nan
    classes, scores = det.classes, det.scores
    for i in range(det.count):
        if classes.item(i) == cls:
            n += 1
            s = scores.item(i)
            if not best >= s:
                best = s
    return float(n) if count else best


def default_device_id() -> str:
    """``/etc/machine-id`` when readable, else the host name."""
    try:
        mid = Path("/etc/machine-id").read_text().strip()
        if mid:
            return mid
    except OSError:
        pass
    return socket.gethostname() or "unknown-device"


class TelemetryTap:
    """Sketches frames into windows and publishes them (see the module docstring).

    Owns a :class:`Publisher` (thread, socket, spool), started at construction and stopped by :meth:`close`.
    ``profile``: force a reference profile instead of the model package's (tests, the simulator).
    """

    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        device_id: str | None = None,
        boot_id: str | None = None,
        profile: ReferenceProfile | None = None,
    ) -> None:
        self.settings = settings
        self.device_id = device_id or default_device_id()
        self.boot_id = boot_id or uuid.uuid4().hex
        self._profile = profile
        curve = None
        if settings.curve_keypair is not None and settings.collector_public_key is not None:
            public, secret = load_keypair(settings.curve_keypair)
            curve = CurveKeys(public, secret, load_public_key(settings.collector_public_key))
        self.captures = CapturePool(settings.capture) if settings.capture.enabled else None
        spool = Spool(
            settings.spool_dir,
            max_bytes=settings.spool_max_bytes,
            segment_bytes=settings.segment_bytes,
            fsync=settings.fsync,
            fsync_every=settings.fsync_every,
            fsync_interval_s=settings.fsync_interval_s,
        )
        self.last_tick_ns = 0
        self.publisher = Publisher(
            settings.link,
            spool,
            device_id=self.device_id,
            boot_id=self.boot_id,
            clock_ns=lambda: self.last_tick_ns,
            curve=curve,
            captures=self.captures,
        )
        self._window_ns = round(settings.link.window_s * 1e9)
        self._ring: WindowRing | None = None
        self._end_ns = _NOT_STARTED
        self.drops = 0
        self._drops_reported = self._cap0 = self._capd0 = 0
        self._frames = 0
        self._ctx: FrameContext | None = None
        self._closed = False
        self.publisher.start()

    # ------------------------------------------------------------------------------------------ bind

    def bind(self, ctx: FrameContext, model: Model) -> None:
        """Set up features and window buffers for the live model (allocates; rare)."""
        channels = int(ctx.stats.shape[1])
        profile = self._profile or profile_for_model(model, channels)
        stats = [f for f in profile.features if f.source["kind"] == "stats"]
        others = [f for f in profile.features if f.source["kind"] != "stats"]
        for f in stats:
            if f.source["channel"] >= channels:
                raise ConfigError(
                    f"reference profile feature {f.name!r}: expected a channel < {channels}, got {f.source['channel']}"
                )
        names = tuple(f.name for f in stats + others)
        outputs = tuple(ctx.outputs)
        pred_out = profile.prediction_output
        if pred_out is None and outputs and 2 <= outputs[0].size <= MAX_PREDICTION_CLASSES:
            pred_out = 0
        if pred_out is not None and pred_out >= len(outputs):
            raise ConfigError(f"reference profile prediction.output: expected < {len(outputs)}, got {pred_out}")
        classes = int(outputs[pred_out].size) if pred_out is not None else 0
        ref_counts = profile.prediction_counts
        if ref_counts is not None and len(ref_counts) != classes:
            raise ConfigError(
                f"reference profile prediction.counts: expected {classes} counts (one per element of output "
                f"{pred_out}), got {len(ref_counts)}"
            )
        ring = WindowRing(profile, names, ctx.model_version, classes, self.settings.queue_size)
        if self._ring is not None:
            self._close_final()
            self._ring.retired = True
            ring.current.start_ns = self.last_tick_ns + 1
        else:
            self._sc_last, self._sa_last = ctx.shadow_compared, ctx.shadow_agreed  # counted before the first frame
        self._ring = ring
        self._ctx = ctx
        self._x = np.zeros(len(names), dtype=np.float64)
        idx = np.array([(0 if f.source["stat"] == "mean" else 1) * channels + f.source["channel"] for f in stats])
        self._stats = ctx.stats
        self._stats_flat = ctx.stats.reshape(-1)
        if not np.shares_memory(self._stats_flat, ctx.stats):
            raise ConfigError("FrameContext.stats: expected a C-contiguous (2, C) float64 array, got a copy-only view")
        if len(idx) == 2 * channels and np.array_equal(idx, np.arange(2 * channels)):
            self._gather = None
            self._x_stats = self._x[: 2 * channels].reshape(2, channels)
        else:
            self._gather = idx.astype(np.intp)
            self._x_stats = self._x[: len(stats)]
        self._output_feats = [
            self._output_reader(f.source, outputs, model, profile, len(stats) + i) for i, f in enumerate(others)
        ]
        self._pred_src = outputs[pred_out].reshape(-1) if pred_out is not None else None
        self._direct = self._gather is None and not self._output_feats
        self._bind_slot()
        self.publisher.add_ring(ring)

    def _output_reader(
        self, src: dict[str, Any], outputs: tuple[np.ndarray, ...], model: Model, profile: ReferenceProfile, slot: int
    ) -> tuple[Any, ...]:
        kind = src["kind"]
        if kind == "confidence":
            return (kind, slot, None, 0.0, 1.0)
        if kind in ("detection_count", "detection_score"):  # from the delivered decision's detections
            return (kind, slot, None, 0.0, 1.0, src["class"])
        o = src["output"]
        if o >= len(outputs):
            raise ConfigError(f"reference profile source {src}: expected output < {len(outputs)}, got {o}")
        flat = outputs[o].reshape(-1)
        specs = getattr(model, "outputs", ())
        spec = specs[o] if o < len(specs) else None
        scale = float(spec.scale) if spec is not None and spec.scale is not None else 1.0
        zero = float(spec.zero_point) if spec is not None and spec.zero_point is not None else 0.0
        if kind == "output" and src["index"] >= flat.size:
            raise ConfigError(f"reference profile source {src}: expected index < {flat.size}, got {src['index']}")
        if kind == "pca_error":
            pca = profile.pca
            if pca is None or pca.mean.size != flat.size:
                raise ConfigError(f"reference profile pca: expected a basis over {flat.size} values of output {o}")
            buf = (np.empty(flat.size), np.empty(pca.basis.shape[0]))
            return (kind, slot, flat, scale, zero, pca, buf)
        return (kind, slot, flat, scale, zero, src.get("index", 0))

    def _read_outputs(self, ctx: FrameContext) -> None:
        x = self._x
        for r in self._output_feats:
            kind, slot, flat, scale, zero = r[:5]
            if kind == "confidence":
                x[slot] = ctx.confidence
            elif kind == "output":
                x[slot] = (float(flat[r[5]]) - zero) * scale
            elif kind == "output_max":
                x[slot] = (float(flat.max()) - zero) * scale
            elif kind == "detection_count" or kind == "detection_score":
                x[slot] = _detection_feature(ctx.decision, kind == "detection_count", r[5])
            else:
                pca, (y, c) = r[5], r[6]
                np.subtract(flat, zero, out=y)
                y *= scale
                y -= pca.mean
                np.dot(pca.basis, y, out=c)
                x[slot] = float(np.dot(y, y) - np.dot(c, c))

    def _bind_slot(self) -> None:
        slot = self._ring.current  # type: ignore[union-attr]
        self._feat_update = slot.features.accumulator.update
        self._lat_update = slot.latency.accumulator.update
        self._pred = slot.predictions
        self._frames = self._misses = self._fallbacks = self._stale = self._invalid = self._faults = 0
        self._health_max = 0

    # ------------------------------------------------------------------------------------------ per frame

    def on_frame(self, ctx: FrameContext) -> None:
        """Loop thread: sketch one frame (allocates nothing in steady state, never blocks)."""
        tick = ctx.tick_ns
        self.last_tick_ns = tick
        if tick >= self._end_ns:
            self._roll(ctx)
        if self._direct:  # the profile's features are exactly ctx.stats, flattened: no copy at all
            self._feat_update(self._stats_flat)
        else:
            self._gather_features(ctx)
        self._lat_update(ctx.stage_us)
        pred = self._pred_src
        if pred is not None:
            self._pred[pred.argmax()] += 1
        self._frames += 1
        flags = ctx.flags
        if flags:
            self._count_flags(flags)
        if ctx.health > self._health_max:
            self._health_max = ctx.health
        self._sc_last = ctx.shadow_compared
        self._sa_last = ctx.shadow_agreed
        if self.captures is not None:
            self.captures.consider(ctx, self._ring.drift_score, ctx.model_version)  # type: ignore[union-attr]

    def _gather_features(self, ctx: FrameContext) -> None:
        if self._gather is None:
            np.copyto(self._x_stats, self._stats)
        else:
            np.take(self._stats_flat, self._gather, out=self._x_stats, mode="clip")
        if self._output_feats:
            self._read_outputs(ctx)
        self._feat_update(self._x)

    def _count_flags(self, flags: int) -> None:
        if flags & DEADLINE_MISS:
            self._misses += 1
        if flags & FALLBACK:
            self._fallbacks += 1
        if flags & STALE_SENSOR:
            self._stale += 1
        if flags & INVALID_SENSOR:
            self._invalid += 1
        if flags & MODEL_FAULT:
            self._faults += 1

    def _roll(self, ctx: FrameContext) -> None:
        """Close the active window at its end and start the one holding ``ctx.tick_ns`` (windows aligned to
        multiples of ``window_s`` on the loop's clock)."""
        tick = ctx.tick_ns
        start = tick - tick % self._window_ns
        if self._end_ns != _NOT_STARTED and self._frames:
            self._close_window(ctx, self._end_ns, start)
        else:
            self._ring.current.start_ns = start  # type: ignore[union-attr]
            self._frames = 0
        self._end_ns = start + self._window_ns
        self._snapshot(ctx)

    def _snapshot(self, ctx: FrameContext) -> None:
        """Shadow counters are cumulative on the context: a window counts the difference between the last frame
        before it and its own last frame."""
        self._sc0, self._sa0 = self._sc_last, self._sa_last

    def _close_window(self, ctx: FrameContext, end_ns: int, next_start_ns: int) -> None:
        ring = self._ring
        c = ring.current.counters  # type: ignore[union-attr]
        c[0] = self._frames
        c[1] = self._misses
        c[2] = self._fallbacks
        c[3] = self._stale
        c[4] = self._invalid
        c[5] = self._faults
        c[6] = self._sc_last - self._sc0
        c[7] = self._sa_last - self._sa0
        c[8] = self.drops - self._drops_reported
        if self.captures is not None:
            c[9] = self.captures.taken - self._cap0
            c[10] = self.captures.dropped - self._capd0
        c[11] = self._health_max
        if ring.close(end_ns, next_start_ns):  # type: ignore[union-attr]
            self._drops_reported = self.drops
            if self.captures is not None:
                self._cap0, self._capd0 = self.captures.taken, self.captures.dropped
        else:
            self.drops += 1
        self._bind_slot()

    def _close_final(self) -> None:
        """Hand over the partial window (model swap or close): it ends just after the last frame's tick."""
        ctx = self._ctx
        if self._ring is not None and self._end_ns != _NOT_STARTED and self._frames:
            self._close_window(ctx, self.last_tick_ns + 1, self.last_tick_ns + 1)
            self._snapshot(ctx)

    # ------------------------------------------------------------------------------------------ events, close

    def on_event(self, kind: str, fields: dict[str, Any]) -> None:
        """A rare loop event becomes an event record (handed over without blocking; a full queue counts a drop)."""
        self.publisher.submit_event(kind, fields)

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the publisher: what was handed over is spooled; pending records get ``timeout_s`` to be acked."""
        if self._closed:
            return
        self._closed = True
        if self._ctx is not None:
            self._close_final()
        self.publisher.stop(timeout_s + 0.5)
