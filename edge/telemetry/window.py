"""The window ring: preallocated window sketches handed from the loop thread to the publisher without a lock.

The loop fills the *active* :class:`WindowSlot`; closing a window marks it ``READY`` and moves to the next slot
if the publisher has released it (``FREE``). When every other slot is still waiting for the publisher, the window
is dropped instead: its slot is emptied in place and reused, and ``telemetry_drops`` counts it (reported in the
next window that gets through). States are small ints in a list: one writer per transition (loop: FILLING→READY,
publisher: READY→FREE), so the GIL's atomic list stores are the only synchronisation needed.
The loop thread allocates nothing here; the publisher reads a ready slot, encodes it, then empties and frees it.
"""

from __future__ import annotations

import numpy as np

from edge.contracts import STAGES
from edge.drift.profile import ReferenceProfile
from edge.drift.sketch import WindowSketch, latency_edges_us

__all__ = ["COUNTERS", "FREE", "READY", "WindowRing", "WindowSlot"]

FREE, FILLING, READY = 0, 1, 2

# per-window counters, in WindowSlot.counters order (window record "counters", all integers)
COUNTERS = (
    "frames",
    "deadline_misses",
    "fallbacks",
    "stale_sensor",
    "invalid_sensor",
    "model_faults",
    "shadow_compared",
    "shadow_agreed",
    "telemetry_drops",
    "captures",
    "capture_drops",
    "health_max",
)
C = {name: i for i, name in enumerate(COUNTERS)}


class WindowSlot:
    """One window's accumulators: ``features`` and ``latency`` (:class:`WindowSketch`, latency in µs per
    stage), ``predictions`` a list of ``classes`` ints (top-1 class counts: a list, because
    incrementing a list item costs a tenth of a NumPy item), ``counters`` int64 (len(COUNTERS),),
    ``start_ns``/``end_ns`` (clock ns). Owned by the ring; written by whichever thread holds the slot's state."""

    def __init__(self, names: tuple[str, ...], edges: list[np.ndarray], lat_edges: np.ndarray, classes: int) -> None:
        self.features = WindowSketch(names, edges)
        self.latency = WindowSketch(STAGES, [lat_edges] * len(STAGES))
        self.predictions = [0] * classes
        self.counters = np.zeros(len(COUNTERS), dtype=np.int64)
        self.start_ns = 0
        self.end_ns = 0

    def reset(self) -> None:
        self.features.reset()
        self.latency.reset()
        self.predictions[:] = (0,) * len(self.predictions)
        self.counters.fill(0)


class WindowRing:
    """``size`` slots for one (model, profile). ``names`` is the internal feature order (stats features first)."""

    def __init__(
        self, profile: ReferenceProfile, names: tuple[str, ...], model_version: str, classes: int, size: int
    ) -> None:
        by_name = {f.name: f for f in profile.features}
        edges = [by_name[n].edges for n in names]
        self.profile = profile
        self.profile_id = profile.profile_id
        self.reference = [by_name[n].counts for n in names]
        self.has_reference = any(int(r.sum()) > 0 for r in self.reference)
        self.names = names
        self.model_version = model_version
        self.lat_edges = latency_edges_us()
        self.slots = [WindowSlot(names, edges, self.lat_edges, classes) for _ in range(size)]
        self.state = [FREE] * size
        self.active = 0
        self.state[0] = FILLING
        self.read_cursor = 0  # next slot the publisher reads (slots are filled and read in ring order)
        self.retired = False  # set by the tap when a new model replaced this ring; the publisher drains it
        self.drift_score = 0.0  # written by the publisher (largest PSI of the last window), read by the tap

    @property
    def current(self) -> WindowSlot:
        return self.slots[self.active]

    def close(self, end_ns: int, next_start_ns: int) -> bool:
        """Loop thread: hand the active window to the publisher (True), or drop it when no slot is free (False).
        Either way the returned-to active slot is empty and starts at ``next_start_ns``."""
        slot = self.slots[self.active]
        slot.end_ns = end_ns
        nxt = self.active + 1
        if nxt == len(self.slots):
            nxt = 0
        if self.state[nxt] == FREE:
            self.state[self.active] = READY
            self.active = nxt
            self.state[nxt] = FILLING
            self.slots[nxt].start_ns = next_start_ns
            return True
        slot.reset()
        slot.start_ns = next_start_ns
        return False

    def take_ready(self) -> WindowSlot | None:
        """Publisher thread: the oldest ready slot, or None."""
        if self.state[self.read_cursor] == READY:
            return self.slots[self.read_cursor]
        return None

    def release(self) -> None:
        """Publisher thread: the slot returned by :meth:`take_ready` was encoded; empty it and free it."""
        self.slots[self.read_cursor].reset()
        self.state[self.read_cursor] = FREE
        self.read_cursor = (self.read_cursor + 1) % len(self.slots)
