"""Hot-swap: a new model package is verified, loaded, bound and warmed off the loop thread, then handed to the
loop as one reference; the loop adopts it between two frames and keeps the previous model on probation.

:class:`SwapTicket` is what :meth:`edge.loop.runner.Loop.swap` returns: its :attr:`SwapTicket.state` moves
``loading`` → ``staged`` (ready; the loop adopts it at its next frame) → ``adopted`` → ``kept`` (``probation_frames``
frames after adoption) or ``rolled_back`` (``failure_frames`` consecutive frames of model faults or invalid outputs:
the previous model is restored). A package that fails verification or loading ends ``refused`` (with ``error``) and
the running model keeps going.

:class:`HotSwap` is that state machine: the loop calls it between two frames (adoption) and after each frame
(probation, failure counting, rollback); :class:`SwapSettings` holds its rule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge.errors import ConfigError

__all__ = ["HotSwap", "SwapSettings", "SwapTicket", "start_swap"]

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


@dataclass(frozen=True)
class SwapSettings:
    """The rollback rule and how packages are loaded.

    * ``failure_frames``: consecutive frames of model faults or invalid outputs after adoption that restore the
      previous model (>= 1);
    * ``probation_frames``: frames after adoption that keep the new model for good (>= 1);
    * ``load_options``: keyword arguments for :func:`edge.models.load_model` (``threads``, ``providers``, ...) used
      for every package the loop loads (the first model given as a path, swaps, the shadow).
    """

    failure_frames: int = 3
    probation_frames: int = 30
    load_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("failure_frames", "probation_frames"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"swap.{key}: expected an integer >= 1, got {v!r}")
        if not isinstance(self.load_options, Mapping):
            raise ConfigError(
                f"swap.load_options: expected a mapping of load_model keywords, got {self.load_options!r}"
            )
        object.__setattr__(self, "load_options", MappingProxyType(dict(self.load_options)))


class HotSwap:
    """The swap/rollback state machine the loop calls at two fixed points of every frame.

    ``set_stage(stage)`` makes a stage live (the loop points the frame record at its buffers and rebinds taps);
    ``event(kind, fields)`` reports ``swap`` and ``rollback`` events. The loop calls :meth:`between_frames` before
    a frame (adopts a staged package: the only moment the live stage changes) and :meth:`after_frame` after it
    (counts probation frames and faults; rolls back). Neither allocates unless a swap is adopted or settled.
    """

    def __init__(
        self,
        settings: SwapSettings,
        set_stage: Callable[[Any], None],
        event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.settings = settings
        self._set_stage, self._event = set_stage, event
        self.ticket: SwapTicket | None = None  # the latest swap (in progress or settled)
        self._handoff: SwapTicket | None = None  # set by the swap thread: one reference
        self.previous: Any = None  # the stage to restore while the new one is on probation
        self._adopted: Any = None  # the stage on probation
        self._probation = 0
        self._faults = 0

    @property
    def on_probation(self) -> bool:
        """True between adoption and the swap's settling (kept or rolled back)."""
        return self.previous is not None

    def start(self, package: Path, build: Callable[[Path], Any]) -> SwapTicket:
        """Start loading ``package`` with ``build`` (verify + load + bind + warm) in a background thread."""
        if self.ticket is not None and self.ticket.state in ("loading", "staged", "adopted"):
            raise ConfigError(f"swap: expected no swap in progress, got {self.ticket!r}")
        self.ticket = start_swap(Path(package), build, self._hand_off)
        return self.ticket

    def _hand_off(self, ticket: SwapTicket) -> None:
        self._handoff = ticket

    def between_frames(self, live: Any) -> None:
        """Adopt a staged package (``live``: the stage running now, kept for rollback) or report a refused one."""
        ticket = self._handoff
        if ticket is None:
            return
        self._handoff = None
        if ticket.state == "refused" or ticket.stage is None:
            self._event("swap", {"ok": False, "package": str(ticket.path), "error": ticket.error})
            return
        self.previous, self._adopted = live, ticket.stage
        self._probation, self._faults = self.settings.probation_frames, 0
        self._set_stage(ticket.stage)
        ticket._set("adopted")
        self._event("swap", {"ok": True, "package": str(ticket.path), "from": live.version, "to": ticket.stage.version})

    def after_frame(self, ran: bool, model_fault: bool) -> None:
        """Count one frame of probation: ``ran`` when the model was run, ``model_fault`` when it failed. Frames the
        model did not run on (a stale sensor) count for nothing."""
        if self.previous is None or not (ran or model_fault):
            return
        if not model_fault:
            self._faults = 0
        else:
            self._faults += 1
            if self._faults >= self.settings.failure_frames:
                self._roll_back()
                return
        self._probation -= 1
        if self._probation <= 0:
            self.previous = self._adopted = None
            if self.ticket is not None:
                self.ticket._set("kept")

    def _roll_back(self) -> None:
        previous, bad, ticket = self.previous, self._adopted, self.ticket
        self.previous = self._adopted = None
        self._probation = 0
        self._set_stage(previous)
        if ticket is not None:
            ticket._set("rolled_back", f"{self.settings.failure_frames} consecutive failed frames")
        self._event("rollback", {"from": bad.version, "to": previous.version, "failed_frames": self._faults})

    def close(self, timeout: float = 30) -> None:
        """Wait (up to ``timeout`` s) for a swap thread still loading."""
        if self.ticket is not None:
            self.ticket.join(timeout=timeout)
