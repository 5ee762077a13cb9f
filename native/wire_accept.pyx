"""Fast accept of ``window`` record frames: msgpack read straight from the frame bytes, checked against
docs/PROTOCOL.md (§3 envelope, §4.2 window, §6 limits) without building the record's Python objects.

Twin: :func:`edge.collector.frames.window_envelope_twin` (the shared validator,
:func:`edge.telemetry.protocol.decode_frame`). This kernel only ever *accepts*: it returns the envelope of a frame
it has proven valid, and None for anything else (another kind, or any doubt), and the caller then runs the shared
validator, which decides and writes the rejection message. So it must never accept what the validator rejects;
where exact agreement would cost complexity it is stricter and answers None: a known key given twice in one map
(a dict keeps the last one), a duplicate "c"/"m" or feature name whose earlier entry is invalid, a feature/counter
map larger than its limit before de-duplication, nesting deeper than 32 levels inside unknown keys. The frame is
read in one pass.

The scoring digest reads stored (validated) window frames for the drift engine: ``window_digest_block`` a list of
frames, into two float64 blocks and without the GIL (it declines a repeated key, where its twin would see the last).
Twin: :func:`edge.collector.frames.window_digest_block_twin`.

What msgpack (``unpackb(raw=False, strict_map_key=True, max_str_len=1024, max_bin_len=786432,
max_array_len=4096, max_map_len=512, no ext types)``) would refuse is refused here too: the reserved byte 0xc1,
ext types, strings that are not strict UTF-8 (no surrogates, no overlong forms, nothing beyond U+10FFFF), map keys
other than str/bin, the length limits, truncation and trailing bytes.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy, memset
from libc.stdint cimport uint32_t

cdef enum:
    MAX_FRAME_BYTES = 1 << 20
    MAX_STR_WIRE = 1024  # msgpack-level string limit (bytes)
    MAX_BIN = 786432
    MAX_ARRAY = 4096
    MAX_MAP = 512
    MAX_NAME = 256  # PROTOCOL.md §6: names, ids (bytes)
    MAX_FEATURES = 256
    MAX_STAGES = 32
    MIN_COUNTS = 3
    MAX_BINS = 258
    MAX_CLASSES = 4096
    MAX_COUNTERS = 64
    MAX_SKIP_DEPTH = 32

cdef enum:
    K_NIL
    K_BOOL
    K_UINT  # a non-negative integer (any encoding); value in ``u``
    K_NEG  # a negative integer; value in ``s``
    K_FLOAT
    K_STR
    K_BIN
    K_ARRAY  # ``u`` items follow
    K_MAP  # ``u`` entries follow

cdef uint64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef struct Cursor:
    const uint8_t* p
    const uint8_t* end


cdef struct Head:
    int kind
    uint64_t u
    int64_t s
    const uint8_t* num  # a float's 4 or 8 big-endian bytes (inside the frame)
    const uint8_t* data  # str/bin payload (inside the frame)


cdef struct Envelope:
    const uint8_t* device
    uint64_t device_len
    const uint8_t* boot
    uint64_t boot_len
    uint64_t seq
    int64_t t_ns
    int64_t wall_ns


cdef inline uint64_t _be(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef int _utf8_ok(const uint8_t* s, uint64_t n) noexcept nogil:
    """1 when ``s[:n]`` is strict UTF-8 as Python's decoder reads it (Unicode Table 3-7), else 0."""
    cdef uint64_t i = 0
    cdef uint8_t c, lo, hi
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            continue
        lo, hi = 0x80, 0xBF
        if 0xC2 <= c <= 0xDF:
            if i + 1 >= n or not (0x80 <= s[i + 1] <= 0xBF):
                return 0
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F
            if i + 2 >= n or not (lo <= s[i + 1] <= hi) or not (0x80 <= s[i + 2] <= 0xBF):
                return 0
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F
            if (i + 3 >= n or not (lo <= s[i + 1] <= hi) or not (0x80 <= s[i + 2] <= 0xBF)
                    or not (0x80 <= s[i + 3] <= 0xBF)):
                return 0
            i += 4
        else:
            return 0
    return 1


