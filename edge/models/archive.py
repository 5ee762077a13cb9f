"""Package archives read into memory as untrusted bytes: a plain tar (``.tar``) or one gzip stream holding a tar
(``.tar.gz``/``.tgz``), of regular files with flat names only.

The compression is recognised by its magic number, not trusted from the name (a bzip2, xz, zstd or zip file named
``.tgz`` is refused by name). Gzip is inflated in bounded steps, so a decompression bomb stops at
:data:`MAX_TAR_BYTES`; zlib checks the gzip trailer (CRC-32 and length), and bytes after the stream are refused.
Every tar member must be a regular file (no links, devices, folders but ``.``), named once, with no ``/``, ``\\`` or
``..``, and its declared size must fit in the archive before a byte of it is copied. Every failure is one
:class:`IntegrityError` (or a :class:`ModelError` for a file that is missing or unreadable) naming the archive.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

from edge.errors import IntegrityError
from edge.models._foreign import PACKAGE_ERRORS, package_error

__all__ = ["MAX_FILE_BYTES", "MAX_TAR_BYTES", "compression", "read_archive", "safe_name"]

MAX_TAR_BYTES = 2 << 30  # an archive (its tar, after decompression) may hold at most 2 GiB
MAX_FILE_BYTES = 2 << 30  # one file of a package at most 2 GiB
_STEP = 1 << 20  # bytes inflated per step

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x5d\x00\x00", "lzma"),
)
_WHAT = {"gzip": "a gzip stream (.tgz/.tar.gz)", "tar": "a plain tar (.tar)"}


def compression(head: bytes) -> str:
    """What the first bytes of a file say it is: ``gzip``, ``tar``, ``bzip2``, ``xz``, ``zstd``, ``zip``, ``lzma``,
    ``empty`` or ``unknown``."""
    if not head:
        return "empty"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "tar" if head[257:262] == b"ustar" else "unknown"


def safe_name(name: str, where: Path) -> str:
    """``name`` without a leading ``./``; :class:`IntegrityError` unless it is a flat file name."""
    name = name.removeprefix("./")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise IntegrityError(f"{where}: expected flat file names in the package, got {name!r}")
    return name


def _gunzip(raw: bytes, where: Path) -> bytes:
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing: header, deflate, CRC-32 + size
    out = bytearray()
    pending = raw
    while not inflate.eof:
        step = inflate.decompress(pending, _STEP)
        pending = inflate.unconsumed_tail
        out += step
        if len(out) > MAX_TAR_BYTES:
            raise IntegrityError(
                f"{where}: expected at most {MAX_TAR_BYTES} bytes inside the gzip stream, got more: refused "
                "(a decompression bomb?)"
            )
        if not step and not pending:
            break
    if not inflate.eof:
        raise IntegrityError(f"{where}: the gzip stream ends early after {len(raw)} bytes: the file is truncated")
    if inflate.unused_data:
        extra = len(inflate.unused_data)
        raise IntegrityError(f"{where}: expected the file to end with its gzip stream, got {extra} more bytes")
    return bytes(out)


def _members(tar_bytes: bytes, where: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar:
            if m.isdir() and m.name in (".", "./"):
                continue
            if m.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise IntegrityError(f"{where}: expected only regular files in the archive, found {m.name!r} "
                                     f"(tar type {m.type!r})")  # fmt: skip
            name = safe_name(m.name, where)
            if name in files:
                raise IntegrityError(f"{where}: expected each file once in the archive, found {name!r} twice")
            end = m.offset_data + m.size
            if m.size > MAX_FILE_BYTES or end > len(tar_bytes):
                raise IntegrityError(
                    f"{where}: member {name!r} declares {m.size} bytes, the archive holds "
                    f"{max(len(tar_bytes) - m.offset_data, 0)} after its header (limit {MAX_FILE_BYTES})"
                )
            files[name] = tar_bytes[m.offset_data : end]
    return files


def read_archive(path: Path) -> dict[str, bytes]:
    """Every file of the archive at ``path``, by name, read into memory and checked as the module says."""
    try:
        size = path.stat().st_size
        if size > MAX_TAR_BYTES:
            raise IntegrityError(f"{path}: expected an archive of at most {MAX_TAR_BYTES} bytes, got {size}")
        raw = path.read_bytes()
        want = "tar" if path.name.lower().endswith(".tar") else "gzip"
        got = compression(raw[:512])
        if got != want:
            raise IntegrityError(f"{path}: expected {_WHAT[want]}, got {_WHAT.get(got, got + ' data')}")
        return _members(raw if want == "tar" else _gunzip(raw, path), path)
    except PACKAGE_ERRORS as exc:
        raise package_error(exc, path) from exc
