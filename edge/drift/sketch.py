"""The window-sketch façade: per-feature histograms on reference bin edges plus moments, over the native kernel.

:class:`WindowSketch` owns its arrays (allocated once) and a bound :class:`edge.kernels.SketchAccumulator`;
the hot path calls ``sketch.accumulator.update(x)`` (no allocation). Features may have different edge counts:
the arrays are padded to the widest feature with edges past the last real one, and :meth:`WindowSketch.wire`
folds the padding back into the overflow bin, so the wire always carries the profile's own layout
(underflow, E - 1 bins, overflow, NaN). Sketches are monoids: :meth:`merge` adds counts and combines moments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge import kernels
from edge.errors import ConfigError, ProtocolError

__all__ = ["WindowSketch", "latency_edges_us", "psi"]


def latency_edges_us(lo_us: float = 1.0, hi_us: float = 1e6, per_decade: int = 4) -> np.ndarray:
    """Log-spaced latency bin edges (µs): ``per_decade`` bins per decade from ``lo_us`` to ``hi_us``."""
    decades = round(float(np.log10(hi_us / lo_us)))
    return lo_us * np.logspace(0.0, decades, decades * per_decade + 1)


def psi(live: np.ndarray, reference: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two count vectors of one feature (NaN column included); 0 when either
    is empty. ``eps`` floors each proportion so empty bins do not give infinities."""
    n_live, n_ref = float(live.sum()), float(reference.sum())
    if n_live == 0 or n_ref == 0:
        return 0.0
    p = np.maximum(live / n_live, eps)
    q = np.maximum(reference / n_ref, eps)
    return float(np.sum((p - q) * np.log(p / q)))


class WindowSketch:
    """One window's sketch of ``F`` named features.

    ``edges`` float64 (F, E) (padded), ``counts`` int64 (F, E + 2), ``moments`` float64 (F, 5) are owned by the
    sketch for its lifetime; :attr:`accumulator` is bound to them once.
    """

    def __init__(self, names: Sequence[str], edges: Sequence[np.ndarray]) -> None:
        if len(names) != len(edges) or not names:
            raise ConfigError(
                f"WindowSketch: expected one edge array per feature name, got {len(names)} names "
                f"and {len(edges)} edge arrays"
            )
        self.names = tuple(names)
        self.real_edges = tuple(np.asarray(e, dtype=np.float64) for e in edges)
        width = max(len(e) for e in self.real_edges)
        self.edges = np.empty((len(names), width), dtype=np.float64)
        for i, e in enumerate(self.real_edges):
            self.edges[i, : len(e)] = e
            pad = width - len(e)
            if pad and len(e):
                self.edges[i, len(e) :] = e[-1] + np.arange(1, pad + 1, dtype=np.float64)
        self.counts = np.zeros((len(names), width + 2), dtype=np.int64)
        self.moments = np.zeros((len(names), 5), dtype=np.float64)
        self.accumulator = kernels.SketchAccumulator(self.edges, self.counts, self.moments)
        self.reset()

    @property
    def n_features(self) -> int:
        return len(self.names)

    def reset(self) -> None:
        """Empty the sketch in place (no allocation)."""
        self.counts.fill(0)
        self.moments[:, :3] = 0.0
        self.moments[:, 3] = np.inf
        self.moments[:, 4] = -np.inf

    def update(self, x: np.ndarray) -> None:
        """Add one frame (float64 (F,)) or a batch (N, F)."""
        self.accumulator.update(x)

    def merge(self, other: WindowSketch) -> None:
        """Add ``other`` into this sketch (same features and edges)."""
        if other.names != self.names or not np.array_equal(other.edges, self.edges):
            raise ConfigError("WindowSketch.merge: expected the same features and edges in both sketches")
        kernels.sketch_merge(self.counts, self.moments, other.counts, other.moments)

    def feature_counts(self, i: int) -> np.ndarray:
        """Feature ``i``'s counts in the profile's own layout (a new array)."""
        e = len(self.real_edges[i])
        width = self.edges.shape[1]
        row = self.counts[i]
        out = np.empty(e + 2, dtype=np.int64)
        out[:e] = row[:e]
        out[e] = row[e : width + 1].sum()
        out[e + 1] = row[width + 1]
        return out

    def wire(self) -> dict[str, Any]:
        """``{name: {"c": [counts], "m": [count, mean, M2, min, max]}}`` (PROTOCOL.md, window record)."""
        return {
            name: {"c": self.feature_counts(i).tolist(), "m": self.moments[i].tolist()}
            for i, name in enumerate(self.names)
        }

    def load_wire(self, sketches: Mapping[str, Any]) -> None:
        """Replace this sketch's contents with a decoded window's (for the collector and tests); every feature of
        this sketch must be present with the same number of bins."""
        self.reset()
        width = self.edges.shape[1]
        for i, name in enumerate(self.names):
            if name not in sketches:
                raise ProtocolError(f"window.features: expected feature {name!r}, missing")
            c, m = sketches[name]["c"], sketches[name]["m"]
            e = len(self.real_edges[i])
            if len(c) != e + 2:
                raise ProtocolError(f"window.features.{name}.c: expected {e + 2} counts, got {len(c)}")
            self.counts[i, :e] = c[:e]
            self.counts[i, e] = c[e]
            self.counts[i, width + 1] = c[e + 1]
            self.moments[i] = m

    def drift_score(self, reference: Sequence[np.ndarray]) -> float:
        """The largest per-feature :func:`psi` against ``reference`` counts (profile layout); 0 without data."""
        score = 0.0
        for i, ref in enumerate(reference):
            score = max(score, psi(self.feature_counts(i), ref))
        return score
