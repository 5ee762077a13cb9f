"""The loop's settings in groups, as :class:`~edge.loop.runner.Loop` takes them: :class:`Timing` (the schedule) and
:class:`Inputs` (which sensor feeds the model and how). The other groups live beside what they configure:
:class:`~edge.loop.health.FallbackConfig` and :class:`~edge.loop.swap.SwapSettings`.

Each is a frozen dataclass with defaults for every field; a bad value raises :class:`ConfigError` naming
``<group>.<field>``, what was expected and what arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edge.errors import ConfigError
from edge.loop.feeds import InputBinding
from edge.loop.pipeline import PreprocessSpec
from edge.loop.sensors import SensorSync

__all__ = ["Inputs", "Timing"]


def _positive(key: str, v: object, optional: bool = False) -> None:
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ConfigError(f"{key}: expected a number > 0{' or None' if optional else ''}, got {v!r}")


@dataclass(frozen=True)
class Timing:
    """The schedule: ``rate_hz`` (frames per s); ``deadline_ms`` (a frame's deadline, default one period);
    ``start_ns`` (the first tick on the loop's clock; default: the clock's time at the first frame);
    ``stage_budgets_us`` (optional per-stage budgets in µs by :data:`~edge.contracts.STAGES` name: a stage over
    its budget is counted and flagged ``DEADLINE_MISS`` in the record, but only the frame deadline makes the
    decision a fallback)."""

    rate_hz: float = 30.0
    deadline_ms: float | None = None
    start_ns: int | None = None
    stage_budgets_us: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        _positive("timing.rate_hz", self.rate_hz)
        _positive("timing.deadline_ms", self.deadline_ms, optional=True)
        if self.start_ns is not None and (isinstance(self.start_ns, bool) or not isinstance(self.start_ns, int)):
            raise ConfigError(f"timing.start_ns: expected an integer (clock ns) or None, got {self.start_ns!r}")
        budgets = self.stage_budgets_us
        if budgets is not None:
            if not isinstance(budgets, Mapping):
                raise ConfigError(f"timing.stage_budgets_us: expected a mapping of stage name to µs, got {budgets!r}")
            object.__setattr__(self, "stage_budgets_us", MappingProxyType(dict(budgets)))


@dataclass(frozen=True)
class Inputs:
    """What feeds the model: ``primary`` names the primary sensor (a uint8 ``(H, W, C)`` camera, or any other slot
    for a non-image model; default: the first sensor), ``frame_order`` a camera's channel order (e.g. ``"RGB"``),
    ``preprocess`` overrides the package's preprocessing, ``sync`` says how the other sensors must line up with it,
    and ``bindings`` (``{model input name: InputBinding}``, the ``[model.inputs.*]`` tables) feeds each model input
    from a sensor slot or a constant (empty: the model's one input is fed by the primary sensor)."""

    primary: str | None = None
    frame_order: str = "RGB"
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    sync: SensorSync = field(default_factory=SensorSync)
    bindings: Mapping[str, InputBinding] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary is not None and not isinstance(self.primary, str):
            raise ConfigError(f"inputs.primary: expected a sensor name or None, got {self.primary!r}")
        if not isinstance(self.frame_order, str) or not self.frame_order:
            raise ConfigError(f"inputs.frame_order: expected a channel order such as 'RGB', got {self.frame_order!r}")
        if not isinstance(self.preprocess, PreprocessSpec):
            raise ConfigError(f"inputs.preprocess: expected a PreprocessSpec, got {self.preprocess!r}")
        if not isinstance(self.sync, SensorSync):
            raise ConfigError(f"inputs.sync: expected a SensorSync, got {self.sync!r}")
        if not isinstance(self.bindings, Mapping) or not all(
            isinstance(b, InputBinding) for b in self.bindings.values()
        ):
            raise ConfigError(
                f"inputs.bindings: expected a mapping of input name to InputBinding, got {self.bindings!r}"
            )
        object.__setattr__(self, "bindings", MappingProxyType(dict(self.bindings)))
