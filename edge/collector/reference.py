"""What the drift engine compares live windows with: a model's :class:`ModelReference` (per-feature reference bins,
counts and standard deviation, reference top-1 class counts, latency budget), and :class:`PackedReference`, the same
packed into the float64 (F, B) row layout the engine scores (the NaN column last; fewer bins padded with zeros).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from edge.drift import metrics
from edge.errors import ConfigError, ProtocolError

__all__ = ["FeatureReference", "ModelReference", "PackedReference"]


@dataclass(frozen=True)
class FeatureReference:
    """One feature's reference: ``edges`` float64 (E,), ``counts`` (E + 2,) in the sketch layout, ``std`` the
    reference standard deviation (feature units), ``kind`` the profile source kind (``confidence``, ``pca_error``,
    ``stats``, ...)."""

    name: str
    edges: np.ndarray
    counts: np.ndarray
    std: float
    kind: str = "stats"


@dataclass(frozen=True)
class ModelReference:
    """What a model's live windows are compared with. ``model``: the ``name@version`` string windows carry;
    ``predictions``: reference top-1 class counts (K,) or None; ``latency_budget_us``: the per-frame budget."""

    model: str
    features: tuple[FeatureReference, ...]
    predictions: np.ndarray | None = None
    latency_budget_us: float | None = None

    @classmethod
    def from_profile(cls, model: str, profile: Any, latency_budget_us: float | None = None) -> ModelReference:
        """From a :class:`edge.drift.profile.ReferenceProfile` (its features' edges, counts and moments, and its
        reference top-1 class counts ``prediction_counts``, which turn on the chi-square). The std comes from the
        moments when they hold two or more samples, else from the binned reference."""
        feats = []
        for f in profile.features:
            n, m2 = float(f.moments[0]), float(f.moments[2])
            std = float(np.sqrt(m2 / n)) if n > 1 and np.isfinite(m2) else metrics.histogram_std(f.counts, f.edges)
            feats.append(FeatureReference(f.name, f.edges, f.counts, std, str(f.source.get("kind", "stats"))))
        preds = getattr(profile, "prediction_counts", None)
        if preds is None:
            preds = (getattr(profile, "extra", {}) or {}).get("predictions")
        return cls(model, tuple(feats), None if preds is None else np.asarray(preds, np.int64), latency_budget_us)


class PackedReference:
    """A reference packed for row-wise scoring: counts (F, B) float64 with the NaN column last."""

    def __init__(self, ref: ModelReference) -> None:
        if not ref.features:
            raise ConfigError(f"reference of {ref.model!r}: expected at least one feature, got none")
        self.ref = ref
        self.names = tuple(f.name for f in ref.features)
        self.width = max(f.edges.size for f in ref.features) + 2
        f_count = len(ref.features)
        self.counts = np.zeros((f_count, self.width))
        self.positions = np.zeros((f_count, self.width - 1))
        self.std = np.array([f.std for f in ref.features], dtype=np.float64)
        for i, f in enumerate(ref.features):
            self.counts[i] = self.pack_one(i, f.counts)
            x = metrics.bin_positions(f.edges)
            self.positions[i, : x.size] = x
            self.positions[i, x.size :] = x[-1] + np.arange(1, self.width - x.size)
        conf = [i for i, f in enumerate(ref.features) if f.kind == "confidence"]
        self.confidence = conf[0] if conf else None
        # where each wire count lands in the flattened (F, B) array: one scatter per window instead of F copies
        self.lengths = tuple(f.edges.size + 2 for f in ref.features)
        dst = []
        for i, n in enumerate(self.lengths):
            dst += [i * self.width + j for j in range(n - 1)] + [i * self.width + self.width - 1]
        self.scatter = np.array(dst, dtype=np.intp)
        self.length_list = list(self.lengths)
        self.total = sum(self.lengths)
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def tiled(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reference counts, bin positions and std repeated ``m`` times along the feature axis (cached)."""
        tiles = self._tiles.get(m)
        if tiles is None:
            tiles = (np.tile(self.counts, (m, 1)), np.tile(self.positions, (m, 1)), np.tile(self.std, m))
            self._tiles[m] = tiles
        return tiles

    def pack(self, model: str, feats: Mapping[str, Any]) -> np.ndarray:
        """A window's feature counts (``{name: {"c": [...]}}``) as float64 (F, B) (a new array, the caller's)."""
        try:
            counts = [feats[name]["c"] for name in self.names]
        except KeyError:
            counts = []
        if list(map(len, counts)) != self.length_list:
            for name, n in zip(self.names, self.lengths, strict=True):  # say which feature is wrong
                sk = feats.get(name)
                if sk is None:
                    raise ProtocolError(f"window.features: expected feature {name!r} of {model!r}, missing")
                if len(sk["c"]) != n:
                    raise ProtocolError(f"window.features.{name}.c: expected {n} counts, got {len(sk['c'])}")
        live = np.zeros(self.counts.size)
        live[self.scatter] = np.fromiter(chain.from_iterable(counts), np.float64, self.total)
        return live.reshape(self.counts.shape)

    def pack_one(self, i: int, c: Sequence[int] | np.ndarray) -> np.ndarray:
        e = self.ref.features[i].edges.size
        if len(c) != e + 2:
            raise ProtocolError(f"window.features.{self.names[i]}.c: expected {e + 2} counts, got {len(c)}")
        row = np.zeros(self.width)
        row[: e + 1] = c[: e + 1]
        row[-1] = c[e + 1]
        return row
