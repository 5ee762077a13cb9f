"""Rolling horizons: running sums of a track's last ``h`` windows for each horizon ``h``, kept over one ring of
the longest horizon. Sketches are monoids, so a horizon is a running sum: a new window is added and the window that
falls out of the horizon subtracted (integer counts in float64, exact below 2**53).

The ring starts small and doubles up to the longest horizon as windows arrive, so a track that has seen one window
(a new device, a device id flood) costs a few kilobytes, not the longest horizon's worth of windows."""

from __future__ import annotations

import numpy as np

__all__ = ["RollingSums"]


class RollingSums:
    """Running sums of the last ``h`` windows for each horizon ``h``, over one ring of the longest horizon."""

    def __init__(self, horizons: tuple[int, ...], shape: tuple[int, ...], start: int = 2) -> None:
        self.horizons = horizons
        self.capacity = max(horizons)  # the ring's size once grown
        self.ring = np.zeros((min(start, self.capacity), *shape))
        self.sums = {h: np.zeros(shape) for h in horizons}
        self.n = 0

    def push(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Add one window ``x``; returns each horizon's delta (what its sum changed by), for the fleet's sums."""
        return self.push_block(x[None])

    def push_block(self, block: np.ndarray) -> dict[int, np.ndarray]:
        """Add ``k`` windows at once (``block`` (k, *shape), oldest first): each horizon's sum gains the block's
        windows that stay inside it and loses the ring's windows that fall out, as ``k`` pushes one by one would
        (a constant number of NumPy calls per horizon, whatever ``k``). Returns each horizon's delta."""
        k = block.shape[0]
        n = self.n
        size = self.ring.shape[0]
        if size < self.capacity and n + k > size:  # not wrapped yet (n <= size): windows 0..n-1 are ring[:n]
            grown = np.zeros((min(self.capacity, max(2 * size, n + k)), *self.ring.shape[1:]))
            grown[:n] = self.ring[:n]
            self.ring, size = grown, grown.shape[0]
        deltas = {}
        for h in self.horizons:
            delta = block[max(0, k - h) :].sum(axis=0)
            lo, hi = max(0, n - h), min(n, n + k - h)  # the ring's windows (global indices) leaving horizon h
            if hi - lo == min(n, h):
                delta -= self.sums[h]  # all of them: the sum is theirs
            elif hi - lo == 1:
                delta -= self.ring[lo % size]
            elif hi > lo:  # one or two slices of the ring
                first = lo % size
                last = min(size, first + hi - lo)
                delta -= self.ring[first:last].sum(axis=0)
                if last - first < hi - lo:
                    delta -= self.ring[: hi - lo - (last - first)].sum(axis=0)
            self.sums[h] += delta
            deltas[h] = delta
        keep = min(k, size)  # the ring keeps the last ``size`` windows
        start = (n + k - keep) % size
        if start + keep <= size:
            self.ring[start : start + keep] = block[k - keep :]
        else:
            split = size - start
            self.ring[start:] = block[k - keep : k - keep + split]
            self.ring[: keep - split] = block[k - keep + split :]
        self.n = n + k
        return deltas
