"""``edge model inspect``: what a model or package holds — IO spec, quantization, operators, opset, size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError
from edge.models._foreign import model_error
from edge.models.integrity import sha256_hex
from edge.models.shapes import fit_shapes

__all__ = ["describe_model", "inspect_path"]


def _onnx_graph(data: bytes) -> dict[str, Any]:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise model_error(exc, "parsing ONNX model") from exc
    ops = Counter(n.op_type for n in model.graph.node)
    inits = {t.name: t for t in model.graph.initializer}
    elem = {onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT8: "int8", onnx.TensorProto.INT32: "int32"}
    act, wt = set(), set()
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits:
            act.add(elem.get(inits[n.input[2]].data_type, "?"))
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            wt.add(elem.get(inits[n.input[0]].data_type, "?"))
    if ops.get("QuantizeLinear") or ops.get("DequantizeLinear"):
        scheme = f"QDQ activations {'/'.join(sorted(act)) or '-'}, weights {'/'.join(sorted(wt)) or '-'}"
    elif any(op.startswith("QLinear") or op.startswith("ConvInteger") for op in ops):
        scheme = "QOperator"
    else:
        scheme = "float"
    return {
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "operators": dict(sorted(ops.items())),
        "quantization": scheme,
    }


def _tflite_graph(data: bytes) -> dict[str, Any]:
    from ai_edge_litert import schema_py_generated as s

    try:
        m = s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:
        raise model_error(exc, "parsing TFLite model") from exc
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    codes = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), str(c.builtinCode)) for c in m.operatorCodes]
    ops = Counter(codes[op.opcodeIndex] for sg in m.subgraphs for op in sg.operators)
    types = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    dtypes = Counter(types.get(t.type, "?").lower() for sg in m.subgraphs for t in sg.tensors)
    scheme = "full int8" if "float32" not in dtypes else ("mixed" if ("int8" in dtypes) else "float")
    return {
        "opset": {"tflite_schema": m.version},
        "operators": dict(sorted(ops.items())),
        "quantization": scheme,
        "tensor_dtypes": dict(sorted(dtypes.items())),
    }


def _onnx_io(data: bytes) -> tuple[list[tuple[str, list[Any], str]], list[tuple[str, list[Any], str]], dict]:
    import onnx
    from onnx import helper

    from edge.models.onnx_backend import quant_params

    model = onnx.load_model_from_string(data)
    inits = {t.name for t in model.graph.initializer}

    def io(values: Any) -> list[tuple[str, list[Any], str]]:
        out = []
        for v in values:
            if v.name in inits:
                continue
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
            out.append((v.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name))
        return out

    ins, outs = io(model.graph.input), io(model.graph.output)
    ints = {n for n, _, t in (*ins, *outs) if t in ("uint8", "int8")}
    return ins, outs, quant_params(data, ints) if ints else {}


def _tflite_io(data: bytes) -> tuple[list[tuple[str, list[Any], str]], list[tuple[str, list[Any], str]], dict]:
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(data, 0)
    sg = m.subgraphs[0]
    types = {v: k.lower() for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    qp: dict[str, tuple[float, int]] = {}

    def io(indexes: Any) -> list[tuple[str, list[Any], str]]:
        out = []
        for i in indexes:
            t = sg.tensors[i]
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
            dims = [int(d) if int(d) > 0 else None for d in (sig if sig is not None else [])]
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale) == 1 and float(q.scale[0]) != 0.0:
                qp[name] = (float(q.scale[0]), int(q.zeroPoint[0]) if q.zeroPoint is not None else 0)
            out.append((name, dims, types.get(t.type, "?")))
        return out

    return io(sg.inputs), io(sg.outputs), qp


def _spec_dict(name: str, dims: list[Any], dtype: str, qp: dict[str, tuple[float, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "shape": [d if d is not None else "?" for d in dims], "dtype": dtype}
    if name in qp:
        out["scale"], out["zero_point"] = qp[name]
    return out


def describe_model(
    fmt: str, data: bytes, source: str, shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, Any]:
    """IO spec, quantization scheme, operator counts, opset, size and sha256, read from the graph alone (no runtime
    session, no inference). Dynamic dimensions are shown by their symbolic name (``"?"`` when unnamed); ``shapes``
    (``--shape``) fixes input dimensions, checked against the graph like :func:`edge.models.load_model` does."""
    graph = _onnx_graph(data) if fmt == "onnx" else _tflite_graph(data)
    try:
        ins, outs, qp = _onnx_io(data) if fmt == "onnx" else _tflite_io(data)
    except Exception as exc:
        raise model_error(exc, f"parsing {fmt} model {source}") from exc
    fixed = fit_shapes(shapes or {}, ins, key="--shape") if shapes else {}
    inputs = [_spec_dict(n, list(fixed.get(n, d)), t, qp) for n, d, t in ins]
    return {
        "format": fmt,
        "size_bytes": len(data),
        "sha256": sha256_hex(data),
        "inputs": inputs,
        "outputs": [_spec_dict(n, d, t, qp) for n, d, t in outs],
        **graph,
    }


def inspect_path(
    path: str | Path, trust_key: Any | None = None, shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, Any]:
    """A JSON-able description of a bare model or a package (packages are verified first)."""
    from edge.models import read_model_source

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    fmt, data, pkg = read_model_source(path, trust_key)
    out: dict[str, Any] = {"path": str(path), **describe_model(fmt, data, str(path), shapes)}
    if pkg is not None:
        m = pkg.manifest
        out["package"] = {
            "name": m["model"].get("name"),
            "version": m["model"].get("version"),
            "files": m["files"],
            "preprocess": m.get("preprocess", {}),
            "reference_profile": m.get("reference_profile", {}),
            "signed": "signature" in m,
            "signature_verified_with": pkg.signed_by,
        }
    return out
