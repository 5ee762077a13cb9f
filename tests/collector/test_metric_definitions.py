"""docs/PROTOCOL.md §11 (the drift metrics, normative), written out here in plain numpy from the document's
formulas (loops, not edge's code), against the values the collector's DriftEngine scores for the same windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edge.collector.engine import DriftEngine
from edge.collector.reference import ModelReference
from edge.drift.profile import profile_from_json

MODEL = "m@1"


def doc_psi(c: np.ndarray, r: np.ndarray) -> float:
    if c.sum() == 0 or r.sum() == 0:
        return 0.0
    p, q = c / c.sum(), r / r.sum()
    return sum((max(a, 1e-4) - max(b, 1e-4)) * math.log(max(a, 1e-4) / max(b, 1e-4)) for a, b in zip(p, q, strict=True))


def doc_js(c: np.ndarray, r: np.ndarray) -> float:
    if c.sum() == 0 or r.sum() == 0:
        return 0.0
    p, q = c / c.sum(), r / r.sum()
    jsd = 0.0
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        jsd += 0.5 * (a * math.log(a / m) if a > 0 else 0.0) + 0.5 * (b * math.log(b / m) if b > 0 else 0.0)
    return math.sqrt(max(jsd, 0.0))


def doc_cdfs(c: np.ndarray, r: np.ndarray) -> tuple[list[float], list[float]] | None:
    cf, rf = c[:-1], r[:-1]  # the NaN column dropped
    if cf.sum() == 0 or rf.sum() == 0:
        return None
    return list(np.cumsum(cf / cf.sum())), list(np.cumsum(rf / rf.sum()))


def doc_ks(c: np.ndarray, r: np.ndarray) -> float:
    cdfs = doc_cdfs(c, r)
    return 0.0 if cdfs is None else max(abs(a - b) for a, b in zip(*cdfs, strict=True))


def doc_positions(e: list[float]) -> list[float]:
    n = len(e)
    return [e[0] - (e[1] - e[0]) / 2] + [(e[i - 1] + e[i]) / 2 for i in range(1, n)] + [e[-1] + (e[-1] - e[-2]) / 2]


def doc_sigma(moments: list[float], r: np.ndarray, e: list[float]) -> float:
    n, m2 = moments[0], moments[2]
    if n > 1 and math.isfinite(m2):
        return math.sqrt(m2 / n)
    x, w = doc_positions(e), r[:-1]
    mean = sum(a * b for a, b in zip(x, w, strict=True)) / w.sum()
    return math.sqrt(sum(b * (a - mean) ** 2 for a, b in zip(x, w, strict=True)) / w.sum())


def doc_wasserstein(c: np.ndarray, r: np.ndarray, e: list[float], sigma: float) -> float:
    cdfs = doc_cdfs(c, r)
    if cdfs is None or not sigma > 0:
        return 0.0
    x = doc_positions(e)
    w1 = sum(abs(cdfs[0][k] - cdfs[1][k]) * (x[k + 1] - x[k]) for k in range(len(e)))
    return w1 / sigma


def doc_chi2_p(live: np.ndarray, ref: np.ndarray) -> float:
    seen = [k for k in range(len(ref)) if live[k] > 0 or ref[k] > 0]
    if len(seen) < 2 or live.sum() == 0 or ref.sum() == 0:
        return 1.0
    o = np.array([[live[k] for k in seen], [ref[k] for k in seen]], dtype=np.float64)
    x2 = 0.0
    for i in range(2):
        for j in range(len(seen)):
            expected = o[i].sum() * o[:, j].sum() / o.sum()
            x2 += (o[i, j] - expected) ** 2 / expected
    return float(stats.chi2.sf(x2, len(seen) - 1))


# the profile: §8's example plus a feature whose moments hold one sample (sigma from the binned reference)
EDGES = {"a": [0.0, 64.0, 128.0, 192.0, 256.0], "b": [0.0, 0.25, 0.5, 0.75, 1.0], "c": [-1.0, 0.0, 2.0, 5.0]}
REF = {"a": [0, 250, 400, 300, 50, 0, 3], "b": [0, 10, 90, 300, 600, 0, 0], "c": [5, 20, 30, 10, 2, 1]}
MOMENTS = {"a": [1000, 117.2, 2751400.5, 3.1, 250.7], "b": [1000, 0.8, 21.5, 0.12, 1], "c": [1, 0.5, 0.0, 0.5, 0.5]}
PRED = [412, 97, 0, 491]


def reference() -> ModelReference:
    """The collector's reference, made as the collector makes it from an uploaded profile."""
    doc = {"schema": 1, "features": [
        {"name": n, "source": {"kind": "stats", "stat": "mean", "channel": i}, "edges": EDGES[n], "counts": REF[n],
         "moments": MOMENTS[n]} for i, n in enumerate(EDGES)],
        "prediction": {"output": 0, "counts": PRED}}  # fmt: skip
    return ModelReference.from_profile(MODEL, profile_from_json(doc))


