"""Drift metrics on binned sketches: a live window's counts against the reference profile's counts, same bins.

Every function takes count vectors in the sketch kernel's layout (:func:`edge.kernels.sketch_update`): for a
feature with ``E`` edges, ``E + 2`` counts = underflow (``x < edges[0]``), ``E - 1`` interior bins, overflow
(``x >= edges[-1]``), NaN. Counts are non-negative integers (any integer or float dtype is accepted); the
functions allocate small temporaries and never modify their inputs.

Metrics and their default thresholds (:data:`DEFAULT_THRESHOLDS`; a metric at or above its threshold is "drifting"):

* ``psi`` = ``sum((p - q) * ln(p / q))`` over all ``E + 2`` columns, ``p``/``q`` the live/reference proportions
  floored at ``eps``. Threshold 0.25 ("significant"; 0.1 is "moderate", :data:`PSI_MODERATE`): the credit-scoring
  convention (Siddiqi, *Credit Risk Scorecards*).
* ``js`` = Jensen–Shannon *distance* ``sqrt(JSD(p, q))``, natural log, all ``E + 2`` columns (0 ln 0 = 0, so no
  epsilon). Threshold 0.1: Evidently's default for ``jensenshannon`` and Azure ML's data-drift default.
* ``ks`` = ``max_k |P(k) - Q(k)|`` over the cumulative proportions of the finite columns (underflow, bins,
  overflow; NaN left out). Threshold 0.1: our choice, there is no published convention for the binned statistic
  (and at fleet sample sizes the KS p-value is always ~0, so it makes a poor threshold).
* ``wasserstein`` = ``W1(p, q) / sigma_ref`` on the bin positions (interior centres; underflow/overflow half a bin
  outside the edges), ``sigma_ref`` the reference standard deviation. Threshold 0.1: Evidently's default for the
  normalized Wasserstein distance, also Azure ML's.
* ``chi2_p`` = p-value of Pearson's chi-square (categorical and prediction histograms). :func:`chi_square` is the
  goodness-of-fit test against the reference proportions (Evidently's ``chisquare``, drifting below 0.05); the
  collector scores the prediction mix with the two-sample test of homogeneity instead
  (:func:`edge.collector.engine._chi2_p`: the reference is itself a sample) and alerts below 0.01
  (:data:`edge.collector.alerts.DEFAULT_RULES`), the threshold kept here.

``eps`` (:data:`EPS` = 1e-4) floors proportions for PSI and the chi-square expectation: an empty bin would otherwise
give ``ln 0`` or a division by zero. 1e-4 is the floor Evidently uses for PSI.

Instead of a fixed threshold, :func:`reference_chunk_threshold` gives NannyML's data-driven one: the metric of each
reference chunk against the whole reference, and its ``mean + 3 sigma``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from edge.errors import ConfigError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EPS",
    "METRICS",
    "bin_positions",
    "chi_square",
    "drift_rows",
    "histogram_quantile",
    "histogram_std",
    "js_distance",
    "ks_statistic",
    "psi",
    "reference_chunk_threshold",
    "wasserstein_normalized",
]

EPS = 1e-4

# metric -> threshold; "chi2_p" drifts when the p-value is *below* its threshold, every other metric when at/above
DEFAULT_THRESHOLDS: dict[str, float] = {"psi": 0.25, "js": 0.1, "ks": 0.1, "wasserstein": 0.1, "chi2_p": 0.01}
PSI_MODERATE = 0.1


def _pair(live: ArrayLike, reference: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(live, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape or p.size < 1:
        raise ConfigError(f"{what}: expected two 1-d count vectors of one length, got shapes {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0) or not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        raise ConfigError(f"{what}: expected finite counts >= 0, got live {p.tolist()[:8]} reference {q.tolist()[:8]}")
    return p, q


def _proportions(c: np.ndarray) -> np.ndarray | None:
    n = c.sum()
    return None if n <= 0 else c / n


def psi(live: ArrayLike, reference: ArrayLike, eps: float = EPS) -> float:
    """Population stability index; 0.0 when either side has no samples."""
    p, q = _pair(live, reference, "psi")
    p, q = _proportions(p), _proportions(q)
    if p is None or q is None:
        return 0.0
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(live: ArrayLike, reference: ArrayLike) -> float:
    """Jensen–Shannon distance (natural log; in [0, sqrt(ln 2)]); 0.0 when either side has no samples."""
    p, q = _pair(live, reference, "js_distance")
    p, q = _proportions(p), _proportions(q)
    if p is None or q is None:
        return 0.0
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(math.sqrt(max(0.5 * (kl_pm + kl_qm), 0.0)))


def ks_statistic(live: ArrayLike, reference: ArrayLike) -> float:
    """Two-sample Kolmogorov–Smirnov statistic from the binned CDFs (NaN column excluded): what ``ks_2samp``
    gives for samples whose values are known only to their bin. 0.0 when either side has no finite samples."""
    p, q = _pair(live, reference, "ks_statistic")
    p, q = _proportions(p[:-1]), _proportions(q[:-1])
    if p is None or q is None:
        return 0.0
    return float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))


def bin_positions(edges: ArrayLike) -> np.ndarray:
    """Where each finite column sits on the feature's axis (float64 (E + 1,)): interior bins at their centres,
    underflow and overflow half a neighbouring bin width outside the first and last edge."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ConfigError(f"bin_positions: expected >= 2 strictly increasing edges, got {e.tolist()[:8]}")
    centres = 0.5 * (e[:-1] + e[1:])
    return np.concatenate(([e[0] - 0.5 * (e[1] - e[0])], centres, [e[-1] + 0.5 * (e[-1] - e[-2])]))


