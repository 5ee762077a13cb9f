"""Hashes and Ed25519 signatures for model packages.

The signature covers the exact bytes of ``manifest.toml`` up to its ``[signature]`` table, which :func:`sign_manifest`
always writes last. Since the manifest lists the sha256 of every other file, one signature vouches for the package.
Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public), e.g. made with
``openssl genpkey -algorithm ed25519 -out signing.pem && openssl pkey -in signing.pem -pubout -out trust.pem``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tomllib
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, IntegrityError, UnavailableError

__all__ = [
    "SIGNATURE_HEADER",
    "TRUST_KEY_ENV",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sha256_hex",
    "sign_manifest",
    "split_signature",
    "trust_key_from_env",
    "verify_manifest_signature",
]

SIGNATURE_HEADER = b"\n[signature]\n"
TRUST_KEY_ENV = "EDGE_TRUST_KEY"


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UnavailableError("package signing needs `cryptography`: pip install cryptography") from None
    return serialization, ed25519


def _pem(src: Any) -> bytes:
    if isinstance(src, bytes):
        return src
    try:
        return Path(src).read_bytes()
    except OSError as exc:
        raise ConfigError(f"key: cannot read {src}: {exc.strerror}") from exc


def load_public_key(src: Any) -> Any:
    """An ``Ed25519PublicKey`` from a key object, PEM bytes, or a PEM file path."""
    serialization, ed25519 = _crypto()
    if isinstance(src, ed25519.Ed25519PublicKey):
        return src
    try:
        key = serialization.load_pem_public_key(_pem(src))
    except ValueError as exc:
        raise ConfigError(f"trust key: expected an Ed25519 public key in PEM, got unreadable data ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"trust key: expected an Ed25519 public key, got {type(key).__name__}")
    return key


def load_private_key(src: Any) -> Any:
    """An ``Ed25519PrivateKey`` from a key object, PEM bytes, or a PEM file path (unencrypted PKCS#8)."""
    serialization, ed25519 = _crypto()
    if isinstance(src, ed25519.Ed25519PrivateKey):
        return src
    try:
        key = serialization.load_pem_private_key(_pem(src), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key: expected an unencrypted Ed25519 private key in PEM ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"signing key: expected an Ed25519 private key, got {type(key).__name__}")
    return key


def key_id(public_key: Any) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key: names the key in the manifest."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


def trust_key_from_env() -> Any | None:
    """The trust key configured through ``$EDGE_TRUST_KEY`` (a PEM path), or ``None``."""
    path = os.environ.get(TRUST_KEY_ENV)
    return load_public_key(path) if path else None


def split_signature(manifest: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """``(signed payload, signature table or None)``. The ``[signature]`` table must be the manifest's last."""
    at = manifest.rfind(SIGNATURE_HEADER)
    if at < 0:
        return manifest, None
    payload = manifest[: at + 1]
    try:
        whole = tomllib.loads(manifest.decode("utf-8"))
        head = tomllib.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise IntegrityError(f"expected UTF-8 TOML, got {type(exc).__name__}: {exc}") from exc
    sig = whole.pop("signature", None)
    if whole != head or not isinstance(sig, dict):
        raise IntegrityError("expected [signature] to be the last table, found content after it")
    return payload, sig


def sign_manifest(manifest: bytes, private_key: Any) -> bytes:
    """``manifest`` with any old signature replaced by an Ed25519 signature over its bytes."""
    key = load_private_key(private_key)
    payload, _ = split_signature(manifest)
    if not payload.endswith(b"\n"):
        payload += b"\n"
    sig = base64.b64encode(key.sign(payload)).decode("ascii")
    table = f'algorithm = "ed25519"\nkey_id = "{key_id(key.public_key())}"\nvalue = "{sig}"\n'
    return payload + SIGNATURE_HEADER[1:] + table.encode("ascii")


def verify_manifest_signature(manifest: bytes, trust_key: Any) -> str:
    """Check the signature against ``trust_key``; return its key id. :class:`IntegrityError` when it is missing,
    made with another key, or wrong."""
    _crypto()
    from cryptography.exceptions import InvalidSignature

    key = load_public_key(trust_key)
    payload, sig = split_signature(manifest)
    if sig is None:
        raise IntegrityError("package is not signed, and a trust key is configured: refused")
    if sig.get("algorithm") != "ed25519":
        raise IntegrityError(f"signature: expected algorithm 'ed25519', got {sig.get('algorithm')!r}")
    expected_id = key_id(key)
    if sig.get("key_id") != expected_id:
        raise IntegrityError(f"signature: made with key {sig.get('key_id')!r}, trusted key is {expected_id!r}: refused")
    try:
        key.verify(base64.b64decode(str(sig.get("value", "")), validate=True), payload)
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError("signature: does not match the manifest (manifest changed or signature forged)") from exc
    return expected_id
