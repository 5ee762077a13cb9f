"""Clocks the loop runs on: the monotonic wall clock on a device, a lockstep clock in the simulator and tests.

Every time in the loop is an integer count of nanoseconds from the clock's own epoch. A clock has two methods:
``now_ns()`` and ``sleep_until(deadline_ns)``; the loop never reads another time source, so a lockstep run is
deterministic (the same seed gives the same decisions at the same clock times, however fast the CPU is).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "LockstepClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """What the loop needs of a clock. Times are integer nanoseconds."""

    def now_ns(self) -> int:
        """The current time (ns)."""
        ...

    def sleep_until(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` or as soon after as possible; return at once if it has passed."""
        ...


class MonotonicClock:
    """``time.monotonic_ns`` with a sleep that overshoots little: a coarse ``time.sleep`` to within ``spin_ns`` of
    the deadline, then a short spin on the clock (which only costs CPU for those last ``spin_ns``)."""

    def __init__(self, spin_ns: int = 200_000) -> None:
        if spin_ns < 0:
            raise ValueError(f"spin_ns: expected >= 0, got {spin_ns}")
        self.spin_ns = spin_ns

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining > self.spin_ns:
            time.sleep((remaining - self.spin_ns) * 1e-9)
        while time.monotonic_ns() < deadline_ns:
            pass


class LockstepClock:
    """A clock that only moves when told: ``sleep_until`` jumps to the deadline, ``advance`` charges time to
    whatever is running (a test's slow model, the simulator's compute-cost model).

    Thread-safe, so a watchdog or the simulator may read it from another thread; ``sleep_until`` from a second
    thread never moves time backwards.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self._now

    def sleep_until(self, deadline_ns: int) -> None:
        with self._lock:
            if deadline_ns > self._now:
                self._now = int(deadline_ns)

    def advance(self, dt_ns: int) -> None:
        """Move time forward by ``dt_ns`` (ns, >= 0)."""
        if dt_ns < 0:
            raise ValueError(f"advance: expected dt_ns >= 0, got {dt_ns}")
        with self._lock:
            self._now += int(dt_ns)