def histogram_std(counts: ArrayLike, edges: ArrayLike) -> float:
    """Standard deviation (population) of a binned sample at :func:`bin_positions`; NaN column ignored."""
    c = np.asarray(counts, dtype=np.float64)[:-1]
    x = bin_positions(edges)
    n = c.sum()
    if n <= 0:
        return 0.0
    mean = float(np.dot(c, x) / n)
    return float(math.sqrt(max(float(np.dot(c, (x - mean) ** 2) / n), 0.0)))


def wasserstein_normalized(
    live: ArrayLike, reference: ArrayLike, edges: ArrayLike, reference_std: float | None = None
) -> float:
    """Earth mover's distance W1 between the binned live and reference samples, divided by the reference standard
    deviation (``reference_std``, or :func:`histogram_std` of the reference when None). Units: reference standard
    deviations. 0.0 when either side has no finite samples or the reference has no spread."""
    p, q = _pair(live, reference, "wasserstein_normalized")
    x = bin_positions(edges)
    if p.size != x.size + 1:
        raise ConfigError(f"wasserstein_normalized: expected {x.size + 1} counts for {x.size - 1} edges, got {p.size}")
    p, q = _proportions(p[:-1]), _proportions(q[:-1])
    if p is None or q is None:
        return 0.0
    sigma = histogram_std(reference, edges) if reference_std is None else float(reference_std)
    if not sigma > 0:
        return 0.0
    w1 = float(np.sum(np.abs(np.cumsum(p) - np.cumsum(q))[:-1] * np.diff(x)))
    return w1 / sigma


def chi_square(live: ArrayLike, reference: ArrayLike, eps: float = EPS) -> tuple[float, float]:
    """Pearson's chi-square of the live counts against the reference proportions (floored at ``eps`` and
    renormalized, so a class unseen in the reference does not divide by zero): ``(statistic, p_value)`` with
    ``k - 1`` degrees of freedom. ``(0.0, 1.0)`` when either side is empty or there is one class."""
    p, q = _pair(live, reference, "chi_square")
    n = p.sum()
    q = _proportions(q)
    if q is None or n <= 0 or p.size < 2:
        return 0.0, 1.0
    q = np.maximum(q, eps)
    expected = n * q / q.sum()
    stat = float(np.sum((p - expected) ** 2 / expected))
    from scipy.special import chdtrc  # scipy is the collector's dependency, imported only here

    return stat, float(chdtrc(p.size - 1, stat))


