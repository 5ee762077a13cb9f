"""``edge model select``: the model variant a device runs, chosen by timing the variants on the device itself.

Whether int8 beats float depends on the CPU (VNNI on x86, dot-product/i8mm on ARM; see :mod:`edge.models.machine`),
so a build machine cannot decide it. A package's *variants* are its model file and every other ``.onnx``/``.tflite``
file it carries (``edge model pack --file model.float.onnx ...``), all covered by the manifest's hashes. ONNX
variants with a QDQ graph are also tried under ONNX Runtime session options that matter for int8 on CPUs without
VNNI (:data:`ORT_TRIALS`).

The accuracy gate: every candidate runs the same seeded inputs (drawn in the real-valued range of the first quantized
input found, and fed quantized to integer inputs) and must give the same top-1 class as the *reference* (the package's
model file) on at least ``min_agreement`` of them. The fastest candidate (median µs per run) that passes is recorded
in ``<package>.select.toml`` beside the package, with the CPU (model and int8 features) it was measured on and the
sha256 of the chosen file.
:func:`apply_selection` (called by :func:`edge.models.load_model`) uses a record only when both still match, so a
package copied to another machine falls back to its model file with a logged reason.
"""

from __future__ import annotations

import logging
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError
from edge.models import _toml
from edge.models.integrity import sha256_hex
from edge.models.machine import cpu_info
from edge.models.options import RuntimeOptions
from edge.models.package import MODEL_FORMATS, Package

__all__ = ["ORT_TRIALS", "Trial", "apply_selection", "select_variant", "selection_path"]

log = logging.getLogger("edge.models")

# ONNX Runtime session config entries tried on every ONNX variant (label → entries)
ORT_TRIALS: dict[str, dict[str, str]] = {
    "default": {},
    # run QDQ graphs as float (no integer kernels): can win where int8 kernels have no VNNI/dot-product to use
    "qdq_as_float": {"session.disable_quant_qdq": "1"},
    # x86: the AVX2 U8S8 precision mode (avoids the saturating u8×s8 pair-add of non-VNNI AVX2)
    "x64_quant_precision": {"session.x64quantprecision": "1"},
}


@dataclass(frozen=True)
class Trial:
    """One candidate: a package file under some session options, with its timing and gate result."""

    file: str
    fmt: str
    options: str
    session_config: dict[str, str]
    p50_us: float = float("nan")
    agreement: float = float("nan")
    passed: bool = False
    error: str | None = None


def selection_path(package: str | Path) -> Path:
    """``<package>.select.toml`` beside a package folder or archive."""
    package = Path(package)
    return package.with_name(package.name + ".select.toml")


def _variants(pkg: Package) -> list[tuple[str, str]]:
    names = [pkg.model_name, *sorted(n for n in pkg.files if n != pkg.model_name)]
    return [(n, MODEL_FORMATS[Path(n).suffix.lower()]) for n in names if Path(n).suffix.lower() in MODEL_FORMATS]


def _real_range(models: list[Any]) -> tuple[float, float] | None:
    for m in models:
        s = m.inputs[0]
        if s.scale is not None and s.dtype.kind in "iu":
            info = np.iinfo(s.dtype)
            return s.scale * (info.min - s.zero_point), s.scale * (info.max - s.zero_point)
    return None


def _feed(model: Any, x: np.ndarray) -> None:
    s, buf = model.inputs[0], model.input_buffers[0]
    if s.dtype.kind in "iu" and s.scale is not None:
        info = np.iinfo(s.dtype)
        buf[...] = np.clip(np.rint(x / s.scale) + s.zero_point, info.min, info.max).reshape(buf.shape)
    else:
        buf[...] = x.reshape(buf.shape)


def _top1(model: Any) -> int:
    model.run()
    out = model.output_buffers[0].astype(np.float64).reshape(-1)
    s = model.outputs[0]
    if s.scale is not None:
        out = (out - s.zero_point) * s.scale
    return int(np.argmax(out))


