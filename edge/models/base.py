"""What every loaded model is: specs, buffers bound once, ``run``, warm-up figures — the one implementation of the
:class:`edge.contracts.Model` protocol.

A backend subclass builds its runtime session, allocates one buffer per input and output, binds them, and
implements :meth:`BoundModel._invoke`. Everything else — checking caller arrays, warm-up, the load report — lives
here so the two backends behave the same.
"""

from __future__ import annotations

import time

import numpy as np

from edge.contracts import LoadReport, TensorSpec
from edge.errors import ShapeError
from edge.models.state import StateCarry

__all__ = ["BoundModel"]


class BoundModel:
    """A model whose input and output buffers were allocated once and bound to the runtime (an
    :class:`edge.contracts.Model`).

    Attributes: ``inputs``/``outputs`` (tuples of :class:`TensorSpec`), ``input_buffers``/``output_buffers``
    (tuples of arrays owned by the model, valid for its lifetime; for LiteRT they are views into the interpreter's
    own tensors), ``backend`` (``"onnxruntime"`` or ``"litert"``), ``provider`` (e.g. ``"cpu"``, ``"cuda"``,
    ``"xnnpack"``), ``report`` (:class:`LoadReport`).
    """

    backend: str = ""
    provider: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    input_buffers: tuple[np.ndarray, ...] = ()
    output_buffers: tuple[np.ndarray, ...] = ()
    report: LoadReport
    state: StateCarry | None = None  # the state mapping (RuntimeOptions.state), None for a stateless model

    def _invoke(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run one inference and return ``output_buffers`` (the same arrays every call; copy what you keep).

        With no argument the model reads ``input_buffers`` as they are: the zero-copy path, for a preprocessing
        kernel that writes straight into them. With one array per input, each is checked against its spec
        (:class:`ShapeError` naming the spec on a wrong dtype or shape) and copied into the bound buffer.
        A stateful model (``state=`` at load) then copies each mapped output into its input for the next run.
        Allocates nothing in steady state.
        """
        if arrays:
            if len(arrays) != len(self.inputs):
                names = ", ".join(s.describe() for s in self.inputs)
                raise ShapeError(f"run: expected {len(self.inputs)} input(s) ({names}), got {len(arrays)}")
            for spec, buf, arr in zip(self.inputs, self.input_buffers, arrays, strict=True):
                if arr is not buf:
                    spec.check(arr)
                    np.copyto(buf, arr)
        self._invoke()
        if self.state is not None:
            self.state.carry()
        return self.output_buffers

    def reset_state(self) -> None:
        """Put the state inputs of a stateful model back to zero (no-op for a stateless one)."""
        if self.state is not None:
            self.state.reset()

    def _fill_neutral(self) -> None:
        """Inputs at their zero point (quantized) or zero (float): a valid, deterministic warm-up input."""
        for spec, buf in zip(self.inputs, self.input_buffers, strict=True):
            buf[...] = spec.zero_point if spec.quantized else 0

    def _warm_up(self, runs: int, load_ms: float, source: str, sha256: str | None) -> None:
        first = warm = None
        times: list[float] = []
        if runs:
            self._fill_neutral()
            for _ in range(runs):
                t0 = time.perf_counter()
                self._invoke()
                times.append((time.perf_counter() - t0) * 1e3)
            first = times[0]
            warm = float(np.median(times[1:])) if len(times) > 1 else None
        self.report = LoadReport(load_ms, first, warm, runs, source, sha256)

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs)
        outs = ", ".join(s.describe() for s in self.outputs)
        return f"<{type(self).__name__} {self.backend}/{self.provider} ({ins}) -> ({outs})>"