def window(rng: np.random.Generator, shift: int) -> dict:
    feats = {}
    for n, e in EDGES.items():
        c = rng.integers(0, 40, len(e) + 2)
        c[min(shift, len(c) - 2)] += 30 * shift  # move mass into one column (drift)
        if n == "c" and shift == 0:
            c[:-1] = 0  # a window of NaNs only: no finite sample for KS/Wasserstein on this feature
        feats[n] = {"c": c.tolist(), "m": [0, 0.0, 0.0, math.inf, -math.inf]}
    return {"model": MODEL, "profile": "", "start_ns": 0, "end_ns": 1, "features": feats, "latency": {},
            "predictions": rng.integers(0, 50, len(PRED)).tolist(), "counters": {"frames": 1}}  # fmt: skip


@pytest.mark.parametrize("shift", [0, 1, 3])
def test_collector_scores_equal_the_documents_formulas(shift: int) -> None:
    rng = np.random.default_rng(1000 + shift)
    engine = DriftEngine(horizons=(3,))
    engine.set_reference(reference())
    bodies = [window(rng, shift) for _ in range(3)]
    for k, body in enumerate(bodies):
        evals = engine.observe_window("dev", body, t_ns=k)
    ev = next(e for e in evals if e.scope == "dev" and e.horizon == 3)
    assert ev.features == tuple(EDGES)
    for i, n in enumerate(ev.features):
        c = np.sum([b["features"][n]["c"] for b in bodies], axis=0).astype(np.float64)
        r = np.asarray(REF[n], dtype=np.float64)
        sigma = doc_sigma(MOMENTS[n], r, EDGES[n])
        assert ev.scores["psi"][i] == pytest.approx(doc_psi(c, r), rel=1e-12, abs=1e-15), n
        assert ev.scores["js"][i] == pytest.approx(doc_js(c, r), rel=1e-12, abs=1e-15), n
        assert ev.scores["ks"][i] == pytest.approx(doc_ks(c, r), rel=1e-12, abs=1e-15), n
        assert ev.scores["wasserstein"][i] == pytest.approx(doc_wasserstein(c, r, EDGES[n], sigma), rel=1e-12), n
    live = np.sum([b["predictions"] for b in bodies], axis=0)
    assert ev.ops["chi2_p"] == pytest.approx(doc_chi2_p(live, np.asarray(PRED)), rel=1e-9)


def test_the_formulas_here_are_not_vacuous() -> None:
    """Sanity of the hand-written side: known values (a fixed shift gives the textbook numbers)."""
    c, r = np.array([0, 10, 0]), np.array([0, 0, 10])  # all the mass moved from one column to another
    assert doc_js(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(math.sqrt(math.log(2)))
    assert doc_ks(np.array([10.0, 0.0, 0.0, 5.0]), np.array([0.0, 0.0, 10.0, 0.0])) == 1.0
    assert doc_psi(c.astype(float), r.astype(float)) == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))
    # W1 of a unit point mass moved by one bin of width 1, sigma 1: 1
    e = [0.0, 1.0, 2.0]  # positions -0.5, 0.5, 1.5, 2.5
    assert doc_wasserstein(np.array([0.0, 1, 0, 0, 0]), np.array([0.0, 0, 1, 0, 0]), e, 1.0) == 1.0
