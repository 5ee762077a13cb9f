"""Model packages: a folder, or one tar archive of it, holding the model file and ``manifest.toml``.

``manifest.toml`` holds ``schema``, ``[model]`` (name, version, file, format), ``[files]`` (sha256 of every other
file), ``[[inputs]]``/``[[outputs]]`` (the IO spec), ``[preprocess]`` (the preprocessing spec), ``[reference_profile]``
(the slot for the drift reference profile: ``file``, empty until one is added) and, last, an optional
``[signature]`` (see :mod:`edge.models.integrity`).

:func:`read_package` reads every file into memory and verifies it there; the model bytes it returns are the ones
that were hashed, so nothing can change between the check and the load.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.contracts import TensorSpec
from edge.errors import IntegrityError, ModelError
from edge.models import _toml
from edge.models._foreign import PACKAGE_ERRORS, package_error
from edge.models.archive import MAX_FILE_BYTES, read_archive, safe_name
from edge.models.integrity import sha256_hex, split_signature, verify_manifest_signature

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MANIFEST",
    "MODEL_FORMATS",
    "Package",
    "build_manifest",
    "is_archive",
    "read_files",
    "read_package",
    "write_package",
]

MANIFEST = "manifest.toml"
SCHEMA = 1
MODEL_FORMATS = {".onnx": "onnx", ".tflite": "tflite"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Package:
    """A verified package held in memory: ``manifest`` (parsed), ``manifest_bytes``, ``files`` (name → bytes)."""

    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    files: dict[str, bytes]
    signed_by: str | None

    @property
    def model_name(self) -> str:
        return str(self.manifest["model"]["file"])

    @property
    def model_bytes(self) -> bytes:
        return self.files[self.model_name]

    @property
    def format(self) -> str:
        return str(self.manifest["model"]["format"])


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def read_files(path: Path) -> dict[str, bytes]:
    """Every file of a package folder or archive, read into memory (links and sub-folders are refused; an archive
    is checked as :mod:`edge.models.archive` says)."""
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    if not path.is_dir():
        if is_archive(path):
            return read_archive(path)
        raise ModelError(f"{path}: expected a package folder or a {'/'.join(ARCHIVE_SUFFIXES)} archive")
    files: dict[str, bytes] = {}
    try:
        for p in sorted(path.iterdir()):
            if p.is_symlink() or not p.is_file():
                raise IntegrityError(f"{path}: expected only regular files in the package, found {p.name!r}")
            if p.stat().st_size > MAX_FILE_BYTES:
                raise IntegrityError(f"{path}/{p.name}: {p.stat().st_size} bytes, over the {MAX_FILE_BYTES} limit")
            files[safe_name(p.name, path)] = p.read_bytes()
    except OSError as exc:
        raise package_error(exc, path) from exc
    return files


_TABLES = ("model", "files", "preprocess", "reference_profile", "signature")


def _parse_manifest(manifest_bytes: bytes, where: str) -> dict[str, Any]:
    """The manifest as a dict, its shape checked: what readers of a package index into is there, of the right type."""
    try:
        manifest = tomllib.loads(manifest_bytes.decode("utf-8"))
    except PACKAGE_ERRORS as exc:
        raise package_error(exc, where) from exc
    if manifest.get("schema") != SCHEMA:
        raise IntegrityError(f"{where}: expected schema = {SCHEMA}, got {manifest.get('schema')!r}")
    for key in _TABLES:
        if not isinstance(manifest.get(key, {}), dict):
            raise IntegrityError(f"{where}: expected [{key}] to be a table, got {type(manifest[key]).__name__}")
    for key in ("inputs", "outputs"):
        tables = manifest.get(key, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise IntegrityError(f"{where}: expected [[{key}]] to be an array of tables")
    model, listed = manifest.get("model", {}), manifest.get("files")
    if not isinstance(model.get("file"), str) or model.get("format") not in MODEL_FORMATS.values():
        raise IntegrityError(
            f"{where}: expected [model] file (a name) and format ({' or '.join(MODEL_FORMATS.values())}), "
            f"got file={model.get('file')!r} format={model.get('format')!r}"
        )
    if listed is None or not all(isinstance(v, str) for v in listed.values()):
        raise IntegrityError(f"{where}: expected a [files] table of sha256 hex digests")
    return manifest


def read_package(path: str | Path, trust_key: Any | None = None) -> Package:
    """Read and verify a package. :class:`IntegrityError` when any file differs from its sha256 in the manifest,
    a file is missing or unlisted, the archive or manifest is malformed, or — with ``trust_key`` — the signature
    is missing or wrong; :class:`ModelError` when ``path`` is missing or not a package."""
    path = Path(path)
    files = read_files(path)
    if MANIFEST not in files:
        raise IntegrityError(f"{path}: no {MANIFEST} in the package")
    manifest_bytes = files.pop(MANIFEST)
    where = f"{path}/{MANIFEST}"
    try:
        signed_by = verify_manifest_signature(manifest_bytes, trust_key) if trust_key is not None else None
        split_signature(manifest_bytes)  # a malformed signature table is refused even without a trust key
    except IntegrityError as exc:
        raise IntegrityError(f"{where}: {exc}") from exc
    manifest = _parse_manifest(manifest_bytes, where)
    listed = manifest["files"]
    missing = sorted(set(listed) - set(files))
    unlisted = sorted(set(files) - set(listed))
    if missing or unlisted:
        raise IntegrityError(f"{path}: files missing {missing} / not in the manifest {unlisted}")
    for name, data in files.items():
        got = sha256_hex(data)
        if got != listed[name]:
            raise IntegrityError(f"{path}/{name}: sha256 expected {listed[name]}, got {got}: the file was changed")
    model_file = manifest["model"]["file"]
    if model_file not in files:
        raise IntegrityError(f"{path}/{MANIFEST}: model file {model_file!r} is not in [files]")
    return Package(path, manifest, manifest_bytes, files, signed_by)


def build_manifest(
    *,
    name: str,
    version: str,
    model_file: str,
    files: dict[str, bytes],
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    preprocess: dict[str, Any] | None = None,
    reference_profile: str = "",
) -> bytes:
    """``manifest.toml`` bytes (unsigned) for the given files and IO spec."""
    suffix = Path(model_file).suffix.lower()
    if suffix not in MODEL_FORMATS:
        raise ModelError(f"{model_file}: expected a model file ending in {', '.join(MODEL_FORMATS)}")
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model": {"name": name, "version": version, "file": model_file, "format": MODEL_FORMATS[suffix]},
        "files": {n: sha256_hex(b) for n, b in sorted(files.items())},
        "preprocess": dict(preprocess or {}),
        "reference_profile": {"file": reference_profile},
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [s.to_dict() for s in outputs],
    }
    return _toml.dumps(doc).encode("utf-8")


def write_package(out: str | Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (manifest included) as a folder, or as a tar archive when ``out`` ends in .tar/.tar.gz/.tgz.
    The archive is written to a temporary name and renamed, so a reader never sees half a package; it holds no time
    or temporary name, so the same files give the same bytes."""
    out = Path(out)
    if out.name.lower().endswith(ARCHIVE_SUFFIXES):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
                tar.addfile(info, io.BytesIO(files[name]))
        data = buf.getvalue() if out.name.lower().endswith(".tar") else gzip.compress(buf.getvalue(), mtime=0)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_bytes(data)
        tmp.replace(out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            tmp = out / (name + ".partial")
            tmp.write_bytes(data)
            tmp.replace(out / name)
    return out