cdef int _take(Cursor* c, uint64_t n, const uint8_t** out) noexcept nogil:
    if <uint64_t>(c.end - c.p) < n:
        return -1
    out[0] = c.p
    c.p += n
    return 0


cdef int _head(Cursor* c, Head* h) noexcept nogil:
    """Read one value's header; a str/bin payload is consumed (and checked), array items / map entries are not.
    0 on success, -1 for anything msgpack (as the validator calls it) would refuse, or any doubt."""
    cdef const uint8_t* q
    cdef uint8_t b
    cdef int64_t sv
    cdef int n = 0
    if c.p >= c.end:
        return -1
    b = c.p[0]
    c.p += 1
    if b <= 0x7F:
        h.kind, h.u = K_UINT, b
        return 0
    if b >= 0xE0:
        h.kind, h.s = K_NEG, <int64_t>(<signed char>b)
        return 0
    if 0x80 <= b <= 0x8F:
        h.kind, h.u = K_MAP, b & 0x0F
        return 0
    if 0x90 <= b <= 0x9F:
        h.kind, h.u = K_ARRAY, b & 0x0F
        return 0
    if 0xA0 <= b <= 0xBF:
        h.kind, h.u = K_STR, b & 0x1F
    elif b == 0xC0:
        h.kind = K_NIL
        return 0
    elif b == 0xC2 or b == 0xC3:
        h.kind = K_BOOL
        return 0
    elif 0xC4 <= b <= 0xC6:  # bin 8/16/32
        n = 1 << (b - 0xC4)
        if _take(c, n, &q) < 0:
            return -1
        h.kind, h.u = K_BIN, _be(q, n)
        if h.u > MAX_BIN or _take(c, h.u, &h.data) < 0:
            return -1
        return 0
    elif b == 0xCA or b == 0xCB:
        h.kind, h.u = K_FLOAT, 4 if b == 0xCA else 8
        return _take(c, h.u, &h.num)
    elif 0xCC <= b <= 0xCF:  # uint 8/16/32/64
        n = 1 << (b - 0xCC)
        if _take(c, n, &q) < 0:
            return -1
        h.kind, h.u = K_UINT, _be(q, n)
        return 0
    elif 0xD0 <= b <= 0xD3:  # int 8/16/32/64
        n = 1 << (b - 0xD0)
        if _take(c, n, &q) < 0:
            return -1
        if n == 1:
            sv = <signed char>q[0]
        elif n == 2:
            sv = <short>_be(q, 2)
        elif n == 4:
            sv = <int>_be(q, 4)
        else:
            sv = <int64_t>_be(q, 8)
        if sv < 0:
            h.kind, h.s = K_NEG, sv
        else:
            h.kind, h.u = K_UINT, <uint64_t>sv
        return 0
    elif 0xD9 <= b <= 0xDB:  # str 8/16/32
        n = 1 << (b - 0xD9)
        if _take(c, n, &q) < 0:
            return -1
        h.kind, h.u = K_STR, _be(q, n)
    elif b == 0xDC or b == 0xDD:  # array 16/32
        n = 2 if b == 0xDC else 4
        if _take(c, n, &q) < 0:
            return -1
        h.kind, h.u = K_ARRAY, _be(q, n)
        return -1 if h.u > MAX_ARRAY else 0
    elif b == 0xDE or b == 0xDF:  # map 16/32
        n = 2 if b == 0xDE else 4
        if _take(c, n, &q) < 0:
            return -1
        h.kind, h.u = K_MAP, _be(q, n)
        return -1 if h.u > MAX_MAP else 0
    else:  # 0xC1 (never used), ext 8/16/32, fixext: refused
        return -1
    # a string: payload within the frame, within the limit, strict UTF-8
    if h.u > MAX_STR_WIRE or _take(c, h.u, &h.data) < 0:
        return -1
    return 0 if _utf8_ok(h.data, h.u) else -1


