"""``edge bench``: latency of a model through ``edge`` and bare through its runtime's own Python API.

Both are timed in the same process on the same inputs, in alternating blocks so that drift (thermal, another
process) hits both alike. Bare means: ONNX Runtime ``session.run(None, feeds)`` on the same session; LiteRT a second
``Interpreter`` with the same options driven by ``set_tensor``/``invoke``/``get_tensor``.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.models.base import BoundModel
from edge.models.machine import format_features, machine_block

__all__ = ["bare_runner", "bench_model", "format_report", "latency_stats"]


def latency_stats(times_s: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/max/mean in µs and throughput in inferences/s from per-run times in seconds."""
    us = times_s * 1e6
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return {
        "p50_us": float(p50),
        "p90_us": float(p90),
        "p99_us": float(p99),
        "max_us": float(us.max()),
        "mean_us": float(us.mean()),
        "throughput_per_s": float(len(us) / times_s.sum()),
    }


def bare_runner(model: BoundModel, inputs: list[np.ndarray], threads: int | None) -> Callable[[], Any]:
    """A no-argument callable running the model through its runtime's own API on ``inputs``."""
    if model.backend == "onnxruntime":
        sess = model.bare()
        feeds = {s.name: a for s, a in zip(model.inputs, inputs, strict=True)}
        return lambda: sess.run(None, feeds)
    from edge.models.litert_backend import interpreter_class

    Interpreter, OpResolverType, _ = interpreter_class()
    resolver = OpResolverType.AUTO if model.provider == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(
        model_content=model.model_bytes, num_threads=threads or 1, experimental_op_resolver_type=resolver
    )
    interp.allocate_tensors()
    ins = [d["index"] for d in interp.get_input_details()]
    outs = [d["index"] for d in interp.get_output_details()]

    def run() -> list[np.ndarray]:
        for i, a in zip(ins, inputs, strict=True):
            interp.set_tensor(i, a)
        interp.invoke()
        return [interp.get_tensor(o) for o in outs]

    return run


def _time(fn: Callable[[], Any], n: int) -> np.ndarray:
    out = np.empty(n)
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out


def bench_model(
    model: BoundModel,
    *,
    runs: int = 1000,
    warmup: int = 50,
    threads: int | None = None,
    block: int = 50,
    seed: int = 0,
    values: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Figures for ``model``: edge and bare latency stats, overhead (µs and ratio), first-run and load times.

    Inputs are seeded random values, except those named in ``values`` (``--value sr=16000``: a constant input such
    as a sample rate, which a model may refuse to run with at random). When the model was loaded without warm-up,
    the first run reported is the first benchmark run (on these inputs). The figures carry the machine (CPU, int8
    features, load when the timing started)."""
    machine = machine_block()
    values = dict(values or {})
    names = [s.name for s in model.inputs]
    for name in values:
        if name not in names:
            specs = ", ".join(s.describe() for s in model.inputs)
            raise ConfigError(f"--value {name}: expected one of the model's inputs ({specs}), got {name!r}")
    rng = np.random.default_rng(seed)
    inputs = []
    for s in model.inputs:
        if s.name in values:
            inputs.append(np.full(s.shape, values[s.name]).astype(s.dtype))
        elif s.dtype.kind in "iu":
            info = np.iinfo(s.dtype)
            inputs.append(rng.integers(info.min, info.max, s.shape, dtype=s.dtype, endpoint=True))
        else:
            inputs.append(rng.standard_normal(s.shape).astype(s.dtype))
    bare = bare_runner(model, inputs, threads)
    edge_run = model.run
    for buf, a in zip(model.input_buffers, inputs, strict=True):
        buf[...] = a

    def edge_fn() -> Any:
        return edge_run()

    first_ms = model.report.first_run_ms
    if first_ms is None:
        first_ms = float(_time(edge_fn, 1)[0] * 1e3)
    _time(edge_fn, warmup)
    _time(bare, warmup)
    edge_t, bare_t = [], []
    done = 0
    while done < runs:
        k = min(block, runs - done)
        edge_t.append(_time(edge_fn, k))
        bare_t.append(_time(bare, k))
        done += k
    e, b = latency_stats(np.concatenate(edge_t)), latency_stats(np.concatenate(bare_t))
    overhead = e["p50_us"] - b["p50_us"]
    r = model.report
    return {
        "model": r.source,
        "machine": machine,
        "backend": model.backend,
        "provider": model.provider,
        "runs": runs,
        "threads": threads,
        "load_ms": r.load_ms,
        "first_run_ms": first_ms,
        "warm_ms": r.warm_ms,
        "edge": e,
        "bare": b,
        "edge_overhead_us": overhead,
        "edge_vs_bare_time_ratio": e["p50_us"] / b["p50_us"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def format_report(fig: dict[str, Any]) -> str:
    """A human-readable table of :func:`bench_model` figures."""
    e, b = fig["edge"], fig["bare"]
    first = "-" if fig["first_run_ms"] is None else f"{fig['first_run_ms']:.3f}"
    lines = [
        format_features(fig["machine"]),
        f"model     {Path(fig['model']).name}  ({fig['backend']}/{fig['provider']}, "
        f"threads={fig['threads'] or 'auto'}, runs={fig['runs']})",
        f"load      {fig['load_ms']:.2f} ms   first run {first} ms   peak RSS {fig['peak_rss_bytes'] / 2**20:.1f} MiB",
        f"{'':10}{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}{'max µs':>10}{'per s':>10}",
    ]
    for name, s in (("edge", e), ("bare", b)):
        lines.append(
            f"{name:10}{s['p50_us']:10.1f}{s['p90_us']:10.1f}{s['p99_us']:10.1f}{s['max_us']:10.1f}"
            f"{s['throughput_per_s']:10.0f}"
        )
    lines.append(
        f"overhead  {fig['edge_overhead_us']:+.2f} µs per run   edge/bare time ratio "
        f"{fig['edge_vs_bare_time_ratio']:.3f}"
    )
    return "\n".join(lines)
