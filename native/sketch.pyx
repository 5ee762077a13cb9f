"""Window-sketch kernels: reference-binned histograms + running moments per feature, and their merge.

Twins: :func:`edge.kernels.reference.sketch_update`, :func:`~edge.kernels.reference.sketch_merge` and
:class:`~edge.kernels.reference.SketchAccumulator`. Moments are updated in exactly the twin's order of floating-point
operations (and the build turns off FMA contraction), so both backends produce identical bits.
"""

cimport numpy as cnp
from libc.math cimport isinf, isnan

from edge import _kernel_checks as _checks

cnp.import_array()

cdef enum:
    COUNT = 0
    MEAN = 1
    M2 = 2
    MIN = 3
    MAX = 4


def sketch_update(x, edges, counts, moments):
    """See :func:`edge.kernels.reference.sketch_update`."""
    edges, counts, moments = _checks.sketch_state(edges, counts, moments)
    x = _checks.sketch_values(x, edges.shape[0])
    _update_rows(x, edges, counts, moments)


cdef inline void _update_one(const double* x, Py_ssize_t xstride, Py_ssize_t F, Py_ssize_t E,
                             const double* edges, Py_ssize_t es0, Py_ssize_t es1,
                             char* counts, Py_ssize_t cs0, Py_ssize_t cs1,
                             char* moments, Py_ssize_t ms0, Py_ssize_t ms1) noexcept nogil:
    """One frame. Pointers and byte strides; edges rows sorted (validated by the caller)."""
    cdef Py_ssize_t f, lo, hi, mid
    cdef double v, n, d, mean
    cdef const char* erow
    cdef double* m
    for f in range(F):
        v = (<const double*>((<const char*>x) + f * xstride))[0]
        if isnan(v):
            (<long long*>(counts + f * cs0 + (E + 1) * cs1))[0] += 1
            continue
        # number of edges <= v  (searchsorted side="right")
        erow = (<const char*>edges) + f * es0
        lo = 0
        hi = E
        while lo < hi:
            mid = (lo + hi) >> 1
            if (<const double*>(erow + mid * es1))[0] <= v:
                lo = mid + 1
            else:
                hi = mid
        (<long long*>(counts + f * cs0 + lo * cs1))[0] += 1
        if isinf(v):
            continue
        m = <double*>(moments + f * ms0)
        # Welford; the same operations, in the same order, as the NumPy twin
        n = (<double*>(<char*>m + COUNT * ms1))[0] + 1.0
        d = v - (<double*>(<char*>m + MEAN * ms1))[0]
        mean = (<double*>(<char*>m + MEAN * ms1))[0] + d / n
        (<double*>(<char*>m + M2 * ms1))[0] = (<double*>(<char*>m + M2 * ms1))[0] + d * (v - mean)
        (<double*>(<char*>m + MEAN * ms1))[0] = mean
        (<double*>(<char*>m + COUNT * ms1))[0] = n
        if v < (<double*>(<char*>m + MIN * ms1))[0]:
            (<double*>(<char*>m + MIN * ms1))[0] = v
        if v > (<double*>(<char*>m + MAX * ms1))[0]:
            (<double*>(<char*>m + MAX * ms1))[0] = v


cdef void _update_rows(cnp.ndarray x, cnp.ndarray edges, cnp.ndarray counts, cnp.ndarray moments) noexcept:
    cdef Py_ssize_t r
    cdef Py_ssize_t F = edges.shape[0], E = edges.shape[1]
    for r in range(x.shape[0]):
        _update_one(<const double*>(cnp.PyArray_BYTES(x) + r * x.strides[0]), x.strides[1], F, E,
                    <const double*>cnp.PyArray_BYTES(edges), edges.strides[0], edges.strides[1],
                    cnp.PyArray_BYTES(counts), counts.strides[0], counts.strides[1],
                    cnp.PyArray_BYTES(moments), moments.strides[0], moments.strides[1])


def sketch_merge(dst_counts, dst_moments, src_counts, src_moments):
    """See :func:`edge.kernels.reference.sketch_merge`."""
    dst_counts, dst_moments, src_counts, src_moments = _checks.sketch_merge(dst_counts, dst_moments, src_counts, src_moments)
    _merge(dst_counts, dst_moments, src_counts, src_moments)


cdef void _merge(long long[:, :] dc, double[:, :] dm, const long long[:, :] sc, const double[:, :] sm) noexcept:
    cdef Py_ssize_t f, b
    cdef double na, nb, n, w, d, mean, m2
    with nogil:
        for f in range(dc.shape[0]):
            for b in range(dc.shape[1]):
                dc[f, b] += sc[f, b]
            na = dm[f, COUNT]
            nb = sm[f, COUNT]
            if nb == 0:
                continue
            if na == 0:
                for b in range(5):
                    dm[f, b] = sm[f, b]
                continue
            n = na + nb
            w = nb / n
            d = sm[f, MEAN] - dm[f, MEAN]
            mean = dm[f, MEAN] + d * w
            m2 = dm[f, M2] + sm[f, M2] + d * d * na * w
            dm[f, MEAN] = mean
            dm[f, M2] = m2
            dm[f, COUNT] = n
            if sm[f, MIN] < dm[f, MIN]:
                dm[f, MIN] = sm[f, MIN]
            if sm[f, MAX] > dm[f, MAX]:
                dm[f, MAX] = sm[f, MAX]


cdef class SketchAccumulator:
    """See :class:`edge.kernels.reference.SketchAccumulator`: the arrays are validated and bound here, so
    :meth:`update` only checks its argument's dtype and shape (in C) before the arithmetic."""

    cdef readonly cnp.ndarray edges, counts, moments
    cdef readonly Py_ssize_t n_features

    def __init__(self, edges, counts, moments):
        self.edges, self.counts, self.moments = _checks.sketch_state(edges, counts, moments)
        self.n_features = self.edges.shape[0]

    def update(self, x):
        """Add one frame's features (float64 (F,)) or a batch (N, F)."""
        cdef cnp.ndarray a
        if cnp.PyArray_CheckExact(x):
            a = <cnp.ndarray>x
            if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64 and cnp.PyArray_NDIM(a) == 1 and a.shape[0] == self.n_features:
                _update_one(<const double*>cnp.PyArray_BYTES(a), a.strides[0], self.n_features, self.edges.shape[1],
                            <const double*>cnp.PyArray_BYTES(self.edges), self.edges.strides[0], self.edges.strides[1],
                            cnp.PyArray_BYTES(self.counts), self.counts.strides[0], self.counts.strides[1],
                            cnp.PyArray_BYTES(self.moments), self.moments.strides[0], self.moments.strides[1])
                return
        _update_rows(_checks.sketch_values(x, self.n_features), self.edges, self.counts, self.moments)
