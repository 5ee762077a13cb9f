"""What feeds each model input: a sensor slot or a constant (``[model.inputs.<input name>]`` in ``device.toml``).

* An image slot (uint8 ``(H, W, C)``) feeds an image input through the preprocessing kernel (see
  :mod:`edge.loop.pipeline`).
* Any other slot — an audio frame, an IMU window, a range scan — feeds an input with as many elements through a
  declared normalisation ``x * scale + offset`` (:class:`VectorFeed`), cast to the input's dtype.
* ``value`` is a constant (a sample rate, a threshold), written into the input once when the model is bound.

Inputs carried from outputs (``[model.state]``) are fed by the model itself and take no binding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.contracts import TensorSpec
from edge.errors import ConfigError

__all__ = ["InputBinding", "VectorFeed", "fill_constant", "resolve_bindings"]


@dataclass(frozen=True)
class InputBinding:
    """One model input's source: ``sensor`` (a slot name) with ``scale``/``offset`` for non-image slots, or a
    constant ``value`` (a number or a nested list the input's shape accepts by broadcasting)."""

    sensor: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    value: Any = None

    def check(self, key: str) -> None:
        if (self.sensor is None) == (self.value is None):
            raise ConfigError(
                f"{key}: expected exactly one of sensor (a sensor name) or value (a constant), got {self}"
            )
        for name in ("scale", "offset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{key}.{name}: expected a finite number, got {v!r}")


def resolve_bindings(
    model: Any, bindings: Mapping[str, InputBinding] | None, primary: str | None
) -> dict[str, InputBinding]:
    """Check ``bindings`` (``{input name: InputBinding}``) against ``model``'s inputs and return one binding per
    input it must be fed (every input but those carried as state). Without bindings, a model with one such input
    has it fed by the ``primary`` sensor. Errors name ``model.inputs.<input>`` and the model's input specs."""
    bindings = dict(bindings or {})
    carried = getattr(getattr(model, "state", None), "inputs", frozenset())
    specs = ", ".join(s.describe() for s in model.inputs)
    fed = [s for s in model.inputs if s.name not in carried]
    for in_name, b in bindings.items():
        key = f"model.inputs.{in_name}"
        if in_name not in {s.name for s in model.inputs}:
            raise ConfigError(f"{key}: expected one of the model's inputs ({specs}), got unknown input {in_name!r}")
        if in_name in carried:
            raise ConfigError(f"{key}: expected an input not carried as state ([model.state]), got {in_name!r}")
        b.check(key)
    if not bindings:
        if len(fed) != 1:
            raise ConfigError(
                f"model: expected one input fed by the primary sensor, got {len(fed)} inputs to feed ({specs}); "
                "bind each in [model.inputs.<input name>] (sensor = ... or value = ...)"
            )
        return {fed[0].name: InputBinding(sensor=primary or "")}
    missing = [s.describe() for s in fed if s.name not in bindings]
    if missing:
        raise ConfigError(
            f"model.inputs: expected a binding for every model input, got none for {', '.join(missing)} "
            f"(inputs: {specs}); add [model.inputs.<input name>] with sensor = ... or value = ..."
        )
    return bindings


def fill_constant(key: str, spec: TensorSpec, buf: np.ndarray, value: Any) -> None:
    """Write the constant ``value`` into the input buffer ``buf`` (broadcast to its shape, cast to its dtype)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
        if spec.dtype.kind in "iub" and not np.all(arr == np.round(arr)):
            raise ValueError("not an integer")
        buf[...] = np.broadcast_to(arr, buf.shape).astype(spec.dtype)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{key}.value: expected a constant that fits {spec.describe()}, got {value!r} ({exc})"
        ) from None


class VectorFeed:
    """A non-image sensor slot → one model input buffer: ``input = value * scale + offset``, cast to the input's
    dtype. The slot and the input must hold the same number of elements. :meth:`write` allocates nothing; the
    buffer is the model's."""

    def __init__(self, key: str, slot: Any, spec: TensorSpec, buf: np.ndarray, scale: float, offset: float) -> None:
        n = int(np.prod(slot.shape))
        if n != buf.size:
            raise ConfigError(
                f"{key}.sensor: expected a sensor with {buf.size} values for {spec.describe()}, "
                f"got sensor {slot.name!r} of shape {list(slot.shape)} ({n} values)"
            )
        if spec.dtype.kind not in "fiu":
            raise ConfigError(f"{key}: expected a numeric model input, got {spec.describe()}")
        self.slot, self.spec = slot, spec
        self.dst = buf.reshape(slot.shape)  # a view of the model's buffer (contiguous: no copy)
        self.flat = buf.reshape(-1)
        self._scale = None if scale == 1.0 else spec.dtype.type(scale) if spec.dtype.kind == "f" else float(scale)
        self._offset = None if offset == 0.0 else spec.dtype.type(offset) if spec.dtype.kind == "f" else float(offset)
        self._n = float(buf.size)

    def write(self, value: np.ndarray) -> None:
        """The slot's value (read-only view from :meth:`SensorSlot.latest`) into the model input."""
        dst = self.dst
        np.copyto(dst, value, casting="unsafe")
        if self._scale is not None:
            np.multiply(dst, self._scale, out=dst, casting="unsafe")
        if self._offset is not None:
            np.add(dst, self._offset, out=dst, casting="unsafe")

    def stats(self, stats: np.ndarray, column: int) -> None:
        """Mean and standard deviation of the written input into ``stats[:, column]`` (drift sketch features)."""
        flat = self.flat
        mean = float(flat.sum()) / self._n
        sq = float(np.dot(flat, flat)) / self._n if flat.dtype.kind == "f" else float((flat * flat).sum()) / self._n
        stats[0, column] = mean
        stats[1, column] = math.sqrt(max(sq - mean * mean, 0.0))
