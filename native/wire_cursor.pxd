"""The msgpack cursor shared by the wire readers (``wire_accept.pyx``: the collector's fast accept of window frames;
``wire_digest.pyx``: the scoring thread's block digest): one value's header at a time, read in place from the frame
bytes, with no Python object and without the GIL.

What msgpack (``unpackb(raw=False, strict_map_key=True, max_str_len=1024, max_bin_len=786432,
max_array_len=4096, max_map_len=512, no ext types)``, as :func:`edge.telemetry.protocol.decode_frame` calls it)
would refuse, the cursor refuses too: the reserved byte 0xc1, ext types, strings that are not strict UTF-8 (no
surrogates, no overlong forms, nothing beyond U+10FFFF), map keys other than str/bin, the length limits and
truncation. Every function returns -1 on refusal (or any doubt) and never reads outside ``[p, end)``.

Inline functions in a .pxd: each reader compiles its own copy (no cross-module C calls).
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

cdef enum:
    MAX_STR_WIRE = 1024  # msgpack-level string limit (bytes)
    MAX_BIN = 786432
    MAX_ARRAY = 4096
    MAX_MAP = 512
    MAX_SKIP_DEPTH = 32
    MAX_FEATURES = 256  # PROTOCOL.md §6: features in a window (both readers size tables by it)

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


cdef struct Cursor:
    const uint8_t* p
    const uint8_t* end


cdef struct Head:
    int kind
    uint64_t u
    int64_t s
    const uint8_t* num  # a float's 4 or 8 big-endian bytes (inside the frame)
    const uint8_t* data  # str/bin payload (inside the frame)


cdef inline uint64_t _be(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef inline int _utf8_ok(const uint8_t* s, uint64_t n) noexcept nogil:
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


cdef inline int _take(Cursor* c, uint64_t n, const uint8_t** out) noexcept nogil:
    if <uint64_t>(c.end - c.p) < n:
        return -1
    out[0] = c.p
    c.p += n
    return 0


cdef inline int _head(Cursor* c, Head* h) noexcept nogil:
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


cdef inline int _skip(Cursor* c, int depth) noexcept nogil:
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


