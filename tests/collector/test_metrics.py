"""Every drift metric against an independent scipy/numpy computation on the same counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from edge.drift import metrics
from edge.errors import ConfigError
from edge.kernels import reference as twin

EDGES = np.linspace(-3.0, 3.0, 13)  # 12 interior bins


def binned(rng: np.random.Generator, loc: float, scale: float, n: int, nan: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Counts of a real sample through the sketch kernel's NumPy twin, and the sample itself."""
    x = rng.normal(loc, scale, n)
    x[:nan] = np.nan
    counts = np.zeros((1, EDGES.size + 2), np.int64)
    moments = np.zeros((1, 5))
    moments[:, 3], moments[:, 4] = np.inf, -np.inf
    twin.sketch_update(x[:, None], EDGES[None, :], counts, moments)
    return counts[0], x


@pytest.fixture(params=[(0.0, 1.0), (0.4, 1.0), (1.5, 0.5), (0.0, 2.5)], ids=["same", "shift", "far", "wide"])
def pair(request: pytest.FixtureRequest, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ref, _ = binned(rng, 0.0, 1.0, 5000, nan=7)
    live, _ = binned(rng, *request.param, 800, nan=3)
    return live, ref


def test_psi_matches_numpy_formula(pair: tuple[np.ndarray, np.ndarray]) -> None:
    live, ref = pair
    p = np.clip(live / live.sum(), 1e-4, None)
    q = np.clip(ref / ref.sum(), 1e-4, None)
    expected = float(np.sum((p - q) * np.log(p / q)))
    assert metrics.psi(live, ref) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_js_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    live, ref = pair
    assert metrics.js_distance(live, ref) == pytest.approx(jensenshannon(live, ref), rel=1e-9, abs=1e-12)


def test_ks_matches_ks_2samp_on_bin_indices(pair: tuple[np.ndarray, np.ndarray]) -> None:
    live, ref = pair
    # values known only to their bin: each finite sample replaced by its column index (NaN column dropped)
    a = np.repeat(np.arange(live.size - 1), live[:-1])
    b = np.repeat(np.arange(ref.size - 1), ref[:-1])
    assert metrics.ks_statistic(live, ref) == pytest.approx(stats.ks_2samp(a, b).statistic, rel=1e-12, abs=1e-15)


def test_wasserstein_matches_scipy_with_bin_positions(pair: tuple[np.ndarray, np.ndarray]) -> None:
    live, ref = pair
    x = np.concatenate(([-3.25], 0.5 * (EDGES[:-1] + EDGES[1:]), [3.25]))
    w = stats.wasserstein_distance(x, x, live[:-1], ref[:-1])
    sigma = np.sqrt(np.cov(x, fweights=ref[:-1], ddof=0))
    assert metrics.wasserstein_normalized(live, ref, EDGES) == pytest.approx(w / sigma, rel=1e-9, abs=1e-12)
    assert metrics.wasserstein_normalized(live, ref, EDGES, reference_std=2.0) == pytest.approx(w / 2.0, rel=1e-9)


def test_chi_square_matches_scipy(rng: np.random.Generator) -> None:
    ref = rng.multinomial(10_000, [0.5, 0.2, 0.2, 0.1])
    live = rng.multinomial(700, [0.45, 0.25, 0.2, 0.1])
    q = np.maximum(ref / ref.sum(), 1e-4)
    expected = stats.chisquare(live, live.sum() * q / q.sum())
    stat, p = metrics.chi_square(live, ref)
    assert stat == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)


def test_chi_square_class_unseen_in_reference_is_finite_and_drifting() -> None:
    stat, p = metrics.chi_square([50, 50, 10], [100, 100, 0])
    assert math.isfinite(stat) and p < 1e-12


def test_histogram_std_matches_numpy(rng: np.random.Generator) -> None:
    ref, _ = binned(rng, 0.3, 1.2, 3000, nan=5)
    x = metrics.bin_positions(EDGES)
    assert metrics.histogram_std(ref, EDGES) == pytest.approx(np.std(np.repeat(x, ref[:-1])), rel=1e-12)


def test_histogram_quantile_interpolates_inside_the_bin() -> None:
    edges = np.array([0.0, 10.0, 20.0, 40.0])
    counts = np.array([0, 10, 10, 20, 0, 0])  # underflow, [0,10), [10,20), [20,40), overflow, NaN
    # rank 0.99 * 40 = 39.6 falls in [20, 40): 20 + 20 * (39.6 - 20) / 20
    assert metrics.histogram_quantile(counts, edges, 0.99) == pytest.approx(39.6)
    assert metrics.histogram_quantile(counts, edges, 0.5) == pytest.approx(20.0)
    assert metrics.histogram_quantile([0, 0, 0, 0, 5, 1], edges, 0.99) == 40.0  # overflow: the last edge
    assert metrics.histogram_quantile([3, 0, 0, 0, 0, 0], edges, 0.5) == 0.0
    assert math.isnan(metrics.histogram_quantile([0, 0, 0, 0, 0, 9], edges, 0.5))