cdef int _skip(Cursor* c, int depth) noexcept nogil:
    """Consume one whole value (checked as msgpack would); -1 on refusal or nesting beyond MAX_SKIP_DEPTH."""
    cdef Head h
    cdef uint64_t i, n
    if depth > MAX_SKIP_DEPTH or _head(c, &h) < 0:
        return -1
    n = h.u
    if h.kind == K_ARRAY:
        for i in range(n):
            if _skip(c, depth + 1) < 0:
                return -1
    elif h.kind == K_MAP:
        for i in range(n):
            if _key(c, &h) < 0 or _skip(c, depth + 1) < 0:
                return -1
    return 0


cdef inline int _key(Cursor* c, Head* h) noexcept nogil:
    """A map key: str or bin only (``strict_map_key``)."""
    if _head(c, h) < 0 or (h.kind != K_STR and h.kind != K_BIN):
        return -1
    return 0


cdef inline int _is(const Head* h, const char* name, uint64_t n) noexcept nogil:
    return h.kind == K_STR and h.u == n and memcmp(h.data, name, n) == 0


cdef inline int _name(const Head* h, uint64_t lo) noexcept nogil:
    """A str of ``lo``..256 bytes (names, ids)."""
    return h.kind == K_STR and lo <= h.u <= MAX_NAME


cdef int _uints(Cursor* c, uint64_t lo, uint64_t hi) noexcept nogil:
    """An array of ``lo``..``hi`` unsigned integers."""
    cdef Head h
    cdef uint64_t i, n
    if _head(c, &h) < 0 or h.kind != K_ARRAY or not (lo <= h.u <= hi):
        return -1
    n = h.u
    for i in range(n):
        if c.p < c.end and c.p[0] <= 0x7F:  # positive fixint, the common count
            c.p += 1
        elif _head(c, &h) < 0 or h.kind != K_UINT:
            return -1
    return 0


cdef int _sketch(Cursor* c) noexcept nogil:
    """``{"c": 3..258 uints, "m": 5 numbers, ...}`` (the last "c"/"m" counts, as in a dict; every one is checked)."""
    cdef Head h, v
    cdef uint64_t i, j, n
    cdef int seen_c = 0, seen_m = 0
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &h) < 0:
            return -1
        if _is(&h, "c", 1):
            if _uints(c, MIN_COUNTS, MAX_BINS) < 0:
                return -1
            seen_c = 1
        elif _is(&h, "m", 1):
            if _head(c, &v) < 0 or v.kind != K_ARRAY or v.u != 5:
                return -1
            for j in range(5):
                if _head(c, &v) < 0 or not (v.kind == K_UINT or v.kind == K_NEG or v.kind == K_FLOAT):
                    return -1
            seen_m = 1
        elif _skip(c, 3) < 0:
            return -1
    return 0 if seen_c and seen_m else -1


cdef int _sketches(Cursor* c, uint64_t limit) noexcept nogil:
    """A map of at most ``limit`` entries name → sketch."""
    cdef Head h
    cdef uint64_t i, n
    if _head(c, &h) < 0 or h.kind != K_MAP or h.u > limit:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &h) < 0 or not _name(&h, 1) or _sketch(c) < 0:
            return -1
    return 0


cdef int _counters(Cursor* c) noexcept nogil:
    """At most 64 entries name → uint, ``frames`` among them."""
    cdef Head h
    cdef uint64_t i, n
    cdef int frames = 0
    if _head(c, &h) < 0 or h.kind != K_MAP or h.u > MAX_COUNTERS:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &h) < 0 or not _name(&h, 1):
            return -1
        frames |= _is(&h, "frames", 6)
        if _head(c, &h) < 0 or h.kind != K_UINT:
            return -1
    return 0 if frames else -1


cdef inline int _int64(Cursor* c, int64_t* out) noexcept nogil:
    cdef Head h
    if _head(c, &h) < 0:
        return -1
    if h.kind == K_NEG:
        out[0] = h.s
        return 0
    if h.kind == K_UINT and h.u <= INT64_MAX:
        out[0] = <int64_t>h.u
        return 0
    return -1


