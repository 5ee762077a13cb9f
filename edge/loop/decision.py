"""The decision the loop delivers every frame: one preallocated object, rewritten in place.

Sinks and :meth:`edge.loop.runner.Loop.step` callers receive the same :class:`Decision` object every frame; copy
what you keep past the call (:meth:`Decision.snapshot` makes a plain dict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.contracts import HEALTH_NAMES, STAGES

__all__ = ["Decision", "Detections"]


class Detections:
    """A detection policy's detections, preallocated for ``capacity`` of them and rewritten in place.

    ``boxes`` float32 ``(capacity, 4)`` = (x1, y1, x2, y2) in frame pixels (the preprocessing resize undone);
    ``scores`` float32 ``(capacity,)``; ``classes`` int32 ``(capacity,)``; only the first ``count`` rows are valid
    (best score first). ``labels`` names the classes (index → name).
    """

    __slots__ = ("boxes", "capacity", "classes", "count", "labels", "scores")

    def __init__(self, capacity: int = 0, labels: tuple[str, ...] = ()) -> None:
        self.capacity = int(capacity)
        self.labels = tuple(labels)
        self.boxes = np.zeros((self.capacity, 4), np.float32)
        self.scores = np.zeros(self.capacity, np.float32)
        self.classes = np.zeros(self.capacity, np.int32)
        self.count = 0

    def copy_from(self, other: Detections) -> None:
        """Take ``other``'s first ``count`` detections (as many as fit; allocation-free)."""
        n = min(other.count, self.capacity)
        if n:
            self.boxes[:n] = other.boxes[:n]
            self.scores[:n] = other.scores[:n]
            self.classes[:n] = other.classes[:n]
        self.count = n

    def label(self, cls: int) -> str:
        return self.labels[cls] if 0 <= cls < len(self.labels) else str(cls)

    def to_list(self) -> list[dict[str, Any]]:
        """Plain-type copies (allocates): ``[{"class", "label", "score", "box": [x1, y1, x2, y2]}, ...]``."""
        return [
            {
                "class": int(self.classes[i]),
                "label": self.label(int(self.classes[i])),
                "score": float(self.scores[i]),
                "box": [float(v) for v in self.boxes[i]],
            }
            for i in range(self.count)
        ]


class Decision:
    """One frame's decision, owned by the loop.

    * ``seq``: frame number; ``tick_ns``: the scheduled tick (clock ns).
    * ``action``: class → action index (classification policies; -1 when none); ``label``: its name ("" when none).
    * ``command``: float64 ``(n,)`` command vector (regression policies; empty otherwise).
    * ``confidence``: in [0, 1] (NaN when the policy has none).
    * ``health``: :class:`edge.contracts.Health` value; ``flags``: the frame flag bits; ``fallback``: True when
      this is a hold-last or safe-stop decision rather than the model's.
    * ``stage_us``: float64 ``(len(STAGES),)`` per-stage timings (µs; the loop's clock), shared with the frame record.
    * ``source``: ``"loop"`` or ``"watchdog"`` (the watchdog's safe stop goes through its own path).
    * ``detections``: :class:`Detections` (detection policies; capacity 0 otherwise).
    """

    __slots__ = (
        "action",
        "command",
        "confidence",
        "detections",
        "fallback",
        "flags",
        "health",
        "label",
        "seq",
        "source",
        "stage_us",
        "tick_ns",
    )

    def __init__(
        self,
        command_size: int = 0,
        stage_us: np.ndarray | None = None,
        source: str = "loop",
        detections: int = 0,
        labels: tuple[str, ...] = (),
    ) -> None:
        self.seq = 0
        self.tick_ns = 0
        self.action = -1
        self.label = ""
        self.command = np.zeros(command_size, np.float64)
        self.confidence = float("nan")
        self.health = 0
        self.flags = 0
        self.fallback = False
        self.stage_us = np.zeros(len(STAGES), np.float64) if stage_us is None else stage_us
        self.source = source
        self.detections = Detections(detections, labels)

    def copy_from(self, other: Decision) -> None:
        """Take ``other``'s action, label, command, confidence and detections (allocation-free; same command size)."""
        self.action = other.action
        self.label = other.label
        self.confidence = other.confidence
        if self.command.shape == other.command.shape:
            np.copyto(self.command, other.command)
        self.detections.copy_from(other.detections)

    def snapshot(self) -> dict[str, Any]:
        """A plain-type copy (allocates: for sinks and tests, not the hot path)."""
        snap = {
            "seq": self.seq,
            "tick_ns": self.tick_ns,
            "action": self.action,
            "label": self.label,
            "command": self.command.tolist(),
            "confidence": self.confidence,
            "health": HEALTH_NAMES[self.health],
            "flags": self.flags,
            "fallback": self.fallback,
            "stage_us": dict(zip(STAGES, self.stage_us.tolist(), strict=True)),
            "source": self.source,
        }
        if self.detections.capacity:
            snap["detections"] = self.detections.to_list()
        return snap
