"""Frame preprocessing kernel: uint8 HWC frame → model input (float32 normalized, or int8/uint8 quantized).

Twin: :func:`edge.kernels.reference.preprocess_frame` (same signature, same errors). The Python-level checks are
shared (:mod:`edge._kernel_checks`); the arithmetic below runs without the GIL and allocates nothing.

On x86-64 this source is also compiled for AVX2 (``preprocess_avx2.pyx``); :mod:`edge.kernels` loads that build when
:func:`cpu_has_avx2` says this CPU runs it. Both builds give the same bytes (integer arithmetic, no float contraction).
"""

cimport numpy as cnp
from libc.math cimport sqrt
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t, uint16_t

from edge import _kernel_checks as _checks

cnp.import_array()

ctypedef fused pixel_t:
    float
    int8_t
    uint8_t

cdef enum:
    MAX_CHANNELS = 4
    ROW_SUMS3_MAX_PX = 1048576  # the longest row _row_sums3 sums exactly (its 32-bit square lanes: 255² · W / 16 < 2³²)


cdef extern from *:
    """
    #if defined(__AVX2__)
    #define EDGE_PREPROCESS_ISA "avx2"
    #define EDGE_BLEND_PAIRS 0
    #else
    #define EDGE_PREPROCESS_ISA "baseline"
    #define EDGE_BLEND_PAIRS 1
    #endif
    static int edge_cpu_has_avx2(void) {
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");  /* the CPU's flag and the OS's saving of the AVX registers */
    #else
        return 0;
    #endif
    }
    """
    const char* EDGE_PREPROCESS_ISA
    enum: EDGE_BLEND_PAIRS  # 1: _blend_packed3 takes two pixels an iteration (the baseline build)
    int edge_cpu_has_avx2() noexcept nogil


ISA = EDGE_PREPROCESS_ISA.decode()  # the instruction set this build was compiled for: "baseline" or "avx2"


def cpu_has_avx2():
    """Whether this CPU runs AVX2 code. Asked of the baseline build only, before the AVX2 one is imported."""
    return edge_cpu_has_avx2() != 0


def preprocess_frame(src, out, layout, lut, plan, channel_map, stats):
    """See :func:`edge.kernels.reference.preprocess_frame`."""
    src, out_hwc = _checks.preprocess(src, out, layout, lut, plan, channel_map, stats)
    cdef int kind = cnp.PyArray_TYPE(<cnp.ndarray>out_hwc)
    if kind == cnp.NPY_FLOAT32:
        _run[float](src, out_hwc, lut, plan, channel_map, stats)
    elif kind == cnp.NPY_INT8:
        _run[int8_t](src, out_hwc, lut, plan, channel_map, stats)
    else:
        _run[uint8_t](src, out_hwc, lut, plan, channel_map, stats)


cdef void _run(const uint8_t[:, :, :] src, pixel_t[:, :, :] out, const pixel_t[:, ::1] lut, object plan,
               const int32_t[::1] channel_map, double[:, :] stats) except *:
    cdef Py_ssize_t offs[MAX_CHANNELS]
    cdef Py_ssize_t c
    cdef const int32_t[:, ::1] xofs
    cdef const int16_t[:, ::1] xalpha
    cdef const int32_t[:, ::1] yofs
    cdef const int16_t[:, ::1] ybeta
    for c in range(channel_map.shape[0]):
        offs[c] = channel_map[c] * src.strides[2]
    if plan is None:
        with nogil:
            _frame_stats(src, offs, out.shape[2], stats)
            _map_plain(src, offs, out, lut)
    else:
        xofs, xalpha, yofs, ybeta = plan.xofs, plan.xalpha, plan.yofs, plan.ybeta
        with nogil:
            _frame_stats(src, offs, out.shape[2], stats)
            _map_resized(src, offs, out, lut, xofs, xalpha, yofs, ybeta)


