"""Quantization parameters of an ONNX graph's integer inputs/outputs, read from the protobuf wire format directly.

``import onnx`` takes most of a second on a small CPU, more than everything else ``edge run`` does before its first
decision; the loader only needs the scale and zero point of the ``DequantizeLinear`` that consumes a uint8/int8
graph input (or the ``QuantizeLinear`` that produces an integer output). This reads just those fields of
``ModelProto.graph`` (nodes and initializers) and skips everything else by its length. The ``onnx`` package is the
oracle in the tests (``tests/models/test_onnx_wire.py``).

Field numbers (onnx.proto): ModelProto.graph = 7; GraphProto.node = 1, initializer = 5; NodeProto.input = 1,
output = 2, op_type = 4; TensorProto.dims = 1, data_type = 2, float_data = 4, int32_data = 5, name = 8,
raw_data = 9, double_data = 10.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from edge.errors import ModelError

__all__ = ["quant_params"]

_FLOAT, _UINT8, _INT8, _INT32, _DOUBLE = 1, 2, 3, 6, 11
_RAW = {_FLOAT: "<f", _UINT8: "<B", _INT8: "<b", _INT32: "<i", _DOUBLE: "<d"}


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ModelError("parsing ONNX model: truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)``: an int for varint/fixed fields, a memoryview for length-delimited."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
            yield num, wt, v
        elif wt == 2:
            size, i = _varint(buf, i)
            if i + size > n:
                raise ModelError("parsing ONNX model: a field runs past the end of the bytes")
            yield num, wt, buf[i : i + size]
            i += size
        elif wt == 5:
            yield num, wt, int.from_bytes(buf[i : i + 4], "little")
            i += 4
        elif wt == 1:
            yield num, wt, int.from_bytes(buf[i : i + 8], "little")
            i += 8
        else:
            raise ModelError(f"parsing ONNX model: unsupported protobuf wire type {wt}")


def _first(tensor: memoryview) -> tuple[str, int, float | int | None]:
    """``(name, element count, first element)`` of a TensorProto (None when it holds no element this reader
    understands)."""
    name, dtype, raw, size = "", 0, None, 1
    floats: list[float] = []
    ints: list[int] = []
    for num, wt, v in _fields(tensor):
        if num == 8 and wt == 2:
            name = bytes(v).decode()  # type: ignore[arg-type]
        elif num == 2 and wt == 0:
            dtype = int(v)  # type: ignore[arg-type]
        elif num == 1:  # dims: packed varints or one varint
            if wt == 2:
                j, mv = 0, v  # type: ignore[assignment]
                while j < len(mv):  # type: ignore[arg-type]
                    d, j = _varint(mv, j)  # type: ignore[arg-type]
                    size *= d
            else:
                size *= int(v)  # type: ignore[arg-type]
        elif num == 9 and wt == 2:
            raw = v
        elif num == 4:  # float_data: packed (wt 2) or one fixed32
            data = bytes(v) if wt == 2 else int(v).to_bytes(4, "little")  # type: ignore[arg-type]
            floats += [x for (x,) in struct.iter_unpack("<f", data)]
        elif num == 10:
            data = bytes(v) if wt == 2 else int(v).to_bytes(8, "little")  # type: ignore[arg-type]
            floats += [x for (x,) in struct.iter_unpack("<d", data)]
        elif num == 5:  # int32_data (also uint8/int8 zero points): packed varints or one varint
            if wt == 2:
                j, mv = 0, v  # type: ignore[assignment]
                while j < len(mv):  # type: ignore[arg-type]
                    x, j = _varint(mv, j)  # type: ignore[arg-type]
                    ints.append(x)
            else:
                ints.append(int(v))  # type: ignore[arg-type]
    if raw is not None and dtype in _RAW and len(raw) >= struct.calcsize(_RAW[dtype]):
        return name, size, struct.unpack_from(_RAW[dtype], raw)[0]
    if floats:
        return name, size, floats[0]
    if ints:
        x = ints[0]
        return name, size, x - (1 << 64) if x >= 1 << 63 else x
    return name, size, None


def quant_params(model_bytes: bytes, names: set[str]) -> dict[str, tuple[float, int]]:
    """``{tensor name: (scale, zero_point)}`` for graph inputs consumed by ``DequantizeLinear`` and graph outputs
    produced by ``QuantizeLinear`` among ``names`` (per-tensor parameters only, from initializers)."""
    graph = next((v for num, wt, v in _fields(memoryview(model_bytes)) if num == 7 and wt == 2), None)
    if graph is None:
        return {}
    wanted: list[tuple[str, str, str | None]] = []  # (tensor, scale initializer, zero-point initializer), in order
    tensors: list[memoryview] = []
    for num, wt, v in _fields(graph):  # type: ignore[arg-type]
        if num == 5 and wt == 2:
            tensors.append(v)  # type: ignore[arg-type]
        elif num == 1 and wt == 2:
            ins: list[str] = []
            outs: list[str] = []
            op = ""
            for n2, w2, v2 in _fields(v):  # type: ignore[arg-type]
                if w2 != 2:
                    continue
                if n2 == 1:
                    ins.append(bytes(v2).decode())  # type: ignore[arg-type]
                elif n2 == 2:
                    outs.append(bytes(v2).decode())  # type: ignore[arg-type]
                elif n2 == 4:
                    op = bytes(v2).decode()  # type: ignore[arg-type]
            if len(ins) < 2:
                continue
            if op == "DequantizeLinear" and ins[0] in names:
                key = ins[0]
            elif op == "QuantizeLinear" and outs and outs[0] in names:
                key = outs[0]
            else:
                continue
            wanted.append((key, ins[1], ins[2] if len(ins) > 2 else None))
    if not wanted:
        return {}
    needed = {n for _, scale, zp in wanted for n in (scale, zp) if n}
    values: dict[str, tuple[int, float | int | None]] = {}
    for t in tensors:
        name, size, value = _first(t)
        if name in needed:
            values[name] = (size, value)
    found: dict[str, tuple[float, int]] = {}
    for key, scale_name, zp_name in wanted:  # the last node naming a tensor wins, as onnx's own order gives
        size, scale = values.get(scale_name, (0, None))
        if scale is None or size != 1:
            continue  # no initializer, or per-channel parameters
        zp = values.get(zp_name, (1, 0))[1] if zp_name else 0
        found[key] = (float(scale), int(zp or 0))
    return found
