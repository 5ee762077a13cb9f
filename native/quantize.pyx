"""Quantize / dequantize kernels: per-tensor or per-channel scale and zero point, round half to even, saturating.

Twins: :func:`edge.kernels.reference.quantize` and :func:`edge.kernels.reference.dequantize`. Arrays of 1 to 4
dimensions are viewed as 4-D (unit axes prepended), so one strided loop serves every rank.
"""

from libc.math cimport rint, rintf
from libc.stdint cimport int8_t, uint8_t

from edge import _kernel_checks as _checks

ctypedef fused real_t:
    float
    double

ctypedef fused qint_t:
    int8_t
    uint8_t


def quantize(x, scale, zero_point, out, int axis=-1):
    """See :func:`edge.kernels.reference.quantize`."""
    x, scale, zero_point, out, axis4 = _checks.quantize(x, scale, zero_point, out, axis)
    _quantize4(_checks.promote4(x), scale, zero_point, _checks.promote4(out), axis4)


def dequantize(q, scale, zero_point, out, int axis=-1):
    """See :func:`edge.kernels.reference.dequantize`."""
    q, scale, zero_point, out, axis4 = _checks.dequantize(q, scale, zero_point, out, axis)
    _dequantize4(_checks.promote4(q), scale, zero_point, _checks.promote4(out), axis4)


cdef inline Py_ssize_t _channel(Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t i2, Py_ssize_t i3, int axis) noexcept nogil:
    if axis == 0:
        return i0
    if axis == 1:
        return i1
    if axis == 2:
        return i2
    if axis == 3:
        return i3
    return 0


def _quantize4(const real_t[:, :, :, :] x, const float[::1] scale, const int[::1] zero_point,
               qint_t[:, :, :, :] out, int axis):
    cdef double lo, hi, r
    cdef real_t v
    cdef Py_ssize_t i0, i1, i2, i3, c
    if qint_t is int8_t:
        lo, hi = -128.0, 127.0
    else:
        lo, hi = 0.0, 255.0
    with nogil:
        for i0 in range(x.shape[0]):
            for i1 in range(x.shape[1]):
                for i2 in range(x.shape[2]):
                    for i3 in range(x.shape[3]):
                        c = _channel(i0, i1, i2, i3, axis)
                        v = x[i0, i1, i2, i3]
                        if v != v:  # NaN → the zero point
                            r = zero_point[c]
                        elif real_t is float:
                            r = <double>rintf(v / scale[c]) + zero_point[c]
                        else:
                            r = rint(v / <double>scale[c]) + zero_point[c]
                        if r < lo:
                            r = lo
                        elif r > hi:
                            r = hi
                        out[i0, i1, i2, i3] = <qint_t>r


def _dequantize4(const qint_t[:, :, :, :] q, const float[::1] scale, const int[::1] zero_point,
                 float[:, :, :, :] out, int axis):
    cdef Py_ssize_t i0, i1, i2, i3, c
    with nogil:
        for i0 in range(q.shape[0]):
            for i1 in range(q.shape[1]):
                for i2 in range(q.shape[2]):
                    for i3 in range(q.shape[3]):
                        c = _channel(i0, i1, i2, i3, axis)
                        out[i0, i1, i2, i3] = <float>(<int>q[i0, i1, i2, i3] - zero_point[c]) * scale[c]
