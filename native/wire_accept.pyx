"""Fast accept of ``window`` record frames: msgpack read straight from the frame bytes, checked against
docs/PROTOCOL.md (§3 envelope, §4.2 window, §6 limits) without building the record's Python objects.

Twin: :func:`edge.kernels.reference_wire.window_envelope`. The authority is the shared validator,
:func:`edge.telemetry.protocol.decode_frame`: this kernel only ever *accepts*: it returns the envelope of a frame
it has proven valid, and None for anything else (another kind, or any doubt), and the caller then runs the shared
validator, which decides and writes the rejection message. So it must never accept what the validator rejects;
where exact agreement would cost complexity it is stricter and answers None: a known key given twice in one map
(a dict keeps the last one), a duplicate "c"/"m" or feature name whose earlier entry is invalid, a feature/counter
map larger than its limit before de-duplication, nesting deeper than 32 levels inside unknown keys. The frame is
read in one pass.

The msgpack reading itself (what msgpack would refuse is refused here too) is the shared cursor,
``wire_cursor.pxd``. The scoring thread's digest of stored windows is ``wire_digest.pyx``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport floor, isfinite, isnan
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

from wire_cursor cimport (
    K_ARRAY, K_FLOAT, K_MAP, K_NEG, K_STR, K_UINT, MAX_FEATURES, Cursor, Head, _be, _head, _is, _key, _skip,
)

cdef enum:
    MAX_FRAME_BYTES = 1 << 20
    MAX_NAME = 256  # PROTOCOL.md §6: names, ids (bytes)
    MAX_STAGES = 32
    MIN_COUNTS = 3
    MAX_BINS = 258
    MAX_CLASSES = 4096
    MAX_COUNTERS = 64

cdef uint64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef uint64_t FNV_OFFSET = 0xCBF29CE484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001B3ULL
cdef uint64_t MIX = 0x9E3779B97F4A7C15ULL


cdef struct Envelope:
    const uint8_t* device
    uint64_t device_len
    const uint8_t* boot
    uint64_t boot_len
    uint64_t seq
    int64_t t_ns
    int64_t wall_ns
    uint64_t layout  # model and (feature name, count length) pairs, hashed: _layout_* below



cdef inline int _name(const Head* h, uint64_t lo) noexcept nogil:
    """A str of ``lo``..256 bytes (names, ids)."""
    return h.kind == K_STR and lo <= h.u <= MAX_NAME


cdef inline int _profile_id(const Head* h) noexcept nogil:
    """A profile id (PROTOCOL.md §8): a str of 16 lowercase hex digits, or empty (no profile)."""
    cdef uint64_t i
    cdef uint8_t ch
    if h.kind != K_STR or not (h.u == 0 or h.u == 16):
        return 0
    for i in range(h.u):
        ch = h.data[i]
        if not ((ch >= 48 and ch <= 57) or (ch >= 97 and ch <= 102)):  # 0-9, a-f
            return 0
    return 1


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


cdef int _counts(Cursor* c, uint64_t* hi, uint64_t* lo, uint64_t* length) noexcept nogil:
    """A sketch's 3..258 uints; ``hi * 2**64 + lo``: the exact sum of all but the last (the NaN count)."""
    cdef Head h
    cdef uint64_t i, n, x
    hi[0] = 0
    lo[0] = 0
    if _head(c, &h) < 0 or h.kind != K_ARRAY or not (MIN_COUNTS <= h.u <= MAX_BINS):
        return -1
    n = h.u
    length[0] = n
    for i in range(n):
        if c.p < c.end and c.p[0] <= 0x7F:  # positive fixint, the common count
            x = c.p[0]
            c.p += 1
        elif _head(c, &h) < 0 or h.kind != K_UINT:
            return -1
        else:
            x = h.u
        if i + 1 < n:
            lo[0] += x
            if lo[0] < x:  # carried
                hi[0] += 1
    return 0


cdef inline int _le_sum(double d, uint64_t hi, uint64_t lo) noexcept nogil:
    """``d <= hi * 2**64 + lo`` exactly, as Python compares a float with an int (``d`` finite, >= 0)."""
    cdef double two64 = 18446744073709551616.0
    cdef double top, whole
    cdef uint64_t rest
    if d >= two64:
        top = floor(d / two64)  # exact: a power-of-two scaling
        if top > <double>hi:
            return 0
        rest = <uint64_t>(d - top * two64)  # exact (Sterbenz), below 2**64
        return <uint64_t>top < hi or rest <= lo
    whole = floor(d)
    rest = <uint64_t>whole
    return hi > 0 or rest < lo or (rest == lo and whole == d)


cdef inline double _number(const Head* h) noexcept nogil:
    """The value of a K_UINT, K_NEG or K_FLOAT head as a double."""
    cdef uint64_t bits
    cdef uint32_t bits32
    cdef double d
    cdef float f
    if h.kind == K_UINT:
        return <double>h.u
    if h.kind == K_NEG:
        return <double>h.s
    if h.u == 4:
        bits32 = <uint32_t>_be(h.num, 4)
        memcpy(&f, &bits32, 4)
        return f
    bits = _be(h.num, 8)
    memcpy(&d, &bits, 8)
    return d


