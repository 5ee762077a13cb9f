"""Helpers for the loop tests: small real ONNX models with known maths, model wrappers that emulate a slow, failing
or hung model (test doubles for the compute, around a real model), and a recording tap."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from edge.contracts import FrameContext
from edge.loop.clock import LockstepClock

IR_VERSION, OPSET = 10, 17


def mean_regression_onnx(path: Path, *, hw: int = 8, sqrt_offset: float | None = None) -> Path:
    """float input ``images`` [1,3,hw,hw] → per-channel means m (GlobalAveragePool) → ``command`` [1,2] with
    ``command = [4*m0 - 2, m1]``; with ``sqrt_offset`` c: ``command = sqrt(that - c)`` (NaN below c)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[4.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    b = np.array([-2.0, 0.0], np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["lin" if sqrt_offset is not None else "command"]),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    if sqrt_offset is not None:
        inits.append(numpy_helper.from_array(np.array([sqrt_offset], np.float32), "c"))
        nodes += [
            helper.make_node("Sub", ["lin", "c"], ["shifted"]),
            helper.make_node("Sqrt", ["shifted"], ["command"]),
        ]
    graph = helper.make_graph(
        nodes,
        "mean_regression",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("command", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    return path


def nan_classifier_onnx(path: Path, *, hw: int = 32, classes: int = 10) -> Path:
    """float input [1,3,hw,hw] → logits [1,classes] = Gemm(log(mean - 2)): NaN for every input in [0, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array([2.0], np.float32), "two"),
        numpy_helper.from_array(np.ones((3, classes), np.float32), "w"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Sub", ["flat", "two"], ["neg"]),
        helper.make_node("Log", ["neg"], ["nan"]),
        helper.make_node("Gemm", ["nan", "w", "b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nan_classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    return path


class ModelWrapper:
    """Delegates to a real loaded model; subclasses change what ``run`` does."""

    def __init__(self, model: Any) -> None:
        self.inner = model
        self.inputs, self.outputs = model.inputs, model.outputs
        self.input_buffers, self.output_buffers = model.input_buffers, model.output_buffers
        self.package = getattr(model, "package", None)
        self.backend, self.provider = model.backend, model.provider

    def run(self) -> tuple[np.ndarray, ...]:
        return self.inner.run()


class SlowModel(ModelWrapper):
    """Charges ``cost_ns`` of lockstep clock time to every inference (a slow model or a busy CPU)."""

    def __init__(self, model: Any, clock: LockstepClock, cost_ns: int) -> None:
        super().__init__(model)
        self.clock, self.cost_ns = clock, cost_ns

    def run(self) -> tuple[np.ndarray, ...]:
        self.clock.advance(self.cost_ns)
        return self.inner.run()


class FailingModel(ModelWrapper):
    """Raises on the frames whose (0-based) run index is in ``fail_on`` (a set), else runs the real model."""

    def __init__(self, model: Any, fail_on: set[int]) -> None:
        super().__init__(model)
        self.fail_on, self.calls = fail_on, 0

    def run(self) -> tuple[np.ndarray, ...]:
        i = self.calls
        self.calls += 1
        if i in self.fail_on:
            raise RuntimeError(f"injected model failure on run {i}")
        return self.inner.run()


class BlockingModel(ModelWrapper):
    """Blocks in ``run`` while ``block`` is set, until ``release`` is set (a hung accelerator)."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.block, self.release, self.blocked = threading.Event(), threading.Event(), threading.Event()

    def run(self) -> tuple[np.ndarray, ...]:
        if self.block.is_set():
            self.blocked.set()
            self.release.wait(30)
        return self.inner.run()


class RecordingTap:
    """A FrameTap that copies a few fields per frame into preallocated arrays and lists every bind/event."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.n = 0
        self.seq = np.zeros(capacity, np.int64)
        self.flags = np.zeros(capacity, np.int64)
        self.health = np.zeros(capacity, np.int64)
        self.action = np.zeros(capacity, np.int64)
        self.stats = np.zeros((capacity, 2, 3), np.float64)
        self.total_us = np.zeros(capacity, np.float64)
        self.binds: list[tuple[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    def bind(self, ctx: FrameContext, model: Any) -> None:
        self.binds.append((ctx.model_version, model))

    def on_frame(self, ctx: FrameContext) -> None:
        i = self.n
        if i < self.seq.shape[0]:
            self.seq[i] = ctx.seq
            self.flags[i] = ctx.flags
            self.health[i] = ctx.health
            self.action[i] = ctx.decision.action
            self.stats[i] = ctx.stats
            self.total_us[i] = ctx.stage_us[5]
        self.n = i + 1

    def on_event(self, kind: str, fields: dict[str, Any]) -> None:
        self.events.append((kind, dict(fields)))

    def close(self) -> None:
        self.closed = True

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]
