"""The per-frame record the loop fills in place, and the tap interface through which telemetry observes it.

This module is the contract between ``edge.loop`` (which owns and rewrites one :class:`FrameContext` every
frame) and ``edge.telemetry`` (whose tap reads it). Nothing here allocates per frame: the arrays are made once
when the loop is built (and again, off the loop thread, when a model is swapped in).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from edge.contracts.model import Model

__all__ = [
    "DEADLINE_MISS",
    "FALLBACK",
    "HEALTH_NAMES",
    "INVALID_SENSOR",
    "MODEL_FAULT",
    "STAGES",
    "STALE_SENSOR",
    "FrameContext",
    "FrameTap",
    "Health",
]

# Per-stage timings, in this order, in FrameContext.stage_us (µs). "total" is tick start → decision delivered.
STAGES = ("sensor", "preprocess", "infer", "postprocess", "policy", "total")

# FrameContext.flags bits: why this frame's decision is what it is.
DEADLINE_MISS = 1 << 0  # the frame (or a stage) overran its deadline/budget
FALLBACK = 1 << 1  # the decision is a fallback (hold-last or safe stop), not the model's
STALE_SENSOR = 1 << 2  # a required sensor was older than its staleness limit, or missing
INVALID_SENSOR = 1 << 3  # a sensor value was NaN, out of range or frozen
MODEL_FAULT = 1 << 4  # the model raised, or produced invalid (non-finite) outputs


class Health:
    """Health states (ints, so the frame record stays a fixed-size record)."""

    OK = 0
    DEGRADED = 1
    SAFE_STOP = 2


HEALTH_NAMES = ("OK", "DEGRADED", "SAFE_STOP")


class FrameContext:
    """One frame's record, owned by the loop and rewritten in place every frame.

    Readers (a :class:`FrameTap`) must copy what they keep past ``on_frame``.

    * ``seq``: frame number since the loop started; ``tick_ns``: the scheduled tick (clock ns);
      ``capture_ns``: the capture time of the primary sensor's value (clock ns, 0 when none).
    * ``stats``: float64 ``(2, C)``, per-channel mean and population std of the primary frame, from the
      preprocessing pass (model channel order; raw pixel units before normalization).
    * ``frame``: the primary sensor's latest value (read-only view; valid during ``on_frame`` only).
    * ``outputs``: the live model's output buffers (the same arrays until a swap; see ``FrameTap.bind``).
    * ``stage_us``: float64 ``(len(STAGES),)``, µs; a stage that did not run this frame is 0.
    * ``flags``: OR of the flag bits above; ``health``: a :class:`Health` value.
    * ``confidence``: the policy's confidence in [0, 1] (NaN when the policy has none).
    * ``decision``: the delivered decision (an object owned by the loop, reused).
    * ``model_version``: ``"name@version"`` of the live model (changes only on a swap or rollback).
    * ``shadow_compared``/``shadow_agreed``: cumulative counts since start of frames the shadow model ran on
      and agreed with the live model (written by the shadow runner; readers take differences).
    * ``deadline_misses``/``fallbacks``: cumulative counts since start.
    """

    __slots__ = (
        "capture_ns",
        "confidence",
        "deadline_misses",
        "decision",
        "fallbacks",
        "flags",
        "frame",
        "health",
        "model_version",
        "outputs",
        "seq",
        "shadow_agreed",
        "shadow_compared",
        "stage_us",
        "stats",
        "tick_ns",
    )

    def __init__(self, channels: int) -> None:
        self.seq = 0
        self.tick_ns = 0
        self.capture_ns = 0
        self.stats = np.zeros((2, channels), dtype=np.float64)
        self.frame: np.ndarray | None = None
        self.outputs: tuple[np.ndarray, ...] = ()
        self.stage_us = np.zeros(len(STAGES), dtype=np.float64)
        self.flags = 0
        self.health = Health.OK
        self.confidence = float("nan")
        self.decision: Any = None
        self.model_version = ""
        self.shadow_compared = 0
        self.shadow_agreed = 0
        self.deadline_misses = 0
        self.fallbacks = 0


class FrameTap(Protocol):
    """What the loop calls on its observers (telemetry). Every method is called on the loop thread.

    ``on_frame`` must allocate nothing in steady state and never block (no I/O, no lock another thread holds
    for long). ``bind`` and ``on_event`` are rare and may allocate, but must not block either.
    """

    def bind(self, ctx: FrameContext, model: Model) -> None:
        """Called before the first frame and after every swap/rollback, with the new live model whose
        ``output_buffers`` are now in ``ctx.outputs``."""
        ...

    def on_frame(self, ctx: FrameContext) -> None:
        """Called once per frame after the decision is delivered."""
        ...

    def on_event(self, kind: str, fields: dict[str, Any]) -> None:
        """A rare event: ``"health"`` (from, to, reasons), ``"swap"``, ``"rollback"``, ``"stop"``."""
        ...

    def close(self) -> None:
        """The loop has stopped; flush what can be flushed without blocking for long (bounded, e.g. 1 s)."""
        ...