cdef int _sketch(Cursor* c, uint64_t* length) noexcept nogil:
    """``{"c": 3..258 uints, "m": 5 numbers, ...}`` (the last "c"/"m" counts, as in a dict; every one is checked),
    whose moments ``[count, mean, M2, min, max]`` can be true (``edge.telemetry.bulk.moments_ok``): count, mean, M2
    finite, 0 <= count <= the counts but the NaN one (compared exactly, integer or float), M2 >= 0, min and max not
    NaN."""
    cdef Head h, v, count
    cdef uint64_t i, j, n, hi = 0, lo = 0
    cdef int seen_c = 0, seen_m = 0, fits
    cdef double m[5]
    if _head(c, &h) < 0 or h.kind != K_MAP:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &h) < 0:
            return -1
        if _is(&h, "c", 1):
            if _counts(c, &hi, &lo, length) < 0:
                return -1
            seen_c = 1
        elif _is(&h, "m", 1):
            if _head(c, &v) < 0 or v.kind != K_ARRAY or v.u != 5:
                return -1
            for j in range(5):
                if _head(c, &v) < 0 or not (v.kind == K_UINT or v.kind == K_NEG or v.kind == K_FLOAT):
                    return -1
                if j == 0:
                    count = v
                m[j] = _number(&v)
            seen_m = 1
        elif _skip(c, 3) < 0:
            return -1
    if not (seen_c and seen_m) or not (isfinite(m[0]) and isfinite(m[1]) and isfinite(m[2])):
        return -1
    if count.kind == K_UINT:
        fits = hi > 0 or count.u <= lo
    else:
        fits = m[0] >= 0 and _le_sum(m[0], hi, lo)
    if not fits or not m[2] >= 0 or isnan(m[3]) or isnan(m[4]):
        return -1
    return 0


cdef inline uint64_t _fnv(uint64_t x, const uint8_t* p, uint64_t n) noexcept nogil:
    """FNV-1a (64-bit) of ``p[:n]`` continued from ``x``."""
    cdef uint64_t i
    for i in range(n):
        x = (x ^ p[i]) * FNV_PRIME
    return x


cdef int _sketches(Cursor* c, uint64_t limit, uint64_t* layout) noexcept nogil:
    """A map of at most ``limit`` entries name → sketch; ``layout`` (when not NULL) += each entry's
    ``_fnv(name) + count length`` mixed (order-free): see reference_wire.layout_key."""
    cdef Head h
    cdef uint64_t i, n, length = 0, x
    cdef uint8_t two[2]
    if _head(c, &h) < 0 or h.kind != K_MAP or h.u > limit:
        return -1
    n = h.u
    for i in range(n):
        if _key(c, &h) < 0 or not _name(&h, 1):
            return -1
        x = _fnv(FNV_OFFSET, h.data, h.u)
        if _sketch(c, &length) < 0:
            return -1
        if layout != NULL:
            two[0] = length & 0xFF
            two[1] = length >> 8
            layout[0] += _fnv(x, two, 2) * MIX
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


cdef int _body(Cursor* c, uint64_t* layout) noexcept nogil:
    """A window body (PROTOCOL.md §4.2), read in one pass; unknown keys are skipped (after msgpack's checks).
    ``layout``: the body's layout key (reference_wire.layout_key)."""
    cdef Head h, k
    cdef uint64_t i, n, model = 0, feats = 0
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
            if r < 0 or _sketches(c, MAX_FEATURES, &feats) < 0:
                return -1
            continue
        r = _field(&k, "latency", 7, &seen[5])
        if r:
            if r < 0 or _sketches(c, MAX_STAGES, NULL) < 0:
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
        if r:
            if r < 0 or _head(c, &h) < 0 or not _name(&h, 0):
                return -1
            model = _fnv(FNV_OFFSET, h.data, h.u)
            continue
        r = _field(&k, "profile", 7, &seen[1])
        if r:
            if r < 0 or _head(c, &h) < 0 or not _profile_id(&h):
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
    layout[0] = model * FNV_PRIME + feats
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
            if r < 0 or _body(&c, &env.layout) < 0:
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
    cdef Envelope env = Envelope(NULL, 0, NULL, 0, 0, 0, 0, 0)
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


def window_accept(frame):
    """:func:`window_envelope` plus the window's layout key: ``(device, boot, seq, t_ns, wall_ns, layout)``, where
    ``layout`` (uint64) hashes the model and the (feature name, count length) pairs, in any order
    (:func:`edge.kernels.reference_wire.layout_key`): equal for windows a reference scores alike. A map that repeats
    a feature name hashes every entry (the twin, reading a dict, only the last). None as window_envelope."""
    cdef Envelope env = Envelope(NULL, 0, NULL, 0, 0, 0, 0, 0)
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
        env.layout,
    )
