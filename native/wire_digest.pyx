"""The scoring digest: stored (validated) window frames read for the drift engine, a list of frames at once into
two float64 blocks and without the GIL (it declines a repeated key, where its twin would see the last).
Twin: :func:`edge.kernels.reference_wire.window_digest_block`.

The msgpack reading itself is the shared cursor, ``wire_cursor.pxd``; the fast accept of window frames at ingest
is ``wire_accept.pyx``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy, memset

from wire_cursor cimport (
    K_ARRAY, K_FLOAT, K_MAP, K_NEG, K_STR, K_UINT, MAX_FEATURES, Cursor, Head, _be, _head, _is, _key, _skip,
)

from edge import _kernel_checks as _checks


cdef int _pack_counts(Cursor* c, double* row, Py_ssize_t n, Py_ssize_t width) noexcept nogil:
    """Counts of ``n`` items into ``row``: ``c[:-1]`` at the start, the last (NaN) count at ``width - 1``."""
    cdef Head h
    cdef Py_ssize_t j
    if _head(c, &h) < 0 or h.kind != K_ARRAY or <Py_ssize_t>h.u != n:
        return -1
    for j in range(n):
        if _head(c, &h) < 0 or h.kind != K_UINT:
            return -1
        row[j if j < n - 1 else width - 1] = <double>h.u
    return 0


# ----------------------------------------------------------------------------------------- block digest (no GIL)


cdef struct Layout:
    const char* model
    Py_ssize_t model_len
    const char* stage
    Py_ssize_t stage_len
    Py_ssize_t count  # features F
    Py_ssize_t width  # row width B
    Py_ssize_t moments_row  # -1: none
    Py_ssize_t n_lat  # latency counts (edges + 2); -1: not read
    Py_ssize_t n_pred  # prediction counts; -1: not read
    Py_ssize_t lat_at  # extra column of the latency flag (its counts follow)
    Py_ssize_t pred_at  # extra column of the predictions flag (its counts follow)
    Py_ssize_t extra  # extra columns
    const char* names[MAX_FEATURES]
    Py_ssize_t name_len[MAX_FEATURES]
    Py_ssize_t counts_len[MAX_FEATURES]


cdef int _double(const Head* h, double* out) noexcept nogil:
    """An int or float as a double (-1 for anything else)."""
    cdef uint64_t bits
    cdef uint32_t bits32
    cdef float f
    if h.kind == K_UINT:
        out[0] = <double>h.u
    elif h.kind == K_NEG:
        out[0] = <double>h.s
    elif h.kind == K_FLOAT and h.u == 4:
        bits32 = <uint32_t>_be(h.num, 4)
        memcpy(&f, &bits32, 4)
        out[0] = <double>f
    elif h.kind == K_FLOAT:
        bits = _be(h.num, 8)
        memcpy(&out[0], &bits, 8)
    else:
        return -1
    return 0


cdef int _int_counts(Cursor* c, double* out, Py_ssize_t n) noexcept nogil:
    """An array of integers; written to ``out`` when it holds ``n`` (returns 1), else only checked (returns 0)."""
    cdef Head h
    cdef uint64_t i, m
    cdef int fits
    if _head(c, &h) < 0 or h.kind != K_ARRAY:
        return -1
    m = h.u
    fits = n >= 0 and <Py_ssize_t>m == n
    for i in range(m):
        if _head(c, &h) < 0 or (h.kind != K_UINT and h.kind != K_NEG):
            return -1
        if fits:
            out[i] = <double>h.u if h.kind == K_UINT else <double>h.s
    return fits


cdef int _block_features(Cursor* c, const Layout* lay, double* counts, double* extra) noexcept nogil:
    cdef Head h, k, v
    cdef uint64_t i, j, n, e, q
    cdef Py_ssize_t row, r, filled = 0
    cdef int counted, moments = 0
    cdef double m0 = 0.0, m1 = 0.0, x
    cdef unsigned char seen[MAX_FEATURES]
    memset(seen, 0, sizeof(seen))
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &k) < 0:
            return -1
        row = -1
        if k.kind == K_STR:
            if <Py_ssize_t>i < lay.count and <Py_ssize_t>k.u == lay.name_len[i] and memcmp(k.data, lay.names[i], k.u) == 0:
                row = i  # the wire lists the features in the reference's order
            else:
                for r in range(lay.count):
                    if <Py_ssize_t>k.u == lay.name_len[r] and memcmp(k.data, lay.names[r], k.u) == 0:
                        row = r
                        break
        if row >= 0:
            if seen[row]:
                return -1  # a repeated feature (a dict keeps the last): decode it whole
            seen[row] = 1
            filled += 1
        if _head(c, &h) < 0 or h.kind != K_MAP:
            return -1
        e = h.u
        counted = 0
        for j in range(e):
            if _key(c, &k) < 0:
                return -1
            if row >= 0 and _is(&k, "c", 1):
                if counted or _pack_counts(c, &counts[row * lay.width], lay.counts_len[row], lay.width) < 0:
                    return -1
                counted = 1
            elif row >= 0 and row == lay.moments_row and _is(&k, "m", 1):
                if moments or _head(c, &v) < 0 or v.kind != K_ARRAY or v.u < 2:
                    return -1
                moments = 1
                for q in range(v.u):
                    if _head(c, &h) < 0 or _double(&h, &x) < 0:
                        return -1
                    if q == 0:
                        m0 = x
                    elif q == 1:
                        m1 = x
            elif _skip(c, 1) < 0:
                return -1
        if row >= 0 and not counted:
            return -1
    if filled != lay.count or (lay.moments_row >= 0 and not moments):
        return -1
    if moments and m0 > 0:
        extra[3] = m0
        extra[4] = m0 * m1
    return 0


cdef int _block_latency(Cursor* c, const Layout* lay, double* extra) noexcept nogil:
    cdef Head h, k
    cdef uint64_t i, j, n, e
    cdef int found = 0, counted, r
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &k) < 0:
            return -1
        if not (k.kind == K_STR and <Py_ssize_t>k.u == lay.stage_len and memcmp(k.data, lay.stage, k.u) == 0):
            if _skip(c, 1) < 0:
                return -1
            continue
        if found or _head(c, &h) < 0 or h.kind != K_MAP:
            return -1  # the stage twice (a dict keeps the last): decode it whole
        found = 1
        e = h.u
        counted = 0
        for j in range(e):
            if _key(c, &k) < 0:
                return -1
            if _is(&k, "c", 1):
                r = _int_counts(c, &extra[lay.lat_at + 1], lay.n_lat)
                if counted or r < 0:
                    return -1
                counted = 1
                extra[lay.lat_at] = r
            elif _skip(c, 1) < 0:
                return -1
        if not counted:
            return -1
    return 0


cdef int _block_counters(Cursor* c, double* extra) noexcept nogil:
    cdef Head h, k
    cdef uint64_t i, n
    cdef int at
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &k) < 0 or k.kind != K_STR or _head(c, &h) < 0 or (h.kind != K_UINT and h.kind != K_NEG):
            return -1
        at = 0 if _is(&k, "frames", 6) else 1 if _is(&k, "deadline_misses", 15) else 2 if _is(&k, "fallbacks", 9) else -1
        if at >= 0:
            extra[at] = <double>h.u if h.kind == K_UINT else <double>h.s
    return 0


cdef int _block_body(Cursor* c, const Layout* lay, double* counts, double* extra) noexcept nogil:
    cdef Head h, k
    cdef uint64_t j, e
    cdef int field, fields = 0, r
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    e = h.u
    for j in range(e):
        if _key(c, &k) < 0:
            return -1
        field = (1 if _is(&k, "model", 5) else 2 if _is(&k, "features", 8) else 4 if _is(&k, "latency", 7)
                 else 8 if _is(&k, "predictions", 11) else 16 if _is(&k, "counters", 8) else 0)
        if field & fields:
            return -1  # a repeated key (a dict keeps the last): decode it whole
        fields |= field
        if field == 1:
            if _head(c, &h) < 0 or h.kind != K_STR or <Py_ssize_t>h.u != lay.model_len:
                return -1
            if memcmp(h.data, lay.model, h.u) != 0:
                return -1
        elif field == 2:
            if _block_features(c, lay, counts, extra) < 0:
                return -1
        elif field == 4:
            if _block_latency(c, lay, extra) < 0:
                return -1
        elif field == 8:
            r = _int_counts(c, &extra[lay.pred_at + 1], lay.n_pred)
            if r < 0:
                return -1
            extra[lay.pred_at] = r
        elif field == 16:
            if _block_counters(c, extra) < 0:
                return -1
        elif _skip(c, 1) < 0:
            return -1
    return 0 if fields == 31 else -1


cdef int _block_one(const uint8_t* data, Py_ssize_t size, const Layout* lay, double* counts, double* extra) noexcept nogil:
    cdef Cursor c = Cursor(data, data + size)
    cdef Head h, k
    cdef uint64_t i, n
    cdef int body = 0
    memset(counts, 0, lay.count * lay.width * sizeof(double))
    memset(extra, 0, lay.extra * sizeof(double))
    if _head(&c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(&c, &k) < 0:
            return -1
        if not _is(&k, "body", 4):
            if _skip(&c, 1) < 0:
                return -1
            continue
        if body or _block_body(&c, lay, counts, extra) < 0:
            return -1
        body = 1
    return 0 if body and c.p == c.end else -1


def window_digest_block(list frames, str model, tuple names, tuple lengths, Py_ssize_t width, Py_ssize_t moments_row,
                        str stage, Py_ssize_t n_lat, Py_ssize_t n_pred, counts, extra, ok):
    """Digest stored (validated) window frames of ``model`` for the drift engine, without the GIL: for frame ``i``,
    its feature counts packed into ``counts[i]`` (float64 (F, ``width``); row r holds ``c[:-1]`` of ``lengths[r]``
    counts, zeros, the NaN count last) and ``extra[i]``: the counters frames, deadline_misses, fallbacks, the
    moments count ``m[0]`` and ``m[0] * m[1]`` of feature ``moments_row`` (when ``m[0] > 0``), a flag and the
    ``n_lat`` counts of latency ``stage``, a flag and the ``n_pred`` prediction counts (a flag is 1 when the counts
    had that length; -1: never). ``ok[i]``: 1 when digested, 0 when the frame is not such a window (decode it
    whole). All arrays are the caller's. Returns the number digested. ShapeError when the layout does not
    describe the arrays (checked by :func:`edge._kernel_checks.digest_block`, as in the twin:
    :func:`edge.kernels.reference_wire.window_digest_block`)."""
    cdef Layout lay
    cdef Py_ssize_t i, k = len(frames), size, digested = 0
    cdef const uint8_t** data
    cdef Py_ssize_t* sizes
    lay.extra = _checks.digest_block(k, names, lengths, width, moments_row, n_lat, n_pred, counts, extra, ok)
    cdef double[:, :, ::1] counts_v = counts
    cdef double[:, ::1] extra_v = extra
    cdef unsigned char[::1] ok_v = ok
    lay.count, lay.width, lay.moments_row, lay.n_lat, lay.n_pred = len(names), width, moments_row, n_lat, n_pred
    if lay.count > MAX_FEATURES:  # the check's limit and this table's size must agree
        raise RuntimeError(f"window_digest_block: at most {MAX_FEATURES} features fit the layout, got {lay.count}")
    lay.lat_at = 5
    lay.pred_at = 6 + max(n_lat, 0)
    for i in range(lay.count):
        lay.names[i] = PyUnicode_AsUTF8AndSize(names[i], &size)
        lay.name_len[i] = size
        lay.counts_len[i] = lengths[i]
    lay.model = PyUnicode_AsUTF8AndSize(model, &size)
    lay.model_len = size
    lay.stage = PyUnicode_AsUTF8AndSize(stage, &size)
    lay.stage_len = size
    data = <const uint8_t**>malloc(max(k, 1) * sizeof(uint8_t*))
    sizes = <Py_ssize_t*>malloc(max(k, 1) * sizeof(Py_ssize_t))
    if data == NULL or sizes == NULL:
        free(data)
        free(sizes)
        raise MemoryError()
    try:
        for i in range(k):  # the list owns the frames (immutable bytes) while the GIL is released
            frame = frames[i]
            if type(frame) is bytes:
                data[i], sizes[i] = <const uint8_t*>PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame)
            else:
                data[i], sizes[i] = NULL, 0
        with nogil:
            for i in range(k):
                ok_v[i] = data[i] != NULL and _block_one(data[i], sizes[i], &lay, &counts_v[i, 0, 0], &extra_v[i, 0]) == 0
                digested += ok_v[i]
    finally:
        free(data)
        free(sizes)
    return digested
