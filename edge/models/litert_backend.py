"""LiteRT backend (``ai_edge_litert``; the old ``tflite_runtime`` only when it is the one installed).

Buffers are the interpreter's own tensors, seen as numpy views taken once after ``allocate_tensors``: the caller
(or the preprocessing kernel) writes the input view, ``run`` invokes, outputs are read from the output views. The
public ``Interpreter.invoke`` refuses to run while such views exist (it cannot know nobody will reallocate), so this
backend calls the wrapper's ``Invoke`` directly; that is safe because nothing here ever calls ``allocate_tensors``
or ``resize_tensor_input`` again after the views are taken.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from edge.contracts import TensorSpec
from edge.errors import UnavailableError
from edge.models._foreign import model_error, run_error
from edge.models.base import BoundModel
from edge.models.options import RuntimeOptions
from edge.models.providers import canonical
from edge.models.shapes import fit_shapes

__all__ = ["LiteRTModel", "interpreter_class"]

log = logging.getLogger("edge.models")


def interpreter_class() -> tuple[Any, Any, str]:
    """``(Interpreter, OpResolverType, package name)`` from ai_edge_litert, else tflite_runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "tflite_runtime"
    except ImportError:
        raise UnavailableError("TFLite models need LiteRT: pip install 'edge[tflite]' (ai-edge-litert)") from None


def _litert_provider(opts: RuntimeOptions) -> str:
    """``"xnnpack"`` (default delegate on) or ``"cpu"`` (builtin kernels only), from the preference list."""
    if opts.providers is None:
        return "xnnpack"
    prefs = [canonical(p) for p in opts.providers]
    usable = [p for p in prefs if p in ("xnnpack", "cpu")]
    if prefs[0] not in ("xnnpack", "cpu"):
        msg = f"provider {prefs[0]!r} is not available for LiteRT; available: xnnpack, cpu"
        if opts.strict:
            raise UnavailableError(f"strict provider mode: {msg}")
        log.warning("%s; falling back to %s", msg, (usable or ["xnnpack"])[0])
    return (usable or ["xnnpack"])[0]


def _signature(d: dict[str, Any]) -> list[int]:
    """The tensor's graph shape with -1 for each dynamic dimension (``shape_signature``; ``shape`` when absent)."""
    sig = d.get("shape_signature")
    return [int(x) for x in (sig if sig is not None and len(sig) else d["shape"])]


class LiteRTModel(BoundModel):
    """A ``.tflite`` model on LiteRT (see :class:`BoundModel` for the contract)."""

    backend = "litert"

    def __init__(
        self, model_bytes: bytes, opts: RuntimeOptions, source: str = "<bytes>", sha256: str | None = None
    ) -> None:
        Interpreter, OpResolverType, self.package = interpreter_class()
        self.provider = _litert_provider(opts)
        resolver = (
            OpResolverType.AUTO if self.provider == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self.model_bytes = bytes(model_bytes)  # the interpreter reads the model from this buffer: keep it alive
        t0 = time.perf_counter()
        try:
            interp = Interpreter(
                model_content=self.model_bytes, num_threads=opts.threads or 1, experimental_op_resolver_type=resolver
            )
        except Exception as exc:
            raise model_error(exc, f"loading TFLite model {source}") from exc
        details = interp.get_input_details()
        graph = [(d["name"], _signature(d), np.dtype(d["dtype"]).name) for d in details]
        shapes = fit_shapes(opts.shapes, graph)
        try:
            for d in details:
                if tuple(shapes[d["name"]]) != tuple(int(x) for x in d["shape"]):
                    interp.resize_tensor_input(d["index"], list(shapes[d["name"]]))
            interp.allocate_tensors()
        except Exception as exc:
            raise model_error(exc, f"loading TFLite model {source} with input shapes {shapes}") from exc
        load_ms = (time.perf_counter() - t0) * 1e3
        self.interpreter = interp
        self.inputs = tuple(self._spec(d) for d in interp.get_input_details())
        self.outputs = tuple(self._spec(d) for d in interp.get_output_details())
        self.input_buffers = tuple(interp.tensor(d["index"])() for d in interp.get_input_details())
        self.output_buffers = tuple(interp.tensor(d["index"])() for d in interp.get_output_details())
        self._raw_invoke = interp._interpreter.Invoke
        self._input_desc = ", ".join(s.describe() for s in self.inputs)
        static = all(-1 not in _signature(d) for d in (*details, *interp.get_output_details()))
        self._warm_up(opts.warmup_runs(static), load_ms, source, sha256)

    @staticmethod
    def _spec(d: dict[str, Any]) -> TensorSpec:
        scale, zp = d.get("quantization", (0.0, 0))
        q = scale != 0.0
        return TensorSpec(
            d["name"],
            tuple(int(x) for x in d["shape"]),
            np.dtype(d["dtype"]),
            float(scale) if q else None,
            int(zp) if q else None,
        )

    def _invoke(self) -> None:
        try:
            self._raw_invoke()
        except Exception as exc:
            raise run_error(exc, "running TFLite model", self._input_desc) from exc

    def bare(self) -> Any:
        """The underlying LiteRT ``Interpreter`` (for benchmarks and debugging)."""
        return self.interpreter
