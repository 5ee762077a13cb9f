"""``edge model inspect``: what a model or package holds — IO spec, quantization, operators, opset, size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edge.errors import ModelError
from edge.models._foreign import model_error
from edge.models.integrity import sha256_hex
from edge.models.options import RuntimeOptions

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


def describe_model(fmt: str, data: bytes, source: str) -> dict[str, Any]:
    """IO spec (loaded once, no warm-up), quantization scheme, operator counts, opset, size and sha256."""
    from edge.models import load_model_bytes

    graph = _onnx_graph(data) if fmt == "onnx" else _tflite_graph(data)
    model = load_model_bytes(fmt, data, RuntimeOptions(warmup=0, providers=("cpu",)), source)
    return {
        "format": fmt,
        "size_bytes": len(data),
        "sha256": sha256_hex(data),
        "inputs": [s.to_dict() for s in model.inputs],
        "outputs": [s.to_dict() for s in model.outputs],
        **graph,
    }


def inspect_path(path: str | Path, trust_key: Any | None = None) -> dict[str, Any]:
    """A JSON-able description of a bare model or a package (packages are verified first)."""
    from edge.models import read_model_source

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    fmt, data, pkg = read_model_source(path, trust_key)
    out: dict[str, Any] = {"path": str(path), **describe_model(fmt, data, str(path))}
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
