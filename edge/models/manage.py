"""Package operations behind ``edge model pack|sign|verify``: build, sign and check packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.errors import ConfigError, ModelError
from edge.models.integrity import sign_manifest
from edge.models.options import RuntimeOptions
from edge.models.package import MANIFEST, MODEL_FORMATS, Package, read_files, read_package, write_package

__all__ = ["pack_model", "sign_package", "verify_package"]


def pack_model(
    model_path: str | Path,
    out: str | Path,
    *,
    name: str,
    version: str,
    preprocess: dict[str, Any] | None = None,
    extra_files: tuple[str | Path, ...] = (),
    reference_profile: str | Path | None = None,
    signing_key: Any | None = None,
) -> Path:
    """Write a package (folder, or archive when ``out`` ends in .tar/.tar.gz/.tgz) for ``model_path``.

    The IO spec is read by loading the model once (no warm-up). ``reference_profile`` is copied in and named in the
    manifest's ``[reference_profile]`` slot. With ``signing_key`` (Ed25519 private key) the manifest is signed.
    """
    from edge.models import load_model_bytes

    model_path = Path(model_path)
    if model_path.suffix.lower() not in MODEL_FORMATS:
        raise ModelError(f"{model_path}: expected a .onnx or .tflite model to pack")
    try:
        files = {model_path.name: model_path.read_bytes()}
        for extra in (*extra_files, *([reference_profile] if reference_profile else [])):
            files[Path(extra).name] = Path(extra).read_bytes()
    except OSError as exc:
        raise ConfigError(f"pack: cannot read {exc.filename}: {exc.strerror}") from exc
    if MANIFEST in files:
        raise ConfigError(f"pack: a file may not be called {MANIFEST}")
    model = load_model_bytes(
        MODEL_FORMATS[model_path.suffix.lower()],
        files[model_path.name],
        RuntimeOptions(warmup=0, providers=("cpu",)),
        str(model_path),
    )
    from edge.models.package import build_manifest

    manifest = build_manifest(
        name=name,
        version=version,
        model_file=model_path.name,
        files=files,
        inputs=model.inputs,
        outputs=model.outputs,
        preprocess=preprocess,
        reference_profile=Path(reference_profile).name if reference_profile else "",
    )
    if signing_key is not None:
        manifest = sign_manifest(manifest, signing_key)
    return write_package(out, {**files, MANIFEST: manifest})


def sign_package(path: str | Path, signing_key: Any) -> Path:
    """Sign (or re-sign) a package in place; its hashes are verified first, so a tampered package is not signed."""
    pkg = read_package(path)
    files = read_files(Path(path))
    files[MANIFEST] = sign_manifest(pkg.manifest_bytes, signing_key)
    return write_package(path, files)


def verify_package(path: str | Path, trust_key: Any | None = None) -> Package:
    """Verify hashes (and the signature, when ``trust_key`` is given); raise :class:`IntegrityError` otherwise."""
    return read_package(path, trust_key)
