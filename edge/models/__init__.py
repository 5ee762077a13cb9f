"""Model runtime: ``load_model`` for ONNX (onnxruntime) and TFLite (LiteRT) models and model packages.

>>> model = load_model("detector.tar.gz", threads=2)        # doctest: +SKIP
>>> model.inputs[0].describe()                                # doctest: +SKIP
'images[1x3x320x320] uint8 (scale=0.0186, zero_point=114)'
>>> outputs = model.run(frame_u8)                             # doctest: +SKIP

Every loaded model is an :class:`edge.contracts.Model` (implemented by :class:`edge.models.base.BoundModel`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edge.contracts import LoadReport, Model, TensorSpec
from edge.errors import IntegrityError, ModelError
from edge.models.base import BoundModel
from edge.models.integrity import sha256_hex, trust_key_from_env
from edge.models.options import RuntimeOptions
from edge.models.package import MODEL_FORMATS, Package, is_archive, read_package
from edge.models.state import StateCarry

__all__ = [
    "BoundModel",
    "LoadReport",
    "Model",
    "RuntimeOptions",
    "TensorSpec",
    "load_model",
    "load_model_bytes",
    "read_model_source",
]

log = logging.getLogger("edge.models")


def read_model_source(path: str | os.PathLike[str], trust_key: Any | None = None) -> tuple[str, bytes, Package | None]:
    """``(format, model bytes, package or None)`` for a bare model file or a package (folder or archive).

    A package is verified (hashes; signature when a trust key is given or configured through ``$EDGE_TRUST_KEY``)
    on the bytes in memory before they are returned. With a trust key configured, a bare model is refused: it
    carries no signature.
    """
    path = Path(path)
    key = trust_key if trust_key is not None else trust_key_from_env()
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    if path.is_dir() or is_archive(path):
        pkg = read_package(path, key)
        return pkg.format, pkg.model_bytes, pkg
    fmt = MODEL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(
            f"{path}: unknown model file type {path.suffix!r}; expected .onnx, .tflite, "
            "a package folder or a .tar/.tar.gz/.tgz package"
        )
    if key is not None:
        raise IntegrityError(f"{path}: a bare model has no signature, and a trust key is configured: refused")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model ({exc.strerror})") from exc
    return fmt, data, None


def load_model_bytes(fmt: str, data: bytes, opts: RuntimeOptions, source: str = "<bytes>") -> BoundModel:
    """Load model bytes of format ``"onnx"`` or ``"tflite"`` with ``opts`` (no integrity checks here)."""
    if not data:
        raise ModelError(f"{source}: the model file is empty")
    digest = sha256_hex(data)
    model: BoundModel
    if fmt == "onnx":
        from edge.models.onnx_backend import OnnxModel

        model = OnnxModel(data, opts, source, digest)
    elif fmt == "tflite":
        from edge.models.litert_backend import LiteRTModel

        model = LiteRTModel(data, opts, source, digest)
    else:
        raise ModelError(f"{source}: unknown model format {fmt!r}; expected onnx or tflite")
    if opts.state:
        model.state = StateCarry(model, opts.state)
    return model


def load_model(
    path: str | os.PathLike[str],
    *,
    providers: Any = None,
    threads: int | None = None,
    strict: bool = False,
    warmup: int | None = None,
    trust_key: Any | None = None,
    options: RuntimeOptions | None = None,
    profile: str | os.PathLike[str] | None = None,
    **option_fields: Any,
) -> BoundModel:
    """Load a ``.onnx``/``.tflite`` model or a model package, bind its buffers and warm it up.

    ``shapes`` (``{input: (1, 512)}`` or ``"1x512"``: dynamic input dimensions) and ``state`` (``{output: input}``
    carried between runs of a stateful model) are :class:`RuntimeOptions` fields, checked against the graph.
    ``providers``/``threads``/``strict``/``warmup`` and any other :class:`RuntimeOptions` field given as a keyword
    override ``options``; ``profile`` (a provider profile file such as ``toolchains/jetson/profile.toml``, see
    :mod:`edge.models.profile`) is applied on top of ``options`` and under the keywords. ``trust_key`` (Ed25519
    public key: PEM path, PEM bytes or key object; default ``$EDGE_TRUST_KEY``) makes a valid signature mandatory.
    Raises :class:`ModelError` (missing file, unknown type, corrupt model), :class:`UnavailableError` (a runtime
    missing, or a provider in strict mode), :class:`IntegrityError` (package tampered, malformed, signature missing
    or wrong), :class:`ConfigError` (bad option).
    A failed load leaves nothing loaded.
    """
    base = options or RuntimeOptions()
    if profile is not None:
        from edge.models.profile import load_provider_profile

        base = load_provider_profile(profile, base)
    fields = {**base.__dict__, **option_fields, "strict": strict or base.strict}
    if warmup is not None:
        fields["warmup"] = warmup
    if providers is not None:
        fields["providers"] = providers
    if threads is not None:
        fields["threads"] = threads
    opts = RuntimeOptions(**fields)
    fmt, data, pkg = read_model_source(path, trust_key)
    if pkg is not None:  # the variant `edge model select` chose on this machine, if any
        from edge.models.select import apply_selection

        fmt, data, opts = apply_selection(path, pkg, fmt, data, opts)
    model = load_model_bytes(fmt, data, opts, str(path))
    model.package = pkg  # type: ignore[attr-defined]
    model.options = opts  # type: ignore[attr-defined]
    r = model.report
    log.info(
        "loaded %s on %s/%s in %.1f ms; first run %s ms, warm %s ms",
        path,
        model.backend,
        model.provider,
        r.load_ms,
        _ms(r.first_run_ms),
        _ms(r.warm_ms),
    )
    return model


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