cdef void _frame_stats(const uint8_t[:, :, :] src, const Py_ssize_t* offs, Py_ssize_t nch,
                       double[:, :] stats) noexcept nogil:
    """Per-channel mean and population std over the whole frame, from exact integer sums."""
    cdef Py_ssize_t H = src.shape[0], W = src.shape[1], sy = src.strides[0], sx = src.strides[1]
    cdef const uint8_t* base = &src[0, 0, 0]
    cdef const uint8_t* p
    cdef unsigned long long total[MAX_CHANNELS]
    cdef unsigned long long squares[MAX_CHANNELS]
    cdef Py_ssize_t y, c
    cdef double n = <double>(H * W), mean, var
    for c in range(MAX_CHANNELS):
        total[c] = 0
        squares[c] = 0
    cdef bint packed3 = nch == 3 and sx == 3 and src.strides[2] == 1 and W <= ROW_SUMS3_MAX_PX
    cdef Py_ssize_t rows = 1  # rows summed as one: contiguous packed rows are one long row (no per-row fold)
    if packed3 and sy == 3 * W:
        rows = ROW_SUMS3_MAX_PX // W
    y = 0
    while y < H:
        p = base + y * sy
        if packed3:  # packed RGB/BGR rows: SIMD-friendly flat sums
            if rows > H - y:
                rows = H - y
            _row_sums3(p, W * rows, offs, total, squares)
            y += rows
        else:
            _row_sums(p, W, sx, offs, nch, total, squares)
            y += 1
    for c in range(nch):
        mean = total[c] / n
        var = squares[c] / n - mean * mean
        stats[0, c] = mean
        stats[1, c] = sqrt(var) if var > 0.0 else 0.0


cdef inline void _row_sums3(const uint8_t* p, Py_ssize_t W, const Py_ssize_t* offs,
                            unsigned long long* total, unsigned long long* squares) noexcept nogil:
    """Sums of a packed 3-channel row, read as flat bytes in blocks of 48 (= 16 pixels): 48 independent lanes
    that the compiler turns into SIMD; lane j holds source channel j % 3.

    The lanes are narrow so that plain SSE2 vectorizes them: sums in 16-bit lanes (exact for 256 blocks, flushed
    into 32-bit lanes after each run of 256), squares as 16-bit products (255² < 2¹⁶, exact) widened into 32-bit
    lanes (exact for rows up to 1 056 816 pixels: 255² · W / 16 < 2³²)."""
    cdef uint16_t lane_s16[48]
    cdef unsigned int lane_s[48]
    cdef unsigned int lane_q[48]
    cdef unsigned long long src_s[3]
    cdef unsigned long long src_q[3]
    cdef Py_ssize_t n = 3 * W, i = 0, j, c, b, blocks
    cdef uint16_t v16
    cdef unsigned int v
    for j in range(48):
        lane_s[j] = 0
        lane_q[j] = 0
    while i + 48 <= n:
        blocks = (n - i) // 48
        if blocks > 256:
            blocks = 256
        for j in range(48):
            lane_s16[j] = 0
        for b in range(blocks):
            for j in range(48):
                v16 = p[i + j]
                lane_s16[j] += v16
                lane_q[j] += <uint16_t>(v16 * v16)
            i += 48
        for j in range(48):
            lane_s[j] += lane_s16[j]
    for c in range(3):
        src_s[c] = 0
        src_q[c] = 0
    for j in range(48):
        src_s[j % 3] += lane_s[j]
        src_q[j % 3] += lane_q[j]
    while i < n:
        v = p[i]
        src_s[i % 3] += v
        src_q[i % 3] += v * v
        i += 1
    for c in range(3):  # model channel c reads source channel offs[c] (in bytes, = the channel index here)
        total[c] += src_s[offs[c]]
        squares[c] += src_q[offs[c]]


cdef inline void _row_sums(const uint8_t* p, Py_ssize_t W, Py_ssize_t sx, const Py_ssize_t* offs, Py_ssize_t nch,
                           unsigned long long* total, unsigned long long* squares) noexcept nogil:
    cdef Py_ssize_t x, c
    cdef unsigned long long v
    for x in range(W):
        for c in range(nch):
            v = p[offs[c]]
            total[c] += v
            squares[c] += v * v
        p += sx


cdef void _map_plain(const uint8_t[:, :, :] src, const Py_ssize_t* offs, pixel_t[:, :, :] out,
                     const pixel_t[:, ::1] lut) noexcept nogil:
    cdef Py_ssize_t H = src.shape[0], W = src.shape[1], C = out.shape[2]
    cdef Py_ssize_t sx = src.strides[1], ox = out.strides[1]
    cdef const uint8_t* s
    cdef const pixel_t* table
    cdef char* o
    cdef Py_ssize_t y, x, c
    for y in range(H):
        for c in range(C):
            s = &src[y, 0, 0] + offs[c]
            o = <char*>&out[y, 0, c]
            table = &lut[c, 0]
            for x in range(W):
                (<pixel_t*>o)[0] = table[s[0]]
                s += sx
                o += ox


