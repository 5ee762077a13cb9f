"""Policies: model outputs → decision. Classification (class → action), regression (command with clamps and a
rate limit), or a user's Python callable.

A policy is bound to a model's output specs once (:meth:`bind`, off the loop thread, allocates its buffers); the
bound policy's ``decide(outputs, decision) -> bool`` runs on the loop thread, allocates nothing, writes the decision
in place and returns False when the outputs are invalid (non-finite), which the loop treats as a model fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from edge import kernels
from edge.contracts import Model, TensorSpec
from edge.errors import ConfigError, ShapeError
from edge.loop.decision import Decision

__all__ = ["BoundPolicy", "CallablePolicy", "ClassificationPolicy", "Policy", "RegressionPolicy"]


class BoundPolicy(Protocol):
    def postprocess(self) -> bool:
        """Decode the model's outputs into buffers owned here; False when they are invalid (non-finite)."""
        ...

    def decide(self, outputs: tuple[np.ndarray, ...], decision: Decision) -> bool:
        """Write the decision in place from the postprocessed outputs; False when it cannot."""
        ...


class Policy(Protocol):
    command_size: int

    def bind(self, model: Model) -> BoundPolicy:
        """Buffers for ``model`` (its ``outputs`` specs and ``output_buffers``); called off the loop thread."""
        ...


class _Dequant:
    """The first model output as a float32 (1, n) array: a view of the model's own buffer when it is float32,
    else a buffer owned here that :meth:`read` fills (dequantized when the output is int8/uint8)."""

    def __init__(self, spec: TensorSpec, buf: np.ndarray) -> None:
        if spec.dtype.kind not in "fiu":
            raise ShapeError(f"policy: expected a numeric model output, got {spec.describe()}")
        self.spec = spec
        self.src = buf.reshape(1, -1)
        if spec.dtype == np.float32:
            self.mode, self.values = 0, self.src
        else:
            self.mode = 1 if spec.quantized and spec.dtype.kind in "iu" else 2
            self.values = np.zeros(self.src.shape, np.float32)
        self._scale = np.array([spec.scale or 1.0], np.float32)
        self._zp = np.array([spec.zero_point or 0], np.int32)

    def read(self) -> np.ndarray:
        if self.mode == 1:
            kernels.dequantize(self.src, self._scale, self._zp, self.values)
        elif self.mode == 2:
            np.copyto(self.values, self.src, casting="unsafe")
        return self.values


class ClassificationPolicy:
    """Top-1 class of the first output (logits) → ``actions[class]``. Below ``min_confidence`` (softmax probability)
    the decision is ``low_confidence_action`` (default: keep the top class)."""

    command_size = 0

    def __init__(
        self, actions: Sequence[str], *, min_confidence: float = 0.0, low_confidence_action: str | None = None
    ) -> None:
        self.actions = tuple(str(a) for a in actions)
        if not self.actions:
            raise ConfigError("policy.actions: expected a non-empty list of action names, got []")
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"policy.min_confidence: expected a number in [0, 1], got {min_confidence!r}")
        if low_confidence_action is not None and low_confidence_action not in self.actions:
            raise ConfigError(
                f"policy.low_confidence_action: expected one of {list(self.actions)}, got {low_confidence_action!r}"
            )
        self.min_confidence = float(min_confidence)
        self.low_action = -1 if low_confidence_action is None else self.actions.index(low_confidence_action)

    def bind(self, model: Model) -> _BoundClassification:
        return _BoundClassification(self, model.outputs[0], model.output_buffers[0])


class _BoundClassification:
    def __init__(self, policy: ClassificationPolicy, spec: TensorSpec, buf: np.ndarray) -> None:
        self.p = policy
        self.deq = _Dequant(spec, buf)
        k = self.deq.values.shape[1]
        if k != len(policy.actions):
            raise ConfigError(
                f"policy.actions: expected {k} names (one per class of {spec.describe()}), got {len(policy.actions)}"
            )
        self.probs = np.zeros((1, k), np.float32)
        self.top_idx = np.zeros((1, 1), np.int64)
        self.top_val = np.zeros((1, 1), np.float32)

    def postprocess(self) -> bool:
        kernels.softmax_topk(self.deq.read(), self.probs, self.top_idx, self.top_val)
        return math.isfinite(self.top_val.item(0))  # NaN/inf logits make the row's probabilities NaN

    def decide(self, outputs: tuple[np.ndarray, ...], decision: Decision) -> bool:
        conf = self.top_val.item(0)
        cls = self.top_idx.item(0)
        p = self.p
        if conf < p.min_confidence and p.low_action >= 0:
            cls = p.low_action
        decision.action = cls
        decision.label = p.actions[cls]
        decision.confidence = conf
        return True


