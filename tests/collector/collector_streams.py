"""Seeded window streams for the collector tests: real samples through the sketch kernel's NumPy twin."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.collector.engine import FeatureReference, ModelReference
from edge.drift.profile import FeatureSpec, ReferenceProfile

MODEL = "detector@1.0.0"
LAT_EDGES = np.array([100.0, 1000.0, 5000.0, 10000.0, 20000.0, 50000.0])  # µs


def edges_for(i: int) -> np.ndarray:
    return np.linspace(-4.0, 4.0, 17) if i % 2 == 0 else np.linspace(-4.0, 4.0, 9)


def sketch(x: np.ndarray, edges: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``x`` (N, F) → per feature (counts (E + 2,), moments (5,)) in the sketch layout (underflow, bins, overflow,
    NaN), computed with searchsorted/bincount (test_sketch.py checks the kernels against the same layout)."""
    out = []
    for f, e in enumerate(edges):
        v = x[:, f]
        nan = np.isnan(v)
        idx = np.where(nan, e.size + 1, np.searchsorted(e, np.where(nan, 0.0, v), side="right"))
        fin = v[np.isfinite(v)]
        n = float(fin.size)
        mom = np.array([n, fin.mean(), ((fin - fin.mean()) ** 2).sum(), fin.min(), fin.max()]) if n else None
        out.append((np.bincount(idx, minlength=e.size + 2).astype(np.int64), mom))
    return out


def names(n_features: int) -> list[str]:
    return [f"f{i:02d}" for i in range(n_features)]


def reference(
    rng: np.random.Generator, n_features: int = 4, n: int = 20000, budget_us: float = 20000.0
) -> ModelReference:
    edges = [edges_for(i) for i in range(n_features)]
    feats = []
    for name, e, (c, m) in zip(names(n_features), edges, sketch(rng.normal(0, 1, (n, n_features)), edges), strict=True):
        feats.append(FeatureReference(name, e, c, float(np.sqrt(m[2] / m[0]))))
    return ModelReference(MODEL, tuple(feats), latency_budget_us=budget_us)


def window_body(
    rng: np.random.Generator,
    n_features: int = 4,
    frames: int = 100,
    shift: float = 0.0,
    misses: int = 0,
    fallbacks: int = 0,
    latency_us: float = 3000.0,
) -> dict[str, Any]:
    """One window record body (PROTOCOL.md layout) of ``frames`` frames, features ~ N(shift, 1)."""
    edges = [edges_for(i) for i in range(n_features)]
    x = rng.normal(shift, 1.0, (frames, n_features))
    feats = {
        n: {"c": c.tolist(), "m": m.tolist()} for n, (c, m) in zip(names(n_features), sketch(x, edges), strict=True)
    }
    lat = sketch(rng.normal(latency_us, latency_us * 0.05, (frames, 1)), [LAT_EDGES])[0]
    return {
        "model": MODEL,
        "profile": "0123456789abcdef",
        "start_ns": 0,
        "end_ns": 1_000_000_000,
        "features": feats,
        "latency": {"total": {"c": lat[0].tolist(), "m": lat[1].tolist()}},
        "predictions": [],
        "counters": {"frames": frames, "deadline_misses": misses, "fallbacks": fallbacks},
    }


HELLO = {"latency_edges_us": LAT_EDGES.tolist()}


def profile(rng: np.random.Generator, n_features: int = 4, n: int = 20000) -> ReferenceProfile:
    """The same reference as :func:`reference`, as the device's :class:`ReferenceProfile`."""
    edges = [edges_for(i) for i in range(n_features)]
    feats = []
    for i, (name, e, (c, m)) in enumerate(
        zip(names(n_features), edges, sketch(rng.normal(0, 1, (n, n_features)), edges), strict=True)
    ):
        feats.append(FeatureSpec(name, {"kind": "stats", "stat": "mean", "channel": i}, e, c, m))
    return ReferenceProfile(tuple(feats))


def hello_body(prof: ReferenceProfile) -> dict[str, Any]:
    return {
        "software": "edge test",
        "kernels": "numpy",
        "model": MODEL,
        "profile": prof.profile_id,
        "window_s": 1.0,
        "features": [{"name": f.name, "edges": f.edges.tolist()} for f in prof.features],
        "latency_edges_us": LAT_EDGES.tolist(),
    }
