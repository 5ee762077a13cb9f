"""Window sketches: native vs twin (bit-exact), histogram and moment semantics against NumPy, merging, errors,
and an allocation-free per-frame update."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edge.errors import ConfigError, ShapeError


def _empty(n_features: int, n_edges: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.zeros((n_features, n_edges + 2), np.int64)
    moments = np.zeros((n_features, 5))
    moments[:, 3] = np.inf
    moments[:, 4] = -np.inf
    return counts, moments


def _data(rng: np.random.Generator, n: int, f: int) -> np.ndarray:
    x = rng.normal(0.0, 1.5, (n, f))
    x[rng.random((n, f)) < 0.02] = np.nan
    x[rng.random((n, f)) < 0.01] = np.inf
    x[rng.random((n, f)) < 0.01] = -np.inf
    return x


def _edges(rng: np.random.Generator, f: int, e: int) -> np.ndarray:
    edges = np.sort(rng.normal(0.0, 1.0, (f, e)), axis=1)
    edges[:, 0] -= 0.5  # strictly increasing
    return np.cumsum(np.abs(np.diff(edges, axis=1, prepend=-3.0)) + 1e-3, axis=1) - 3.0


@pytest.mark.parametrize("f,e", [(1, 2), (3, 5), (32, 16), (7, 64)])
def test_update_native_matches_twin_bit_for_bit(native, twin, rng, f, e) -> None:
    edges = _edges(rng, f, e)
    x = _data(rng, 300, f)
    x[5] = edges[:, 0]  # exactly on an edge: belongs to the bin on its right
    x[6] = edges[:, -1]
    results = []
    for impl in (native, twin):
        counts, moments = _empty(f, e)
        for row in x[:100]:
            impl["sketch_update"](row, edges, counts, moments)
        impl["sketch_update"](x[100:], edges, counts, moments)  # a batch
        acc = impl["SketchAccumulator"](edges, *_empty(f, e))
        for row in x:
            acc.update(row)
        results.append((counts, moments, acc.counts, acc.moments))
    for a, b in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results[0][0], results[0][2])  # batch and per-frame agree
    np.testing.assert_array_equal(results[0][1], results[0][3])


def test_bins_moments_and_specials(impl, rng) -> None:
    edges = np.array([[-1.0, 0.0, 1.0, 2.0]])
    x = np.array([-5.0, -1.0, -0.5, 0.0, 0.99, 1.0, 2.0, 7.0, np.nan, np.inf, -np.inf])
    counts, moments = _empty(1, 4)
    impl["sketch_update"](x[:, None], edges, counts, moments)
    # columns: underflow, [-1,0), [0,1), [1,2), overflow, NaN
    assert counts.tolist() == [[2, 2, 2, 1, 3, 1]]
    finite = x[np.isfinite(x)]
    assert moments[0, 0] == finite.size
    np.testing.assert_allclose(moments[0, 1], finite.mean(), rtol=1e-12)
    np.testing.assert_allclose(moments[0, 2] / finite.size, finite.var(), rtol=1e-12)
    assert (moments[0, 3], moments[0, 4]) == (finite.min(), finite.max())


def test_counts_match_numpy_digitize(impl, rng) -> None:
    edges = _edges(rng, 4, 10)
    x = rng.normal(0, 2, (2000, 4))
    counts, moments = _empty(4, 10)
    impl["sketch_update"](x, edges, counts, moments)
    for f in range(4):
        expected = np.bincount(np.digitize(x[:, f], edges[f]), minlength=11)
        np.testing.assert_array_equal(counts[f, :11], expected)
        np.testing.assert_allclose(moments[f, 1], x[:, f].mean(), rtol=1e-10)
        np.testing.assert_allclose(moments[f, 2] / 2000, x[:, f].var(), rtol=1e-10)


def test_merge_equals_one_sketch_of_all_the_data(native, twin, rng) -> None:
    edges = _edges(rng, 5, 8)
    x = _data(rng, 400, 5)
    merged = []
    for impl in (native, twin):
        whole = _empty(5, 8)
        impl["sketch_update"](x, edges, *whole)
        parts = [_empty(5, 8) for _ in range(4)]
        for part, chunk in zip(parts, (x[:1], x[1:150], x[150:150], x[150:]), strict=True):
            if len(chunk):
                impl["sketch_update"](chunk, edges, *part)
        total = _empty(5, 8)
        for part in parts:  # including an empty window: merging it changes nothing
            impl["sketch_merge"](*total, *part)
        np.testing.assert_array_equal(total[0], whole[0])
        np.testing.assert_allclose(total[1], whole[1], rtol=1e-10)
        merged.append(total)
    np.testing.assert_array_equal(merged[0][0], merged[1][0])
    np.testing.assert_array_equal(merged[0][1], merged[1][1])


def test_accumulator_update_allocates_nothing(native, rng) -> None:
    edges = _edges(rng, 32, 16)
    counts, moments = _empty(32, 16)
    acc = native["SketchAccumulator"](edges, counts, moments)
    rows = list(rng.normal(0, 1, (5000, 32)))
    update = acc.update
    for row in rows[:10]:
        update(row)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for row in rows:
            update(row)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before == 0
    assert peak - before < 64  # not even a transient object per frame
    assert counts.sum() == 32 * 5010


BAD = {
    "unsorted edges": (
        ConfigError,
        "edges: expected strictly increasing edges per feature, feature 1",
        lambda e, c, m, x: (np.array([[0.0, 1.0], [1.0, 1.0]]), c, m, x),
    ),
    "nan edge": (
        ConfigError,
        "edges: expected finite values",
        lambda e, c, m, x: (np.array([[0.0, np.nan]] * 2), c, m, x),
    ),
    "one edge": (ConfigError, "edges: expected at least 2 edges", lambda e, c, m, x: (e[:, :1], c, m, x)),
    "counts shape": (
        ShapeError,
        "counts: expected int64 array of shape (2, 5)",
        lambda e, c, m, x: (e, c[:, :4], m, x),
    ),
    "counts dtype": (ShapeError, "counts: expected int64", lambda e, c, m, x: (e, c.astype(np.int32), m, x)),
    "moments read-only": (ShapeError, "moments: expected a writable array", lambda e, c, m, x: (e, c, _ro(m), x)),
    "x length": (ShapeError, "x: expected float64 array of shape (2,) or (N, 2)", lambda e, c, m, x: (e, c, m, x[:1])),
    "x dtype": (ShapeError, "x: expected 1 or 2-D float64", lambda e, c, m, x: (e, c, m, x.astype(np.float32))),
}


def _ro(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_the_same_error_from_both(native, twin, case) -> None:
    exc_type, message, change = BAD[case]
    errors = []
    for impl in (native, twin):
        counts, moments = _empty(2, 3)
        edges, counts, moments, x = change(np.array([[0.0, 1.0, 2.0]] * 2), counts, moments, np.zeros(2))
        with pytest.raises(exc_type) as info:
            impl["sketch_update"](x, edges, counts, moments)
        errors.append(str(info.value))
        if case.startswith("x "):  # the bound accumulator checks its argument the same way
            acc = impl["SketchAccumulator"](edges, counts, moments)
            with pytest.raises(exc_type, match="x: expected"):
                acc.update(x)
    assert message in errors[0]
    assert errors[0] == errors[1]
