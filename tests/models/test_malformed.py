"""Malformed packages: any byte flipped (gzip header, deflate stream, trailer, tar headers, manifest, signature, model
bytes) or the file truncated anywhere gives a clean IntegrityError/ModelError — never another exception — or, where
the flip touched bytes nothing reads (a gzip mtime, tar padding), the very same verified contents."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import EdgeError, IntegrityError, ModelError
from edge.models import load_model
from edge.models.inspect import inspect_path
from edge.models.manage import pack_model
from edge.models.package import MANIFEST, read_package

SIGNATURE = b"\n[signature]\n"


@dataclass(repr=False)
class Subject:
    """A signed package: its .tgz bytes, the tar inside, byte ranges by class, the trust key, the verified reading."""

    dir: Path
    tgz: bytes
    tar: bytes
    regions: dict[str, list[tuple[int, int]]]  # class -> [start, end) ranges (in tgz for gzip_*, in tar otherwise)
    trust: Path
    files: dict[str, bytes]
    manifest: dict[str, Any]

    def __repr__(self) -> str:
        return f"Subject({len(self.tgz)}-byte .tgz)"


def _keypair(d: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: the package bytes are the same every run
    priv, pub = d / "signing.pem", d / "trust.pem"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub


def _gzip_header_end(tgz: bytes) -> int:
    """Where the deflate stream starts: after the 10 fixed bytes and the optional fields FLG announces (RFC 1952)."""
    flags, at = tgz[3], 10
    if flags & 4:  # FEXTRA
        at += 2 + int.from_bytes(tgz[at : at + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            at = tgz.index(b"\0", at) + 1
    return at + (2 if flags & 2 else 0)  # FHCRC


def _regions(tgz: bytes, tar: bytes) -> dict[str, list[tuple[int, int]]]:
    head = _gzip_header_end(tgz)
    out: dict[str, list[tuple[int, int]]] = {
        "gzip_header": [(0, head)],
        "deflate": [(head, len(tgz) - 8)],
        "gzip_trailer": [(len(tgz) - 8, len(tgz))],
        "tar_header": [],
        "manifest": [],
        "signature": [],
        "model": [],
    }
    covered = []
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t:
            out["tar_header"].append((m.offset, m.offset_data))
            start, end = m.offset_data, m.offset_data + m.size
            if m.name == MANIFEST:
                at = tar.index(SIGNATURE, start, end)
                out["manifest"].append((start, at))
                out["signature"].append((at, end))
            else:
                out["model"].append((start, end))
            covered.append((m.offset, end))
    covered.sort()
    gaps, pos = [], 0
    for a, b in covered:
        if a > pos:
            gaps.append((pos, a))
        pos = max(pos, b)
    gaps.append((pos, len(tar)))
    out["tar_padding"] = [g for g in gaps if g[1] > g[0]]
    return out


@pytest.fixture(scope="module")
def subject(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Subject:
    d = tmp_path_factory.mktemp("malformed")
    priv, pub = _keypair(d)
    pkg = pack_model(model_dir / "float.onnx", d / "good.tgz", name="cnn", version="1.0", signing_key=priv)
    tgz = pkg.read_bytes()
    tar = gzip.decompress(tgz)
    good = read_package(pkg, pub)
    return Subject(d, tgz, tar, _regions(tgz, tar), pub, dict(good.files), _unsigned(good.manifest))


def _unsigned(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "signature"}


def _flip(data: bytes, pos: int, mask: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def _outcome(s: Subject, path: Path, *, load: bool = False) -> str:
    """``"refused"`` (a clean IntegrityError/ModelError) or ``"same"`` (read and verified, contents unchanged)."""
    try:
        pkg = read_package(path, s.trust)
        if load:
            load_model(path, trust_key=s.trust, warmup=0, providers=["cpu"])
    except EdgeError as exc:
        assert isinstance(exc, (IntegrityError, ModelError)), repr(exc)
        assert str(exc).startswith(str(path)), str(exc)  # the message names the package
        return "refused"
    assert pkg.files == s.files and _unsigned(pkg.manifest) == s.manifest
    return "same"


def _write(s: Subject, name: str, data: bytes) -> Path:
    path = s.dir / name
    path.write_bytes(data)
    return path


CLASSES = ("gzip_header", "deflate", "gzip_trailer", "tar_header", "manifest", "signature", "model", "tar_padding")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data(), cls=st.sampled_from(CLASSES), mask=st.integers(1, 255))
def test_any_flipped_byte_is_refused_cleanly_or_changes_nothing(subject: Subject, data, cls: str, mask: int) -> None:
    start, end = data.draw(st.sampled_from(subject.regions[cls]))
    pos = data.draw(st.integers(start, end - 1))
    if cls.startswith(("gzip", "deflate")):
        paths = [_write(subject, "flip.tgz", _flip(subject.tgz, pos, mask))]
    else:  # flipped inside the tar: as a .tgz (recompressed) and as a plain .tar
        tar = _flip(subject.tar, pos, mask)
        paths = [_write(subject, "flip.tgz", gzip.compress(tar, mtime=0)), _write(subject, "flip.tar", tar)]
    for path in paths:
        got = _outcome(subject, path, load=True)
        if cls in ("deflate", "gzip_trailer", "manifest", "signature", "model"):
            assert got == "refused", (cls, pos, mask)  # these bytes are all read and checked


@pytest.mark.parametrize("cls", ["gzip_header", "gzip_trailer"])
def test_every_gzip_header_and_trailer_byte(subject: Subject, cls: str) -> None:
    (start, end), seen = subject.regions[cls][0], set()
    for pos in range(start, end):
        for mask in (0x01, 0x80, 0xFF):
            seen.add(_outcome(subject, _write(subject, "flip.tgz", _flip(subject.tgz, pos, mask))))
    # a flipped mtime or OS byte changes nothing that is read; every trailer byte is checked (CRC-32, length)
    assert seen == ({"refused", "same"} if cls == "gzip_header" else {"refused"})


def test_every_truncation_is_refused(subject: Subject) -> None:
    n = len(subject.tgz)
    cuts = sorted({*range(0, 64), *range(64, n - 64, 61), *range(n - 64, n)})
    for cut in cuts:
        assert _outcome(subject, _write(subject, "cut.tgz", subject.tgz[:cut])) == "refused", cut
    for cut in range(0, len(subject.tar), 241):  # a plain tar cut in its end-of-archive zeros is still whole
        _outcome(subject, _write(subject, "cut.tar", subject.tar[:cut]))
        _outcome(subject, _write(subject, "cut.tgz", gzip.compress(subject.tar[:cut], mtime=0)))


@pytest.mark.parametrize("cls", CLASSES)
def test_inspect_refuses_a_flip_in_each_class(subject: Subject, cls: str) -> None:
    start, end = subject.regions[cls][0]
    pos = (start + end) // 2
    blob = subject.tgz if cls.startswith(("gzip", "deflate")) else gzip.compress(subject.tar, mtime=0)
    if not cls.startswith(("gzip", "deflate")):
        blob = gzip.compress(_flip(subject.tar, pos, 0x01), mtime=0)
    else:
        blob = _flip(blob, pos, 0x01)
    path = _write(subject, "inspect.tgz", blob)
    try:
        info = inspect_path(path, subject.trust)
    except EdgeError as exc:
        assert isinstance(exc, (IntegrityError, ModelError))
    else:
        assert info["package"]["name"] == "cnn" and cls in ("gzip_header", "tar_padding")
