"""Stateful models: outputs carried back into inputs between runs (``state={"stateN": "state"}`` in Python,
``[model.state] stateN = "state"`` in ``device.toml``).

A recurrent model (an audio voice-activity detector, a tracker) returns its next state as an output and takes it
back as an input on the next run. :class:`StateCarry` copies each mapped output buffer into its input buffer right
after every successful run (``np.copyto`` between buffers the model owns: no allocation), and :meth:`StateCarry.reset`
puts the inputs back to zero (the zero point for a quantized input). A mapping that names an unknown tensor or pairs
tensors of different shape or dtype is refused at load with the key and the model's real specs. An output whose
shape is only known after the first run (a dynamic dimension) is checked at that run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.contracts import TensorSpec
from edge.errors import ConfigError, ShapeError

__all__ = ["StateCarry"]


def _fits(out: TensorSpec, inp: TensorSpec) -> bool:
    if out.dtype != inp.dtype or len(out.shape) not in (len(inp.shape), 0):
        return False
    return all(o < 0 or o == i for o, i in zip(out.shape, inp.shape, strict=False))


class StateCarry:
    """The state mapping of one model: ``mapping`` is ``{output name: input name}``; ``key`` prefixes error keys.

    Owns nothing but the index pairs: the buffers are the model's. :meth:`carry` runs on the thread that runs the
    model, after each successful run; :meth:`reset` on the same thread (the loop calls it between frames).
    """

    def __init__(self, model: Any, mapping: Mapping[str, str], key: str = "state") -> None:
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{key}: expected a mapping of output name to input name, got {mapping!r}")
        self.model = model
        self.key = key
        ins = {s.name: i for i, s in enumerate(model.inputs)}
        outs = {s.name: i for i, s in enumerate(model.outputs)}
        in_specs = ", ".join(s.describe() for s in model.inputs)
        out_specs = ", ".join(s.describe() for s in model.outputs)
        pairs: list[tuple[int, int]] = []
        for out_name, in_name in mapping.items():
            k = f"{key}.{out_name}"
            if out_name not in outs:
                raise ConfigError(f"{k}: expected one of the model's outputs ({out_specs}), got {out_name!r}")
            if not isinstance(in_name, str) or in_name not in ins:
                raise ConfigError(f"{k}: expected one of the model's inputs ({in_specs}), got {in_name!r}")
            o, i = model.outputs[outs[out_name]], model.inputs[ins[in_name]]
            if not _fits(o, i):
                raise ShapeError(f"{k}: expected output {o.describe()} to match input {i.describe()} (shape and dtype)")
            if any(i == p[1] for p in pairs):
                raise ConfigError(f"{k}: input {in_name!r} is already fed by another output")
            pairs.append((outs[out_name], ins[in_name]))
        self.pairs = tuple(pairs)
        self.inputs = frozenset(model.inputs[i].name for _, i in pairs)
        self._checked: tuple[np.ndarray, ...] | None = None
        self._srcs: tuple[np.ndarray, ...] = ()
        self._dsts = tuple(model.input_buffers[i] for _, i in pairs)
        self._fill = tuple(model.inputs[i].zero_point or 0 for _, i in pairs)
        self.reset()

    def _bind(self, outputs: tuple[np.ndarray, ...]) -> None:
        """Check the output buffers as they are now (first run, or after a re-bind) and take them."""
        for (o, i), dst in zip(self.pairs, self._dsts, strict=True):
            if outputs[o].shape != dst.shape:
                spec_o, spec_i = self.model.outputs[o], self.model.inputs[i]
                raise ShapeError(
                    f"{self.key}.{spec_o.name}: expected output {spec_o.describe()} to match input {spec_i.describe()}"
                )
        self._srcs = tuple(outputs[o] for o, _ in self.pairs)
        self._checked = outputs

    def carry(self) -> None:
        """Copy every mapped output into its input (after a successful run). Allocation-free in steady state."""
        outputs = self.model.output_buffers
        if outputs is not self._checked:
            self._bind(outputs)
        for src, dst in zip(self._srcs, self._dsts, strict=True):
            np.copyto(dst, src)

    def reset(self) -> None:
        """State inputs back to zero (the zero point when quantized)."""
        for dst, fill in zip(self._dsts, self._fill, strict=True):
            dst.fill(fill)