cdef inline int _field(const Head* key, const char* name, uint64_t n, int* seen) noexcept nogil:
    """1 when ``key`` is ``name`` (seen for the first time: a repeated key, which a dict resolves to its last value,
    is left to the validator: -1), else 0."""
    if key.kind != K_STR or key.u != n or memcmp(key.data, name, n) != 0:
        return 0
    if seen[0]:
        return -1
    seen[0] = 1
    return 1


cdef int _body(Cursor* c) noexcept nogil:
    """A window body (PROTOCOL.md §4.2), read in one pass; unknown keys are skipped (after msgpack's checks)."""
    cdef Head h, k
    cdef uint64_t i, n
    cdef int64_t start = 0, stop = 0
    cdef int f
    cdef int seen[8]
    cdef int r
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    for f in range(8):
        seen[f] = 0
    n = h.u
    for i in range(n):
        if _key(c, &k) < 0:
            return -1
        r = _field(&k, "features", 8, &seen[4])
        if r:
            if r < 0 or _sketches(c, MAX_FEATURES) < 0:
                return -1
            continue
        r = _field(&k, "latency", 7, &seen[5])
        if r:
            if r < 0 or _sketches(c, MAX_STAGES) < 0:
                return -1
            continue
        r = _field(&k, "predictions", 11, &seen[6])
        if r:
            if r < 0 or _uints(c, 0, MAX_CLASSES) < 0:
                return -1
            continue
        r = _field(&k, "counters", 8, &seen[7])
        if r:
            if r < 0 or _counters(c) < 0:
                return -1
            continue
        r = _field(&k, "model", 5, &seen[0])
        if not r:
            r = _field(&k, "profile", 7, &seen[1])
        if r:
            if r < 0 or _head(c, &h) < 0 or not _name(&h, 0):
                return -1
            continue
        r = _field(&k, "start_ns", 8, &seen[2])
        if r:
            if r < 0 or _int64(c, &start) < 0:
                return -1
            continue
        r = _field(&k, "end_ns", 6, &seen[3])
        if r:
            if r < 0 or _int64(c, &stop) < 0:
                return -1
            continue
        if _skip(c, 1) < 0:
            return -1
    for f in range(8):
        if not seen[f]:
            return -1
    return 0 if stop > start else -1


cdef int _window(const uint8_t* data, Py_ssize_t size, Envelope* env) noexcept nogil:
    """The whole frame in one pass: one map, no trailing bytes, a complete and valid window record."""
    cdef Cursor c = Cursor(data, data + size)
    cdef Head h, k
    cdef uint64_t i, n
    cdef int f
    cdef int seen[8]
    cdef int r
    if _head(&c, &h) < 0 or h.kind != K_MAP:
        return -1
    for f in range(8):
        seen[f] = 0
    n = h.u
    for i in range(n):
        if _key(&c, &k) < 0:
            return -1
        r = _field(&k, "body", 4, &seen[7])
        if r:
            if r < 0 or _body(&c) < 0:
                return -1
            continue
        r = _field(&k, "v", 1, &seen[0])
        if r:
            if r < 0 or _head(&c, &h) < 0 or h.kind != K_UINT or h.u != 1:
                return -1
            continue
        r = _field(&k, "kind", 4, &seen[1])
        if r:
            if r < 0 or _head(&c, &h) < 0 or not _is(&h, "window", 6):
                return -1
            continue
        r = _field(&k, "device", 6, &seen[2])
        if r:
            if r < 0 or _head(&c, &h) < 0 or not _name(&h, 1):
                return -1
            env.device, env.device_len = h.data, h.u
            continue
        r = _field(&k, "boot", 4, &seen[3])
        if r:
            if r < 0 or _head(&c, &h) < 0 or not _name(&h, 1):
                return -1
            env.boot, env.boot_len = h.data, h.u
            continue
        r = _field(&k, "seq", 3, &seen[4])
        if r:
            if r < 0 or _head(&c, &h) < 0 or h.kind != K_UINT or not (1 <= h.u <= INT64_MAX):
                return -1
            env.seq = h.u
            continue
        r = _field(&k, "t_ns", 4, &seen[5])
        if r:
            if r < 0 or _int64(&c, &env.t_ns) < 0:
                return -1
            continue
        r = _field(&k, "wall_ns", 7, &seen[6])
        if r:
            if r < 0 or _int64(&c, &env.wall_ns) < 0 or env.wall_ns < 0:
                return -1
            continue
        if _skip(&c, 1) < 0:
            return -1
    if c.p != c.end:
        return -1  # trailing bytes
    for f in range(8):
        if not seen[f]:
            return -1
    return 0


