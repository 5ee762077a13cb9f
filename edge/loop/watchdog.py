"""The watchdog: its own thread on the monotonic wall clock; when the loop thread has completed no frame for
``timeout_ns`` it delivers the safe-stop decision through its own sinks (never the loop's, whose thread is stuck).

It fires once per hang and re-arms when the loop completes a frame again; :attr:`Watchdog.trips` counts the hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.contracts import FALLBACK, Health
from edge.errors import ConfigError
from edge.loop.decision import Decision
from edge.loop.sinks import DecisionSink

__all__ = ["Watchdog", "attach_watchdog"]

log = logging.getLogger("edge.loop")


class Watchdog:
    """Watches ``progress()`` (a counter the loop bumps every completed frame) while ``armed()`` is true.

    ``safe`` is the safe-stop decision to deliver (copied into the watchdog's own :class:`Decision`); ``sinks``
    belong to the watchdog thread (e.g. a callable, or a ZeroMQ PUB on its own endpoint).
    """

    def __init__(
        self,
        timeout_ns: int,
        progress: Callable[[], int],
        armed: Callable[[], bool],
        safe: Decision,
        sinks: Sequence[DecisionSink] = (),
    ) -> None:
        if timeout_ns <= 0:
            raise ConfigError(f"watchdog.timeout_ms: expected a number > 0, got {timeout_ns / 1e6!r}")
        self.timeout_ns = int(timeout_ns)
        self.sinks = list(sinks)
        self._progress, self._armed = progress, armed
        self.decision = Decision(len(safe.command), source="watchdog")
        self.decision.copy_from(safe)
        self.decision.health = Health.SAFE_STOP
        self.decision.flags = FALLBACK
        self.decision.fallback = True
        self.trips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="edge-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def _watch(self) -> None:
        last, since, tripped = self._progress(), time.monotonic_ns(), False
        poll_s = min(self.timeout_ns / 4e9, 0.05)
        while not self._stop.wait(poll_s):
            now, seen = time.monotonic_ns(), self._progress()
            if seen != last or not self._armed():
                last, since, tripped = seen, now, False
                continue
            if not tripped and now - since > self.timeout_ns:
                tripped = True
                self.trips += 1
                log.error("watchdog: no frame completed for %.0f ms: safe stop", (now - since) / 1e6)
                self.decision.seq = seen
                self.decision.tick_ns = now
                for sink in self.sinks:
                    try:
                        sink.deliver(self.decision)
                    except Exception:
                        log.exception("watchdog: sink %r failed", sink)

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for sink in self.sinks:
            sink.close()


def attach_watchdog(loop: Any, timeout_ms: float, sinks: Sequence[DecisionSink]) -> Watchdog:
    """Start a :class:`Watchdog` on an :class:`~edge.loop.runner.Loop` (armed while its ``run`` runs), delivering
    the loop's safe-stop decision to ``sinks``; the loop closes it."""
    loop.watchdog = Watchdog(
        int(timeout_ms * 1e6), lambda: loop.frames_done, lambda: loop.running, loop.safe, sinks
    ).start()
    return loop.watchdog
