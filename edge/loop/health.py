"""Health: a small state machine (OK → DEGRADED → SAFE_STOP, and back after good frames) and the fallback rule.

Every frame the loop reports the frame's fault bits (:data:`FAULTS`: deadline miss, stale or invalid sensor, model
fault). :meth:`HealthMonitor.update` answers what to deliver:

* no fault: the model's decision (:data:`USE_MODEL`) — except in SAFE_STOP, which holds the safe stop until
  ``recover_frames`` consecutive good frames have passed;
* a fault, for up to ``hold_frames`` consecutive faulty frames and with a good decision to hold: the last good
  decision (:data:`HOLD_LAST`), health DEGRADED;
* beyond that (or with nothing to hold): the safe stop (:data:`SAFE_STOP`), health SAFE_STOP.

Recovery: ``recover_frames`` consecutive good frames bring DEGRADED or SAFE_STOP back to OK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.contracts import DEADLINE_MISS, INVALID_SENSOR, MODEL_FAULT, STALE_SENSOR, Health
from edge.errors import ConfigError
from edge.loop.decision import Decision

__all__ = [
    "FAULTS",
    "HOLD_LAST",
    "SAFE_STOP",
    "USE_MODEL",
    "FallbackConfig",
    "HealthMonitor",
    "reasons",
    "safe_decision",
]

FAULTS = DEADLINE_MISS | STALE_SENSOR | INVALID_SENSOR | MODEL_FAULT
USE_MODEL, HOLD_LAST, SAFE_STOP = 0, 1, 2
_REASON_NAMES = (
    (DEADLINE_MISS, "deadline_miss"),
    (STALE_SENSOR, "stale_sensor"),
    (INVALID_SENSOR, "invalid_sensor"),
    (MODEL_FAULT, "model_fault"),
)


def reasons(flags: int) -> list[str]:
    """The fault names in ``flags`` (allocates: for events and logs only)."""
    return [name for bit, name in _REASON_NAMES if flags & bit]


@dataclass(frozen=True)
class FallbackConfig:
    """``hold_frames``: faulty frames for which the last good decision is held (0: safe stop at once);
    ``recover_frames``: consecutive good frames to return to OK; ``safe_action``: the action name of the safe stop
    (classification; must be one of the policy's actions); ``safe_command``: the command of the safe stop
    (regression; one value per command element, default zeros)."""

    hold_frames: int = 3
    recover_frames: int = 5
    safe_action: str | None = None
    safe_command: tuple[float, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for key in ("hold_frames", "recover_frames"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if key == "recover_frames" else 0):
                lo = 1 if key == "recover_frames" else 0
                raise ConfigError(f"fallback.{key}: expected an integer >= {lo}, got {v!r}")


class HealthMonitor:
    """The health state machine. ``state`` is a :class:`Health` value; ``cause`` the fault bits that drove the last
    transition into DEGRADED/SAFE_STOP."""

    __slots__ = ("cause", "faulty_run", "good_run", "hold_frames", "recover_frames", "state")

    def __init__(self, config: FallbackConfig) -> None:
        self.hold_frames = config.hold_frames
        self.recover_frames = config.recover_frames
        self.state = Health.OK
        self.faulty_run = 0  # consecutive faulty frames
        self.good_run = 0  # consecutive good frames
        self.cause = 0

    def update(self, faults: int, can_hold: bool) -> int:
        """Book one frame with fault bits ``faults``; return USE_MODEL, HOLD_LAST or SAFE_STOP. Allocation-free."""
        if faults & FAULTS:
            self.faulty_run += 1
            self.good_run = 0
            self.cause = faults & FAULTS
            if self.state != Health.SAFE_STOP and can_hold and self.faulty_run <= self.hold_frames:
                self.state = Health.DEGRADED
                return HOLD_LAST
            self.state = Health.SAFE_STOP
            return SAFE_STOP
        self.faulty_run = 0
        self.good_run += 1
        if self.state != Health.OK and self.good_run >= self.recover_frames:
            self.state = Health.OK
            self.cause = 0
            return USE_MODEL
        return SAFE_STOP if self.state == Health.SAFE_STOP else USE_MODEL


def safe_decision(config: FallbackConfig, actions: Sequence[str], command_size: int) -> Decision:
    """The safe-stop decision: ``safe_action`` (one of the policy's ``actions``) and/or ``safe_command``."""
    d = Decision(command_size)
    if config.safe_action is not None:
        if config.safe_action not in actions:
            raise ConfigError(f"fallback.safe_action: expected one of {list(actions)}, got {config.safe_action!r}")
        d.action, d.label = list(actions).index(config.safe_action), config.safe_action
    if config.safe_command:
        if len(config.safe_command) != command_size:
            raise ConfigError(f"fallback.safe_command: expected {command_size} values, got {list(config.safe_command)}")
        d.command[:] = config.safe_command
    return d