cdef inline void _blend4(const int32_t* t0, const int32_t* t1, int32_t a1, int32_t* v) noexcept nogil:
    """``v[k]`` = the rounded blend of ``t0[k]`` and ``t1[k]`` with weight ``a1`` on ``t1`` (out of 2048), k < 4:
    one pixel's channels (and the next pixel's first, unused) as one vector."""
    cdef Py_ssize_t k
    for k in range(4):
        v[k] = ((t0[k] << 11) + (t1[k] - t0[k]) * a1 + (1 << 21)) >> 22


cdef inline void _blend_packed3(const int32_t* taps, const int32_t* xo, const int16_t* xa, Py_ssize_t x,
                                Py_ssize_t x_end, const Py_ssize_t* chan, const pixel_t[:, ::1] lut, char** o,
                                Py_ssize_t ox) noexcept nogil:
    """Output columns [x, x_end) of one row from a strip of packed 3-channel pixels: the channels of a pixel in one
    4-int vector (the compiler's SIMD; the fourth int belongs to the next pixel and is dropped), then each model
    channel's byte through its table; ``o`` moves on past the columns written.

    One multiply per channel: with ``a0 + a1 == 2048`` (``resize_plan`` checks it),
    ``t0 * a0 + t1 * a1 == (t0 << 11) + (t1 - t0) * a1``, exact in int32 (|t1 - t0| * a1 <= 255 · 2048²). The
    baseline build takes two pixels an iteration (about a tenth faster with SSE2); the AVX2 build one, since GCC
    turns the pair into 8-wide code that is nearly three times slower."""
    cdef int32_t v[4]
    cdef const int32_t* t0
    cdef const int32_t* t1
    cdef int32_t a1
    cdef Py_ssize_t i
    cdef Py_ssize_t c0 = chan[0], c1 = chan[1], c2 = chan[2]
    cdef const pixel_t* table0 = &lut[0, 0]
    cdef const pixel_t* table1 = &lut[1, 0]
    cdef const pixel_t* table2 = &lut[2, 0]
    cdef char* o0 = o[0]
    cdef char* o1 = o[1]
    cdef char* o2 = o[2]
    cdef int32_t w[8]
    cdef const int32_t* u0
    cdef const int32_t* u1
    cdef int32_t b1
    i = x
    if EDGE_BLEND_PAIRS:  # two pixels an iteration: faster with SSE2, much slower when compiled for AVX2
        while i + 2 <= x_end:
            t0 = taps + xo[2 * i] * 3
            t1 = taps + xo[2 * i + 1] * 3
            u0 = taps + xo[2 * i + 2] * 3
            u1 = taps + xo[2 * i + 3] * 3
            a1 = xa[2 * i + 1]
            b1 = xa[2 * i + 3]
            _blend4(t0, t1, a1, w)
            _blend4(u0, u1, b1, w + 4)
            (<pixel_t*>o0)[0] = table0[w[c0]]
            (<pixel_t*>o1)[0] = table1[w[c1]]
            (<pixel_t*>o2)[0] = table2[w[c2]]
            (<pixel_t*>(o0 + ox))[0] = table0[w[c0 + 4]]
            (<pixel_t*>(o1 + ox))[0] = table1[w[c1 + 4]]
            (<pixel_t*>(o2 + ox))[0] = table2[w[c2 + 4]]
            o0 += 2 * ox
            o1 += 2 * ox
            o2 += 2 * ox
            i += 2
    while i < x_end:
        t0 = taps + xo[2 * i] * 3
        t1 = taps + xo[2 * i + 1] * 3
        a1 = xa[2 * i + 1]
        _blend4(t0, t1, a1, v)
        (<pixel_t*>o0)[0] = table0[v[c0]]
        (<pixel_t*>o1)[0] = table1[v[c1]]
        (<pixel_t*>o2)[0] = table2[v[c2]]
        o0 += ox
        o1 += ox
        o2 += ox
        i += 1
    o[0], o[1], o[2] = o0, o1, o2


cdef enum:
    STRIP_INTS = 8192  # 32 KiB of stack for one vertically blended strip of source pixels
    STRIP_PAD = 8  # zeros after the strip's last pixel, for the 4-wide reads of _blend_packed3


