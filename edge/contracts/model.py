"""What a loaded model is, as the loop, telemetry and the tooling see it: the :class:`Model` protocol.

``edge.models`` implements it (:class:`edge.models.base.BoundModel`, one subclass per runtime); everything above
types against this protocol, so none of them needs the runtime package to say what a model is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edge.contracts.spec import TensorSpec

__all__ = ["LoadReport", "Model"]


@dataclass(frozen=True)
class LoadReport:
    """Load-time figures. ``load_ms``: session creation (ms); ``first_run_ms``: the first inference (ms);
    ``warm_ms``: median of the other warm-up runs (ms, ``None`` with fewer than 2 warm-up runs)."""

    load_ms: float
    first_run_ms: float | None
    warm_ms: float | None
    warmup_runs: int
    source: str
    sha256: str | None = None


@runtime_checkable
class Model(Protocol):
    """A model whose input and output buffers were allocated once and bound to its runtime.

    * ``inputs``/``outputs``: one :class:`TensorSpec` per tensor, in the model's order.
    * ``input_buffers``/``output_buffers``: one array per spec, owned by the model and valid for its lifetime
      (a preprocessing kernel writes straight into ``input_buffers[0]``).
    * ``backend``: ``"onnxruntime"`` or ``"litert"``; ``provider``: e.g. ``"cpu"``, ``"cuda"``, ``"xnnpack"``.
    * ``report``: the :class:`LoadReport` of its load and warm-up.

    A model loaded from a package also carries ``package`` (its verified manifest); readers use
    ``getattr(model, "package", None)``, since a bare model file has none. Optional members, read the same way:
    ``state`` (the state mapping of a stateful model, ``None`` otherwise) with ``reset_state()``;
    ``outputs_pending`` (True until the first run of a model whose outputs have dynamic dimensions has bound
    them: until then their specs hold -1 for unknown dimensions and ``output_buffers`` is replaced at that run).
    """

    backend: str
    provider: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    input_buffers: tuple[np.ndarray, ...]
    output_buffers: tuple[np.ndarray, ...]
    report: LoadReport

    def run(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """One inference; returns ``output_buffers`` (the same arrays every call). With no argument the model reads
        ``input_buffers`` as they are (zero-copy); with one array per input each is checked against its spec
        (:class:`~edge.errors.ShapeError`) and copied in. Allocates nothing in steady state."""
        ...