def test_identical_distributions_score_zero_and_empty_sides_are_zero() -> None:
    c = np.array([1, 5, 9, 5, 1, 0])
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    assert metrics.psi(c, 3 * c) == pytest.approx(0.0, abs=1e-15)
    assert metrics.js_distance(c, 3 * c) == pytest.approx(0.0, abs=1e-7)
    assert metrics.ks_statistic(c, 3 * c) == pytest.approx(0.0, abs=1e-15)
    assert metrics.wasserstein_normalized(c, 3 * c, edges) == pytest.approx(0.0, abs=1e-15)
    zero = np.zeros(6)
    for f in (metrics.psi, metrics.js_distance, metrics.ks_statistic):
        assert f(zero, c) == 0.0 and f(c, zero) == 0.0


def test_empty_bins_do_not_give_infinities() -> None:
    live = np.array([0, 0, 100, 0, 0, 0])
    ref = np.array([0, 100, 0, 0, 0, 0])
    # the empty proportions floored at EPS (not renormalized): (1 - eps) ln(1 / eps), once per differing bin
    expected = 2 * (1 - 1e-4) * math.log(1 / 1e-4)
    assert metrics.psi(live, ref) == pytest.approx(expected, rel=1e-12)
    assert metrics.js_distance(live, ref) == pytest.approx(math.sqrt(math.log(2)), rel=1e-12)
    assert metrics.ks_statistic(live, ref) == 1.0


def test_nannyml_chunk_threshold_is_mean_plus_three_sigma(rng: np.random.Generator) -> None:
    chunks = np.stack([binned(rng, 0.0, 1.0, 500)[0] for _ in range(10)])
    whole = chunks.sum(axis=0)
    values = [metrics.psi(c, whole) for c in chunks]
    assert metrics.reference_chunk_threshold(chunks) == pytest.approx(np.mean(values) + 3 * np.std(values))


@pytest.mark.parametrize(
    ("live", "ref", "needle"),
    [([1, 2], [1, 2, 3], "one length"), ([1, -1, 0], [1, 1, 1], "counts >= 0"), ([np.nan, 1], [1, 1], "finite")],
)
def test_bad_counts_raise_config_error_naming_what_arrived(live: list, ref: list, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        metrics.psi(live, ref)


def test_drift_rows_equal_the_one_feature_metrics_with_padding(rng: np.random.Generator) -> None:
    narrow = np.linspace(0.0, 1.0, 5)  # 4 edges fewer than EDGES: its row is padded
    feats = [
        (EDGES, binned(rng, 0.0, 1.0, 4000, nan=4)[0], binned(rng, 0.5, 1.3, 600, nan=9)[0]),
        (EDGES, binned(rng, 0.0, 1.0, 4000)[0], np.zeros(EDGES.size + 2, np.int64)),
        (narrow, rng.integers(0, 50, narrow.size + 2), rng.integers(0, 50, narrow.size + 2)),
    ]
    width = EDGES.size + 2
    live = np.zeros((3, width))
    ref = np.zeros((3, width))
    pos = np.zeros((3, width - 1))
    for i, (e, r, c) in enumerate(feats):
        k = e.size + 1  # finite columns
        live[i, :k], live[i, -1] = c[:k], c[-1]
        ref[i, :k], ref[i, -1] = r[:k], r[-1]
        x = metrics.bin_positions(e)
        pos[i, :k] = x
        pos[i, k:] = x[-1] + np.arange(1, width - k)
    std = np.array([metrics.histogram_std(r, e) for e, r, _ in feats])
    rows = metrics.drift_rows(live, ref, pos, std)
    for i, (e, r, c) in enumerate(feats):
        assert rows["psi"][i] == pytest.approx(metrics.psi(c, r), rel=1e-12, abs=1e-15)
        assert rows["js"][i] == pytest.approx(metrics.js_distance(c, r), rel=1e-12, abs=1e-15)
        assert rows["ks"][i] == pytest.approx(metrics.ks_statistic(c, r), rel=1e-12, abs=1e-15)
        assert rows["wasserstein"][i] == pytest.approx(metrics.wasserstein_normalized(c, r, e), rel=1e-12, abs=1e-15)
    assert rows["psi"][0] > 0.1 and rows["psi"][1] == 0.0
