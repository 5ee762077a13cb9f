"""The fixed-rate schedule: absolute ticks (``next += period``), overruns counted, skip-ahead instead of bursting.

A :class:`Schedule` never drifts: tick ``n`` is ``start_ns + n * period_ns`` whatever the frames cost. When a frame
ends after the next tick, the ticks already in the past are *skipped* (counted in :attr:`Schedule.overruns`) and
the schedule resumes at the first tick still in the future, so a slow frame never causes a burst of catch-up frames.

:func:`apply_realtime` pins the calling thread to CPUs and asks for ``SCHED_FIFO``; where the process is not allowed
(no ``CAP_SYS_NICE``, a container), it logs the reason and carries on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from edge.contracts import DEADLINE_MISS, STAGES
from edge.errors import ConfigError
from edge.loop.clock import Clock

__all__ = ["Schedule", "StageBudgets", "apply_realtime"]

log = logging.getLogger("edge.loop")


class Schedule:
    """Ticks every ``period_ns`` on ``clock`` from ``start_ns`` (default: the clock's time when built).

    ``deadline_ns`` (default: one period) is the longest a frame may take from its tick to its decision.
    """

    __slots__ = ("clock", "deadline_ns", "next_ns", "overruns", "period_ns", "ticks")

    def __init__(self, clock: Clock, rate_hz: float, *, deadline_ns: int | None = None, start_ns: int | None = None):
        if not isinstance(rate_hz, int | float) or not rate_hz > 0:
            raise ConfigError(f"loop.rate_hz: expected a number > 0, got {rate_hz!r}")
        self.clock = clock
        self.period_ns = round(1e9 / rate_hz)
        if self.period_ns < 1:
            raise ConfigError(f"loop.rate_hz: expected a period of at least 1 ns, got {rate_hz!r} Hz")
        self.deadline_ns = self.period_ns if deadline_ns is None else int(deadline_ns)
        if self.deadline_ns <= 0:
            raise ConfigError(f"loop.deadline_ms: expected a number > 0, got {self.deadline_ns / 1e6!r}")
        self.next_ns = clock.now_ns() if start_ns is None else int(start_ns)
        self.overruns = 0  # ticks skipped because a frame ended after them (cumulative)
        self.ticks = 0  # frames started (cumulative)

    def wait(self) -> int:
        """Sleep until the next tick and return it (clock ns)."""
        tick = self.next_ns
        self.clock.sleep_until(tick)
        self.ticks += 1
        return tick

    def finish(self, end_ns: int) -> int:
        """Book a frame that ended at ``end_ns``: schedule the next tick, skipping (and counting) every tick that
        is already past. Returns the number of ticks skipped (0 on time)."""
        nxt = self.next_ns + self.period_ns
        if end_ns <= nxt:
            self.next_ns = nxt
            return 0
        skipped = (end_ns - nxt) // self.period_ns + 1
        self.next_ns = nxt + skipped * self.period_ns
        self.overruns += skipped
        return skipped


class StageBudgets:
    """Per-stage time budgets (µs, by :data:`~edge.contracts.STAGES` name) over a frame's ``stage_us`` array.

    :meth:`check_stages` (before the decision is delivered) and :meth:`check_total` (after, when "total" is known)
    count the stages over budget in :attr:`overruns` (int64, ``STAGES`` order) and return ``DEADLINE_MISS`` when
    any is, else 0. Allocation-free.
    """

    def __init__(self, budgets_us: Mapping[str, float], stage_us: np.ndarray) -> None:
        self.budgets_us = np.full(len(STAGES), np.inf)
        for name, budget in budgets_us.items():
            if name not in STAGES:
                raise ConfigError(f"loop.budgets_ms.{name}: expected a stage in {list(STAGES)}, got {name!r}")
            if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0:
                raise ConfigError(f"loop.budgets_ms.{name}: expected a number > 0, got {budget!r}")
            self.budgets_us[STAGES.index(name)] = budget
        self.overruns = np.zeros(len(STAGES), np.int64)
        over = np.zeros(len(STAGES), np.bool_)
        n = len(STAGES) - 1  # "total" is last
        self._parts = (stage_us[:n], self.budgets_us[:n], over[:n], self.overruns[:n])
        self._total = (stage_us[n:], self.budgets_us[n:], over[n:], self.overruns[n:])

    @staticmethod
    def _check(part: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> int:
        stage_us, budget, over, count = part
        np.greater(stage_us, budget, out=over)
        if not over.any():
            return 0
        np.add(count, over, out=count, casting="unsafe")
        return DEADLINE_MISS

    def check_stages(self) -> int:
        """Book every stage but "total"."""
        return self._check(self._parts)

    def check_total(self) -> int:
        """Book "total" (tick → decision delivered)."""
        return self._check(self._total)


def apply_realtime(cpus: Sequence[int] | None = None, fifo_priority: int = 0) -> list[str]:
    """Pin the calling thread to ``cpus`` and/or give it ``SCHED_FIFO`` at ``fifo_priority`` (1-99; 0 = leave it).

    Returns what was applied, one line each; what was refused is logged at WARNING with the reason and skipped.
    """
    applied: list[str] = []
    if cpus:
        try:
            os.sched_setaffinity(0, set(cpus))
            applied.append(f"affinity {sorted(set(cpus))}")
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("loop: CPU affinity %s not applied: %s", list(cpus), exc)
    if fifo_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(fifo_priority)))
            applied.append(f"SCHED_FIFO priority {fifo_priority}")
        except (OSError, AttributeError) as exc:
            reason = (
                "not permitted (needs CAP_SYS_NICE or an rtprio limit)" if isinstance(exc, PermissionError) else exc
            )
            log.warning("loop: SCHED_FIFO priority %d not applied: %s", fifo_priority, reason)
    for line in applied:
        log.info("loop: real-time: %s", line)
    return applied