class RegressionPolicy:
    """The first output's values (``size`` of them) → ``command``, clamped to ``[lo, hi]`` per element and
    rate-limited to ``max_rate`` units per second (``rate_hz`` gives the frame period), relative to the last
    delivered command."""

    def __init__(
        self,
        size: int,
        *,
        lo: Sequence[float] | float | None = None,
        hi: Sequence[float] | float | None = None,
        max_rate: Sequence[float] | float | None = None,
        rate_hz: float = 1.0,
    ) -> None:
        self.command_size = int(size)
        if self.command_size < 1:
            raise ConfigError(f"policy.size: expected an integer >= 1, got {size!r}")
        self.lo = self._vec("policy.min", lo, -np.inf)
        self.hi = self._vec("policy.max", hi, np.inf)
        if np.any(self.lo > self.hi):
            raise ConfigError(f"policy.min/max: expected min <= max, got {self.lo.tolist()} > {self.hi.tolist()}")
        rate = self._vec("policy.max_rate", max_rate, np.inf)
        if np.any(rate <= 0):
            raise ConfigError(f"policy.max_rate: expected values > 0 (units per second), got {rate.tolist()}")
        self.max_step = rate / float(rate_hz)
        self.min_step = -self.max_step

    def _vec(self, key: str, v: Sequence[float] | float | None, default: float) -> np.ndarray:
        if v is None:
            return np.full(self.command_size, default, np.float64)
        arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
        if arr.size == 1:
            arr = np.repeat(arr, self.command_size)
        if arr.shape != (self.command_size,) or np.any(np.isnan(arr)):
            raise ConfigError(f"{key}: expected 1 or {self.command_size} numbers, got {np.asarray(v).tolist()}")
        return arr

    def bind(self, model: Model) -> _BoundRegression:
        return _BoundRegression(self, model.outputs[0], model.output_buffers[0])


class _BoundRegression:
    def __init__(self, policy: RegressionPolicy, spec: TensorSpec, buf: np.ndarray) -> None:
        self.p = policy
        self.deq = _Dequant(spec, buf)
        n = self.deq.values.shape[1]
        if n < policy.command_size:
            raise ConfigError(
                f"policy.size: expected at most {n} (the values of {spec.describe()}), got {policy.command_size}"
            )
        self.vals = self.deq.values[0, : policy.command_size]
        self.mask = np.zeros(policy.command_size, np.bool_)
        self.step = np.zeros(policy.command_size, np.float64)

    def postprocess(self) -> bool:
        self.deq.read()
        np.isfinite(self.vals, out=self.mask)
        return bool(self.mask.all())

    def decide(self, outputs: tuple[np.ndarray, ...], decision: Decision) -> bool:
        p = self.p
        vals = self.vals
        cmd = decision.command  # still holds the last delivered command
        np.subtract(vals, cmd, out=self.step)
        np.clip(self.step, p.min_step, p.max_step, out=self.step)
        np.add(cmd, self.step, out=cmd)
        np.clip(cmd, p.lo, p.hi, out=cmd)
        decision.confidence = math.nan
        return True


class CallablePolicy:
    """A user policy: ``fn(outputs, decision) -> bool | None`` on the loop thread (writes the decision in place;
    return False for invalid outputs). It must not block and should not allocate per frame."""

    def __init__(self, fn: Callable[[tuple[np.ndarray, ...], Decision], Any], command_size: int = 0) -> None:
        if not callable(fn):
            raise ConfigError(f"policy: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.command_size = int(command_size)

    def bind(self, model: Model) -> CallablePolicy:
        return self

    def postprocess(self) -> bool:
        return True

    def decide(self, outputs: tuple[np.ndarray, ...], decision: Decision) -> bool:
        return self.fn(outputs, decision) is not False
