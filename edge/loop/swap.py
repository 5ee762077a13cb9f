"""Hot-swap: a new model package is verified, loaded, bound and warmed off the loop thread, then handed to the
loop as one reference; the loop adopts it between two frames and keeps the previous model on probation.

:class:`SwapTicket` is what :meth:`edge.loop.runner.Loop.swap` returns: its :attr:`SwapTicket.state` moves
``loading`` → ``staged`` (ready; the loop adopts it at its next frame) → ``adopted`` → ``kept`` (``probation_frames``
frames after adoption) or ``rolled_back`` (``failure_frames`` consecutive frames of model faults or invalid outputs:
the previous model is restored). A package that fails verification or loading ends ``refused`` (with ``error``) and
the running model keeps going.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SwapTicket", "start_swap"]

log = logging.getLogger("edge.loop")


class SwapTicket:
    """The progress of one swap (thread-safe to read). ``stage`` is the bound model once staged."""

    STATES = ("loading", "staged", "refused", "adopted", "kept", "rolled_back")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = "loading"
        self.error: str | None = None
        self.stage: Any = None
        self._ready = threading.Event()  # staged or refused
        self._final = threading.Event()  # refused, kept or rolled_back
        self._thread: threading.Thread | None = None

    def wait_ready(self, timeout: float | None = None) -> str:
        """Block until the package is staged or refused (or ``timeout`` s pass); return the state."""
        self._ready.wait(timeout)
        return self.state

    def wait(self, timeout: float | None = None) -> str:
        """Block until the swap is settled (refused, kept or rolled back) or ``timeout`` s pass; return the state."""
        self._final.wait(timeout)
        return self.state

    def _set(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.error = error
        if state in ("staged", "refused"):
            self._ready.set()
        if state in ("refused", "kept", "rolled_back"):
            self._ready.set()
            self._final.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def __repr__(self) -> str:
        return f"<SwapTicket {self.path} {self.state}{': ' + self.error if self.error else ''}>"


def start_swap(path: Path, build: Callable[[Path], Any], hand_off: Callable[[SwapTicket], None]) -> SwapTicket:
    """Start a background thread that runs ``build(path)`` (verify + load + bind + warm; may raise) and then calls
    ``hand_off(ticket)`` with the ticket staged or refused. Returns the ticket at once."""
    ticket = SwapTicket(Path(path))

    def work() -> None:
        try:
            ticket.stage = build(ticket.path)
        except Exception as exc:  # any failure refuses the package; the running model is untouched
            log.warning("swap: %s refused: %s", ticket.path, exc)
            ticket.error = f"{type(exc).__name__}: {exc}"
            hand_off(ticket)
            ticket._set("refused")
            return
        ticket._set("staged")
        hand_off(ticket)

    ticket._thread = threading.Thread(target=work, name="edge-swap", daemon=True)
    ticket._thread.start()
    return ticket
