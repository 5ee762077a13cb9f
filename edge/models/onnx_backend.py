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
from edge.models._foreign import model_error, run_error
from edge.models.base import BoundModel
from edge.models.options import RuntimeOptions
from edge.models.providers import canonical, resolve_ort, session_options
from edge.models.shapes import fit_shapes, is_static

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


def _dtype_name(arg: Any) -> str:
    t = ORT_DTYPES.get(arg.type)
    return np.dtype(t).name if t is not None else arg.type


def has_qdq(model_bytes: bytes) -> bool:
    """Whether the graph carries QuantizeLinear/DequantizeLinear nodes (an explicitly quantized model)."""
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as exc:  # DecodeError on bytes that are not an ONNX model
        raise model_error(exc, "parsing ONNX model") from exc
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


class OnnxModel(BoundModel):
    """A ``.onnx`` model on ONNX Runtime (see :class:`BoundModel` for the contract).

    Inputs take their declared shapes (``opts.shapes``, checked against the graph) or 1 for each dynamic dimension.
    Outputs whose graph shape is fixed are numpy buffers bound once. An output with a dynamic dimension is bound to
    the CPU device instead, so ONNX Runtime allocates it during the first real run and reports its shape; that run's
    values are copied into a numpy buffer of that shape, which is then bound for every later run. Until then its
    spec has -1 for the unknown dimensions and its buffer is empty (:attr:`outputs_pending`). When a later run
    produces another shape (a data-dependent output), the model is re-bound the same way on that run, and
    ``output_buffers`` becomes a new tuple (:attr:`rebinds` counts it). Nothing is ever run at load unless
    ``opts.warmup`` asks for it.
    """

    backend = "onnxruntime"

    def __init__(
        self, model_bytes: bytes, opts: RuntimeOptions, source: str = "<bytes>", sha256: str | None = None
    ) -> None:
        import onnxruntime as ort

        self._ort = ort
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
        graph = [(a.name, list(a.shape), _dtype_name(a)) for a in ins]
        shapes = fit_shapes(opts.shapes, graph)
        self.inputs = tuple(self._spec(a, shapes[a.name], qp) for a in ins)
        self.input_buffers = tuple(np.zeros(s.shape, s.dtype) for s in self.inputs)
        self._fill_neutral()
        self._qp = qp
        self._dynamic = tuple(not is_static(a.shape) for a in outs)
        self.outputs = tuple(
            self._spec(a, tuple(d if isinstance(d, int) and d > 0 else -1 for d in a.shape), qp) for a in outs
        )
        self.output_buffers = tuple(np.zeros(tuple(max(d, 0) for d in s.shape), s.dtype) for s in self.outputs)
        self.outputs_pending = any(self._dynamic)
        self.rebinds = 0
        self._binding = self.session.io_binding()
        self._ortvalues: list[Any] = []  # keep the OrtValues alive: they share memory with the numpy buffers
        for spec, buf in zip(self.inputs, self.input_buffers, strict=True):
            ov = ort.OrtValue.ortvalue_from_numpy(buf)
            self._ortvalues.append(ov)
            self._binding.bind_ortvalue_input(spec.name, ov)
        self._out_values: list[Any] = [None] * len(self.outputs)
        for i, (spec, buf) in enumerate(zip(self.outputs, self.output_buffers, strict=True)):
            if self._dynamic[i]:
                self._binding.bind_output(spec.name, "cpu")
            else:
                self._out_values[i] = ov = ort.OrtValue.ortvalue_from_numpy(buf)
                self._binding.bind_ortvalue_output(spec.name, ov)
        self._run_options = ort.RunOptions()
        self._sess_run = self.session._sess.run_with_iobinding  # the C++ call, skipping a Python frame per run
        self._raw_binding = self._binding._iobinding
        self._input_desc = ", ".join(s.describe() for s in self.inputs)
        static = all(is_static(a.shape) for a in (*ins, *outs))
        self._warm_up(opts.warmup_runs(static), load_ms, source, sha256)

    @staticmethod
    def _spec(arg: Any, shape: tuple[int, ...], qp: dict[str, tuple[float, int]]) -> TensorSpec:
        if arg.type not in ORT_DTYPES:
            raise ModelError(f"tensor {arg.name!r}: unsupported element type {arg.type}")
        scale, zp = qp.get(arg.name, (None, None))
        return TensorSpec(arg.name, shape, np.dtype(ORT_DTYPES[arg.type]), scale, zp)

    def _invoke(self) -> None:
        try:
            self._sess_run(self._raw_binding, self._run_options)
        except Exception as exc:
            if not any(self._dynamic) or self.outputs_pending:
                raise run_error(exc, "running ONNX model", self._input_desc) from exc
            self._unbind_dynamic()  # a data-dependent output may have changed its shape: let ORT allocate it
            try:
                self._sess_run(self._raw_binding, self._run_options)
            except Exception as exc2:
                raise run_error(exc2, "running ONNX model", self._input_desc) from exc2
            self.rebinds += 1
            self._adopt_outputs()
            return
        if self.outputs_pending:
            self._adopt_outputs()

    def _unbind_dynamic(self) -> None:
        for spec, dyn in zip(self.outputs, self._dynamic, strict=True):
            if dyn:
                self._binding.bind_output(spec.name, "cpu")
        self.outputs_pending = True

    def _adopt_outputs(self) -> None:
        """After a run with dynamic outputs on the device: numpy buffers of the shapes it produced, filled with its
        values and bound for the next runs (allocates; only on the first run and when a shape changes)."""
        values = self._binding.get_outputs()
        outputs, buffers = list(self.outputs), list(self.output_buffers)
        for i, (spec, ov) in enumerate(zip(self.outputs, values, strict=True)):
            if not self._dynamic[i]:
                continue
            arr = ov.numpy()
            buf = np.array(arr, dtype=spec.dtype, copy=True, order="C")
            outputs[i] = TensorSpec(
                spec.name, tuple(int(d) for d in buf.shape), spec.dtype, spec.scale, spec.zero_point
            )
            buffers[i] = buf
            self._out_values[i] = bound = self._ort.OrtValue.ortvalue_from_numpy(buf)
            self._binding.bind_ortvalue_output(spec.name, bound)
        self.outputs, self.output_buffers = tuple(outputs), tuple(buffers)
        self.outputs_pending = False

    def bare(self) -> Any:
        """The underlying ``onnxruntime.InferenceSession`` (for benchmarks and debugging)."""
        return self.session
