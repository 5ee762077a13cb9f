"""The types several areas share, below all of them: the frame record and its flag bits (:mod:`.frame`), tensor
specs (:mod:`.spec`), the :class:`Model` protocol (:mod:`.model`) and image layouts (:mod:`.layout`).

Allowed imports run upward only: ``edge.contracts`` ← kernels ← models ← loop ← telemetry ← collector (see
``tests/test_architecture.py``). This package imports nothing from ``edge`` but :mod:`edge.errors`, so any area can
use it without pulling in another.
"""

from __future__ import annotations

from edge.contracts.frame import (
    DEADLINE_MISS,
    FALLBACK,
    HEALTH_NAMES,
    INVALID_SENSOR,
    MODEL_FAULT,
    STAGES,
    STALE_SENSOR,
    FrameContext,
    FrameTap,
    Health,
)
from edge.contracts.layout import LAYOUTS, image_dims, input_layout
from edge.contracts.model import LoadReport, Model
from edge.contracts.spec import TensorSpec

__all__ = [
    "DEADLINE_MISS",
    "FALLBACK",
    "HEALTH_NAMES",
    "INVALID_SENSOR",
    "LAYOUTS",
    "MODEL_FAULT",
    "STAGES",
    "STALE_SENSOR",
    "FrameContext",
    "FrameTap",
    "Health",
    "LoadReport",
    "Model",
    "TensorSpec",
    "image_dims",
    "input_layout",
]
