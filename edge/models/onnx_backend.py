"""ONNX Runtime backend: one ``InferenceSession``, buffers bound once through IOBinding.

Inputs and outputs are numpy arrays owned by the model, wrapped once as ``OrtValue`` s that share their memory, and
bound to an ``IOBinding``; ``run`` is then a single ``run_with_iobinding`` call with no per-call allocation. For a
QDQ model whose graph input is already uint8/int8 (feeding a ``DequantizeLinear``), the input spec carries that
node's scale and zero point; likewise an integer output produced by a ``QuantizeLinear``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge.contracts import TensorSpec
from edge.errors import ModelError
from edge.models import _onnx_wire
from edge.models._foreign import model_error
from edge.models.base import BoundModel
from edge.models.options import RuntimeOptions
from edge.models.providers import canonical, resolve_ort, session_options

__all__ = ["ORT_DTYPES", "OnnxModel", "has_qdq", "quant_params"]

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def quant_params(model_bytes: bytes, names: set[str]) -> dict[str, tuple[float, int]]:
    """``{tensor name: (scale, zero_point)}`` for graph inputs consumed by ``DequantizeLinear`` and graph outputs
    produced by ``QuantizeLinear`` among ``names`` (per-tensor parameters only). Read from the protobuf bytes by
    :mod:`edge.models._onnx_wire`: ``import onnx`` would cost most of a second of start-up."""
    return _onnx_wire.quant_params(model_bytes, names)


def has_qdq(model_bytes: bytes) -> bool:
    """Whether the graph carries QuantizeLinear/DequantizeLinear nodes (an explicitly quantized model)."""
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as exc:  # DecodeError on bytes that are not an ONNX model
        raise model_error(exc, "parsing ONNX model") from exc
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _concrete(shape: list[Any], name: str, opts: RuntimeOptions) -> tuple[int, ...]:
    if name in opts.shapes:
        return tuple(int(d) for d in opts.shapes[name])
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)


class OnnxModel(BoundModel):
    """A ``.onnx`` model on ONNX Runtime (see :class:`BoundModel` for the contract)."""

    backend = "onnxruntime"

    def __init__(
        self, model_bytes: bytes, opts: RuntimeOptions, source: str = "<bytes>", sha256: str | None = None
    ) -> None:
        import onnxruntime as ort

        providers = resolve_ort(opts, quantized=has_qdq(model_bytes) if opts.trt_int8 == "auto" else False)
        t0 = time.perf_counter()
        try:
            self.session = ort.InferenceSession(model_bytes, sess_options=session_options(opts), providers=providers)
        except Exception as exc:
            raise model_error(exc, f"loading ONNX model {source}") from exc
        load_ms = (time.perf_counter() - t0) * 1e3
        self.provider = canonical(self.session.get_providers()[0])
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        int_names = {a.name for a in (*ins, *outs) if a.type in ("tensor(uint8)", "tensor(int8)")}
        qp = quant_params(model_bytes, int_names) if int_names else {}
        self.inputs = tuple(self._spec(a, _concrete(a.shape, a.name, opts), qp) for a in ins)
        self.input_buffers = tuple(np.zeros(s.shape, s.dtype) for s in self.inputs)
        self._fill_neutral()
        out_shapes = [tuple(a.shape) for a in outs]
        first_ms = None
        if not all(isinstance(d, int) and d > 0 for shp in out_shapes for d in shp):
            # dynamic output dims: one plain run tells their sizes for the bound input shapes
            t1 = time.perf_counter()
            res = self._plain_run()
            first_ms = (time.perf_counter() - t1) * 1e3
            out_shapes = [r.shape for r in res]
        self.outputs = tuple(self._spec(a, tuple(shp), qp) for a, shp in zip(outs, out_shapes, strict=True))
        self.output_buffers = tuple(np.zeros(s.shape, s.dtype) for s in self.outputs)
        self._binding = self.session.io_binding()
        self._ortvalues = []  # keep the OrtValues alive: they share memory with the numpy buffers
        for spec, buf in zip(self.inputs, self.input_buffers, strict=True):
            ov = ort.OrtValue.ortvalue_from_numpy(buf)
            self._ortvalues.append(ov)
            self._binding.bind_ortvalue_input(spec.name, ov)
        for spec, buf in zip(self.outputs, self.output_buffers, strict=True):
            ov = ort.OrtValue.ortvalue_from_numpy(buf)
            self._ortvalues.append(ov)
            self._binding.bind_ortvalue_output(spec.name, ov)
        self._run_options = ort.RunOptions()
        self._sess_run = self.session._sess.run_with_iobinding  # the C++ call, skipping a Python frame per run
        self._raw_binding = self._binding._iobinding
        self._warm_up(opts.warmup, load_ms, source, sha256)
        if first_ms is not None:
            self.report = type(self.report)(**{**self.report.__dict__, "first_run_ms": first_ms})

    @staticmethod
    def _spec(arg: Any, shape: tuple[int, ...], qp: dict[str, tuple[float, int]]) -> TensorSpec:
        if arg.type not in ORT_DTYPES:
            raise ModelError(f"tensor {arg.name!r}: unsupported element type {arg.type}")
        scale, zp = qp.get(arg.name, (None, None))
        return TensorSpec(arg.name, shape, np.dtype(ORT_DTYPES[arg.type]), scale, zp)

    def _plain_run(self) -> list[np.ndarray]:
        feeds = {s.name: b for s, b in zip(self.inputs, self.input_buffers, strict=True)}
        try:
            return self.session.run(None, feeds)
        except Exception as exc:
            raise model_error(exc, "running ONNX model") from exc

    def _invoke(self) -> None:
        try:
            self._sess_run(self._raw_binding, self._run_options)
        except Exception as exc:
            raise model_error(exc, "running ONNX model") from exc

    def bare(self) -> Any:
        """The underlying ``onnxruntime.InferenceSession`` (for benchmarks and debugging)."""
        return self.session