def window_envelope(frame):
    """``(device, boot, seq, t_ns, wall_ns)`` of a valid ``window`` record frame (``bytes``, not kept), None for
    anything else: then the shared validator decides. Allocates the two strings and the tuple."""
    cdef Envelope env = Envelope(NULL, 0, NULL, 0, 0, 0, 0)
    cdef Py_ssize_t size
    if type(frame) is not bytes:
        return None
    size = PyBytes_GET_SIZE(frame)
    if size > MAX_FRAME_BYTES or _window(<const uint8_t*>PyBytes_AS_STRING(frame), size, &env) < 0:
        return None
    return (
        PyUnicode_DecodeUTF8(<const char*>env.device, env.device_len, NULL),
        PyUnicode_DecodeUTF8(<const char*>env.boot, env.boot_len, NULL),
        env.seq,
        env.t_ns,
        env.wall_ns,
    )


# ----------------------------------------------------------------------------------------- scoring digest


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
                        str stage, Py_ssize_t n_lat, Py_ssize_t n_pred, double[:, :, ::1] counts, double[:, ::1] extra,
                        unsigned char[::1] ok):
    """Digest stored (validated) window frames of ``model`` for the drift engine, without the GIL: for frame ``i``,
    its feature counts packed into ``counts[i]`` (float64 (F, ``width``); row r holds ``c[:-1]`` of ``lengths[r]``
    counts, zeros, the NaN count last) and ``extra[i]``: the counters frames, deadline_misses, fallbacks, the
    moments count ``m[0]`` and ``m[0] * m[1]`` of feature ``moments_row`` (when ``m[0] > 0``), a flag and the
    ``n_lat`` counts of latency ``stage``, a flag and the ``n_pred`` prediction counts (a flag is 1 when the counts
    had that length; -1: never). ``ok[i]``: 1 when digested, 0 when the frame is not such a window (decode it
    whole). All arrays are the caller's. Returns the number digested. ValueError when the layout does not
    describe the arrays. See :func:`edge.collector.frames.window_digest_block_twin`."""
    cdef Layout lay
    cdef Py_ssize_t i, k = len(frames), size, digested = 0
    cdef const uint8_t** data
    cdef Py_ssize_t* sizes
    lay.count, lay.width, lay.moments_row, lay.n_lat, lay.n_pred = len(names), width, moments_row, n_lat, n_pred
    lay.lat_at = 5
    lay.pred_at = 6 + max(n_lat, 0)
    lay.extra = lay.pred_at + 1 + max(n_pred, 0)
    if (lay.count > MAX_FEATURES or lay.count < 1 or len(lengths) != lay.count or width < 2
            or not -1 <= moments_row < lay.count or counts.shape[0] < k or counts.shape[1] != lay.count
            or counts.shape[2] != width or extra.shape[0] < k or extra.shape[1] != lay.extra or ok.shape[0] < k):
        raise ValueError(f"window_digest_block: expected counts (>={k}, {lay.count}, {width}), extra (>={k}, "
                         f"{lay.extra}), ok (>={k},), got {tuple(counts.shape)[:3]}, {tuple(extra.shape)[:2]}, "
                         f"{ok.shape[0]}")
    for i in range(lay.count):
        if type(names[i]) is not str or not 1 <= lengths[i] <= width:
            raise ValueError(f"window_digest_block: expected names (str) with 1..{width} counts, got "
                             f"{names[i]!r} with {lengths[i]!r}")
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
                ok[i] = data[i] != NULL and _block_one(data[i], sizes[i], &lay, &counts[i, 0, 0], &extra[i, 0]) == 0
                digested += ok[i]
    finally:
        free(data)
        free(sizes)
    return digested
