"""The interface every sensor source implements, and a base class for sources that run one thread.

A source feeds one or more :class:`~edge.loop.sensors.SensorSlot`s from its own thread (a decoder, a camera, a DDS
reader): it converts what arrives into the slot's shape and dtype and calls ``slot.push(value, capture_ns)`` with
the capture time on the loop's clock. The loop thread never calls into a source.

Life cycle: construct (checks the configuration, raises :class:`~edge.errors.ConfigError` naming the source) →
:meth:`SensorSource.start` (opens the device/file/topic; a missing or busy one raises ``ConfigError`` or
:class:`~edge.errors.SensorFault` naming it, before the loop runs) → :meth:`SensorSource.stop` (the thread ends,
bounded) → :meth:`SensorSource.close` (releases everything; idempotent, also after a failed start).

At run time a source never raises into the loop: bad input is counted in :attr:`SensorSource.stats`
(``errors``, ``last_error``) and logged rate-limited; the slot simply goes stale and the loop's fallback applies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["SensorSource", "SourceStats", "SourceThread"]

log = logging.getLogger("edge.io")
_LOGGED_ERRORS = 5  # the first few run-time errors of a source are logged, then only counted


@dataclass
class SourceStats:
    """Counters of one source, cumulative since start (written by the source's thread, read by anyone).

    * ``delivered``: values pushed into slots;
    * ``dropped``: values received or decoded but not pushed on purpose (``drop_probability``, a newer value
      superseded them, a full queue);
    * ``errors``: values or reads rejected as bad (undecodable, wrong size/encoding, device error);
    * ``last_error``: the message of the latest error (``None`` before the first).
    """

    delivered: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str | None = None


@runtime_checkable
class SensorSource(Protocol):
    """What the device service needs of a source (video, camera, MCAP replay, ROS 2 subscription, ...)."""

    name: str  # for messages: the source kind and what it reads, e.g. "video 'front' (clip.mp4)"
    stats: SourceStats

    def start(self) -> None:
        """Open the input and start feeding the slots; raise ``ConfigError``/``SensorFault`` naming the input
        when it cannot be opened. Returns without waiting for the first value."""
        ...

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop feeding (the thread ends within ``timeout_s`` s); the slots keep their last values."""
        ...

    def close(self) -> None:
        """Stop if running and release the input (file, device, DDS participant). Idempotent."""
        ...


class SourceThread:
    """A :class:`SensorSource` run by one daemon thread: subclasses implement :meth:`_open` (on the caller's
    thread, in :meth:`start`: raise there for a missing input), :meth:`_run` (the thread's body; return when
    :attr:`_stopping` is set) and optionally :meth:`_release` (on :meth:`close`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SourceStats()
        # robot I/O recording: also hand each pushed value to this (on the source's thread); set before start()
        self.tee: Callable[[np.ndarray, int], None] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._open()
        self._thread = threading.Thread(target=self._body, name=f"edge-io {self.name}", daemon=True)
        self._thread.start()

    def _body(self) -> None:
        try:
            self._run()
        except Exception as exc:  # never silently: the slot goes stale, the error is counted and logged
            self.error(f"stopped: {exc}")
            log.exception("%s: source thread stopped", self.name)

    def error(self, message: str) -> None:
        """Count a run-time error (logged for the first few, then only counted)."""
        self.stats.errors += 1
        self.stats.last_error = message
        if self.stats.errors <= _LOGGED_ERRORS:
            log.warning("%s: %s", self.name, message)

    @property
    def running(self) -> bool:
        """True while the source's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread to end by itself (a finite input without ``loop``); True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s: thread did not stop within %.1f s", self.name, timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._release()

    # ---------------------------------------------------------------------------------------- to implement

    def _open(self) -> None:
        """Open the input (caller's thread); raise ConfigError/SensorFault naming it when it cannot be."""

    def _run(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Release what :meth:`_open` acquired (after the thread has stopped)."""
