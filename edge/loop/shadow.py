"""Shadow model: a candidate runs on sampled frames in its own thread, off the critical path, and its agreement
with the live model is counted.

On a sampled frame the loop calls :meth:`ShadowRunner.offer` right after the live inference: when the worker is
idle the live model's first output is copied into a buffer owned here, and so is the input — the live model's
preprocessed input straight into the candidate's bound input buffer when both have the same input spec, else the
camera frame into a preallocated frame buffer that the worker preprocesses with the candidate's own tables — and the
worker is woken; when it is busy the frame is skipped
(counted in :attr:`ShadowRunner.skipped`). The loop never waits for the worker. The worker runs the candidate and
compares: ``"argmax"`` (same top class) or ``"tolerance"`` (every |Δ| ≤ ``tolerance`` after dequantization), and
adds to ``ctx.shadow_compared``/``ctx.shadow_agreed``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from edge.contracts import FrameContext, Model, TensorSpec
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.loop.pipeline import ModelStage

__all__ = ["ShadowRunner"]

log = logging.getLogger("edge.loop")


def _real(spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
    x = arr.astype(np.float64).reshape(-1)
    if spec.quantized:
        x = (x - float(spec.zero_point or 0)) * float(spec.scale)
    return x


class ShadowRunner:
    """Runs ``candidate`` (a :class:`~edge.loop.pipeline.ModelStage`) on every ``every``-th frame offered."""

    MODES = ("argmax", "tolerance")

    def __init__(
        self,
        candidate: ModelStage,
        live: Model,
        ctx: FrameContext,
        *,
        every: int = 1,
        mode: str = "argmax",
        tolerance: float = 0.0,
    ) -> None:
        if every < 1:
            raise ConfigError(f"shadow.every: expected an integer >= 1, got {every!r}")
        if mode not in self.MODES:
            raise ConfigError(f"shadow.mode: expected one of {self.MODES}, got {mode!r}")
        if tolerance < 0:
            raise ConfigError(f"shadow.tolerance: expected a number >= 0, got {tolerance!r}")
        self.stage, self.candidate, self.ctx = candidate, candidate.model, ctx
        self.every, self.mode, self.tolerance = int(every), mode, float(tolerance)
        self.version = candidate.version
        self._input = self.candidate.input_buffers[0]
        self._live_out = np.zeros(live.output_buffers[0].shape, live.output_buffers[0].dtype)
        self._frame: np.ndarray | None = None
        self._stats = np.zeros((2, candidate.channels), np.float64)
        self.copy_input = True
        self.check_live(live)
        self.skipped = 0
        self.errors = 0
        self._idle = True
        self._go = threading.Lock()
        self._go.acquire()  # released by offer(): one wake-up per accepted frame
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="edge-shadow", daemon=True)
        self._thread.start()

    def check_live(self, live: Model) -> None:
        """Refuse a live model whose input or first output differs from what this runner copies."""
        a, b = live.inputs[0], self.candidate.inputs[0]
        self.copy_input = (a.shape, a.dtype, a.scale, a.zero_point) == (b.shape, b.dtype, b.scale, b.zero_point)
        out = live.output_buffers[0]
        pending = bool(getattr(live, "outputs_pending", False))  # shapes known at its first run: checked in offer
        if (out.shape != self._live_out.shape and not pending) or out.dtype != self._live_out.dtype:
            raise ConfigError(
                f"shadow: expected the live model's first output {live.outputs[0].describe()} to match the "
                f"shadow's buffer [{self._live_out.shape}] {self._live_out.dtype}"
            )
        self._live_spec = live.outputs[0]

    def offer(self, frame: np.ndarray, live_input: np.ndarray, live_output: np.ndarray) -> None:
        """Called on the loop thread after the live inference of a sampled frame; never waits."""
        if not self._idle:
            self.skipped += 1
            return
        self._idle = False
        if self.copy_input:
            np.copyto(self._input, live_input)
        else:
            if self._frame is None or self._frame.shape != frame.shape:  # first offer only (set-up)
                self._frame = np.empty_like(frame)
            np.copyto(self._frame, frame)
        if self._live_out.shape != live_output.shape:  # outputs bound at the live model's first run: once
            self._live_out = np.empty_like(live_output)
        np.copyto(self._live_out, live_output)
        self._go.release()

    def _work(self) -> None:
        while True:
            while not self._go.acquire(timeout=0.05):  # wake-ups from offer(); stop is polled
                if self._stop:
                    return
            if self._stop:
                return
            try:
                if not self.copy_input:
                    self.stage.preprocess(self._frame, self._stats)
                out = self.candidate.run()[0]
                a = _real(self._live_spec, self._live_out)
                b = _real(self.candidate.outputs[0], out)
                if self.mode == "argmax":
                    agree = int(np.argmax(a)) == int(np.argmax(b))
                else:
                    agree = a.shape == b.shape and bool(np.all(np.abs(a - b) <= self.tolerance))
                self.ctx.shadow_compared += 1
                if agree:
                    self.ctx.shadow_agreed += 1
            except Exception as exc:  # a failing candidate is counted, never reaches the loop
                self.errors += 1
                if self.errors == 1:
                    log.warning("shadow: candidate %s failed: %s", self.version, exc)
            self._idle = True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (waits up to ``timeout`` s for a running candidate inference)."""
        self._stop = True
        self._thread.join(timeout)