cdef void _map_resized(const uint8_t[:, :, :] src, const Py_ssize_t* offs, pixel_t[:, :, :] out,
                       const pixel_t[:, ::1] lut, const int32_t[:, ::1] xofs, const int16_t[:, ::1] xalpha,
                       const int32_t[:, ::1] yofs, const int16_t[:, ::1] ybeta) noexcept nogil:
    """Bilinear resize with 11-bit fixed-point weights, vertical pass first, then the per-channel lookup table.

    For each output row the two source rows are blended into ``strip`` (exact int32: at most 255 · 2048), a strip
    of source columns at a time (SIMD-friendly on packed rows); each output pixel then combines two strip entries
    (at most 255 · 2048², still int32) and rounds half up once: ``(s + 2**21) >> 22``. A packed 3-channel frame
    into a 3-channel model takes :func:`_blend_packed3`, which combines the three channels of a pixel at once.
    """
    cdef int32_t strip[STRIP_INTS + STRIP_PAD]
    cdef Py_ssize_t h = out.shape[0], w = out.shape[1], C = out.shape[2], W = src.shape[1], S = src.shape[2]
    cdef Py_ssize_t sy = src.strides[0], sx = src.strides[1], sc = src.strides[2], ox = out.strides[1]
    cdef Py_ssize_t strip_px = STRIP_INTS // S
    cdef bint packed = sx == S and sc == 1
    cdef const uint8_t* base = &src[0, 0, 0]
    cdef const uint8_t* r0
    cdef const uint8_t* r1
    cdef const int32_t* xo = &xofs[0, 0]
    cdef const int16_t* xa = &xalpha[0, 0]
    cdef Py_ssize_t chan[MAX_CHANNELS]
    cdef char* o[MAX_CHANNELS]
    cdef Py_ssize_t y, x, x_end, i, c, k, n, first, last
    cdef int32_t b0, b1, v
    cdef const int32_t* taps
    cdef const pixel_t* table
    cdef char* oc
    cdef pixel_t* out_row
    for c in range(C):
        chan[c] = offs[c] // sc if sc else 0  # source channel index of model channel c
    for y in range(h):
        b0 = ybeta[y, 0]
        b1 = ybeta[y, 1]
        r0 = base + yofs[y, 0] * sy
        r1 = base + yofs[y, 1] * sy
        for c in range(C):
            o[c] = <char*>&out[y, 0, c]
        x = 0
        while x < w:
            # blend source columns [first, last) of both rows into the strip
            first = xo[2 * x]
            last = first + strip_px
            if last > W:
                last = W
            n = (last - first) * S
            if packed:
                for k in range(n):
                    strip[k] = r0[first * S + k] * b0 + r1[first * S + k] * b1
                for k in range(n, n + STRIP_PAD):  # _blend_packed3 reads up to 4 ints past a pixel's first int
                    strip[k] = 0
            else:
                for k in range(n):
                    strip[k] = (r0[(first + k // S) * sx + (k % S) * sc] * b0
                                + r1[(first + k // S) * sx + (k % S) * sc] * b1)
            # every output column whose two taps lie in the strip, one model channel at a time
            x_end = x
            while x_end < w and xo[2 * x_end + 1] < last:
                x_end += 1
            if packed and S == 3 and C == 3:
                _blend_packed3(strip - first * 3, xo, xa, x, x_end, chan, lut, o, ox)
            else:
                for c in range(C):
                    table = &lut[c, 0]
                    taps = strip + chan[c] - first * S
                    oc = o[c]
                    if S == 3 and ox == sizeof(pixel_t):  # packed RGB source, planar (NCHW) output: constant strides
                        out_row = <pixel_t*>oc
                        for i in range(x, x_end):
                            v = (taps[xo[2 * i] * 3] * xa[2 * i] + taps[xo[2 * i + 1] * 3] * xa[2 * i + 1] + (1 << 21)) >> 22
                            out_row[i - x] = table[v if v < 255 else 255]
                        oc += (x_end - x) * ox
                    else:
                        for i in range(x, x_end):
                            v = (taps[xo[2 * i] * S] * xa[2 * i] + taps[xo[2 * i + 1] * S] * xa[2 * i + 1] + (1 << 21)) >> 22
                            (<pixel_t*>oc)[0] = table[v if v < 255 else 255]
                            oc += ox
                    o[c] = oc
            x = x_end