def histogram_quantile(counts: ArrayLike, edges: ArrayLike, q: float) -> float:
    """The ``q``-quantile (0..1) of a binned sample (NaN column ignored), interpolated linearly inside the bin
    that holds it, as Prometheus' ``histogram_quantile`` does; an underflow answer is ``edges[0]`` and an overflow
    one ``edges[-1]`` (the histogram knows no more). NaN when empty. Units: those of ``edges``."""
    c = np.asarray(counts, dtype=np.float64)[:-1]
    e = np.asarray(edges, dtype=np.float64)
    if c.size != e.size + 1 or not 0.0 <= q <= 1.0:
        raise ConfigError(f"histogram_quantile: expected {e.size + 2} counts and 0 <= q <= 1, got {c.size + 1}, {q}")
    n = c.sum()
    if n <= 0:
        return math.nan
    rank = q * n
    cum = np.cumsum(c)
    k = int(np.searchsorted(cum, rank, side="left"))
    if k == 0:
        return float(e[0])
    if k >= c.size - 1:
        return float(e[-1])
    below = cum[k - 1]
    frac = (rank - below) / c[k] if c[k] > 0 else 1.0
    return float(e[k - 1] + (e[k] - e[k - 1]) * frac)


Metric = Callable[[np.ndarray, np.ndarray], float]

METRICS: dict[str, Metric] = {"psi": psi, "js": js_distance, "ks": ks_statistic}


def reference_chunk_threshold(chunks: ArrayLike, metric: Metric = psi, k: float = 3.0) -> float:
    """NannyML-style threshold: ``metric`` of each reference chunk (rows of ``chunks``, counts (K, B), K >= 2)
    against the whole reference (the rows' sum), then ``mean + k * std`` (population std) of those K values."""
    c = np.asarray(chunks, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 2:
        raise ConfigError(f"reference_chunk_threshold: expected counts (K >= 2 chunks, B bins), got shape {c.shape}")
    whole = c.sum(axis=0)
    values = np.array([metric(row, whole) for row in c])
    return float(values.mean() + k * values.std())


# ----------------------------------------------------------------------------------------- one row per feature


def _row_proportions(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, c / np.where(n > 0, n, 1.0), 0.0), n[:, 0] > 0


def drift_rows(live: np.ndarray, reference: np.ndarray, positions: np.ndarray, reference_std: np.ndarray) -> dict:
    """PSI, JS, KS and normalized Wasserstein of every feature at once: the metrics above, one row per feature.

    ``live`` and ``reference`` float64 (F, B): counts with the NaN column *last*; a feature with fewer bins has
    zero columns between its overflow and NaN columns (they change no metric). ``positions`` float64 (F, B - 1):
    :func:`bin_positions` of each feature, padded with increasing values. ``reference_std`` float64 (F,).
    Returns ``{"psi"|"js"|"ks"|"wasserstein": float64 (F,)}``; a feature with an empty side scores 0.
    """
    p, p_ok = _row_proportions(live)
    q, q_ok = _row_proportions(reference)
    ok = p_ok & q_ok
    pf, qf = np.maximum(p, EPS), np.maximum(q, EPS)
    psi_v = ((pf - qf) * np.log(pf / qf)).sum(axis=1)  # a column empty on both sides (padding) adds 0
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1) + np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    js_v = np.sqrt(np.maximum(0.5 * kl, 0.0))
    pc, pc_ok = _row_proportions(live[:, :-1])
    qc, qc_ok = _row_proportions(reference[:, :-1])
    diff = np.abs(np.cumsum(pc, axis=1) - np.cumsum(qc, axis=1))
    ks_v = diff.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (diff[:, :-1] * np.diff(positions, axis=1)).sum(axis=1) / reference_std
    finite_ok = pc_ok & qc_ok
    w_v = np.where(finite_ok & (reference_std > 0), w, 0.0)
    return {
        "psi": np.where(ok, psi_v, 0.0),
        "js": np.where(ok, js_v, 0.0),
        "ks": np.where(finite_ok, ks_v, 0.0),
        "wasserstein": w_v,
    }