def select_variant(
    pkg: Package, *, threads: int | None = 1, runs: int = 200, samples: int = 32, min_agreement: float = 0.95
) -> tuple[list[Trial], Trial | None]:
    """Time every variant × :data:`ORT_TRIALS` (ONNX) on this machine; ``(trials, the fastest that passed)``."""
    from edge.models import load_model_bytes

    base = RuntimeOptions(threads=threads, warmup=5)
    loaded: list[tuple[Trial, Any]] = []
    trials: list[Trial] = []
    for name, fmt in _variants(pkg):
        quantized = fmt == "onnx" and b"DequantizeLinear" in pkg.files[name]  # the op name is in a QDQ graph's bytes
        for label, entries in ORT_TRIALS.items() if quantized else [("default", {})]:
            trial = Trial(name, fmt, label, entries)
            try:
                opts = replace(base, session_config=dict(entries))
                loaded.append((trial, load_model_bytes(fmt, pkg.files[name], opts, f"{pkg.path}:{name}")))
            except Exception as exc:  # an option this runtime build rejects, a variant that does not load
                trials.append(replace(trial, error=f"{type(exc).__name__}: {exc}"))
    if not loaded:
        return trials, None
    shape = loaded[0][1].inputs[0].shape
    rng = np.random.default_rng(0)
    lo_hi = _real_range([m for _, m in loaded])
    xs = [
        rng.uniform(*lo_hi, shape) if lo_hi else rng.standard_normal(shape)
        for _ in range(samples)
    ]  # fmt: skip
    reference: list[int] | None = None
    for trial, model in loaded:
        if model.inputs[0].shape != shape:
            trials.append(replace(trial, error=f"input shape {model.inputs[0].shape}, the package's model {shape}"))
            continue
        answers = []
        for x in xs:
            _feed(model, x)
            answers.append(_top1(model))
        if reference is None:  # the package's model file under default options comes first
            reference = answers
        agreement = float(np.mean(np.asarray(answers) == np.asarray(reference)))
        _feed(model, xs[0])
        times = np.empty(runs)
        run = model.run
        for i in range(runs):
            t0 = time.perf_counter()
            run()
            times[i] = time.perf_counter() - t0
        trials.append(
            replace(trial, p50_us=float(np.median(times) * 1e6), agreement=agreement, passed=agreement >= min_agreement)
        )
    passing = [t for t in trials if t.passed]
    return trials, min(passing, key=lambda t: t.p50_us) if passing else None


def write_selection(package: str | Path, pkg: Package, trials: list[Trial], chosen: Trial) -> Path:
    """Record ``chosen`` (and every trial, for the reader) in :func:`selection_path`."""
    cpu = cpu_info()
    doc: dict[str, Any] = {
        "select": {
            "file": chosen.file,
            "format": chosen.fmt,
            "options": chosen.options,
            "sha256": sha256_hex(pkg.files[chosen.file]),
            "cpu_model": cpu["cpu_model"],
            "p50_us": round(chosen.p50_us, 2),
        },
        "session_config": dict(chosen.session_config),
        "cpu_features": {k: v for k, v in cpu["int8_features"].items()},
        "trials": [
            {"file": t.file, "options": t.options, "p50_us": round(t.p50_us, 2) if t.error is None else -1.0,
             "agreement": t.agreement if t.error is None else -1.0, "passed": t.passed, "error": t.error or ""}
            for t in trials
        ],
    }  # fmt: skip
    out = selection_path(package)
    out.write_text(_toml.dumps(doc))
    return out


def apply_selection(
    path: str | Path, pkg: Package, fmt: str, data: bytes, opts: RuntimeOptions
) -> tuple[str, bytes, RuntimeOptions]:
    """The variant recorded beside ``path`` by ``edge model select`` (format, bytes, options with its session
    config), or the package's model unchanged when there is no record, or it no longer fits (another CPU, a file
    whose hash changed or that the package no longer carries); a misfit is logged."""
    record = selection_path(path)
    if not record.is_file():
        return fmt, data, opts
    try:
        doc = tomllib.loads(record.read_text())
        sel = doc["select"]
        name, want_sha, cpu = str(sel["file"]), str(sel["sha256"]), str(sel["cpu_model"])
        entries = {str(k): str(v) for k, v in doc.get("session_config", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{record}: expected a selection written by `edge model select`, got {exc}") from exc
    here = cpu_info()
    if cpu != here["cpu_model"] or doc.get("cpu_features", here["int8_features"]) != here["int8_features"]:
        log.warning("%s: chosen on %r, this CPU is %r (or its features differ); running the package's model file",
                    record, cpu, here["cpu_model"])  # fmt: skip
        return fmt, data, opts
    chosen = pkg.files.get(name)
    if chosen is None or sha256_hex(chosen) != want_sha:
        log.warning("%s: %s is not in the package as selected; running the package's model file", record, name)
        return fmt, data, opts
    log.info("running %s (%s) as selected in %s", name, sel.get("options", "default"), record)
    return (
        MODEL_FORMATS[Path(name).suffix.lower()],
        chosen,
        replace(opts, session_config={**opts.session_config, **entries}),
    )
