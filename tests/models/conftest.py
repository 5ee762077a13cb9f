"""Fixtures: test models built in-process once per session, Ed25519 key pairs, a quiet EDGE_TRUST_KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.tooling.model_builders import float_cnn_onnx, int8_tflite, u8s8_cnn_onnx


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    float_cnn_onnx(d / "float.onnx")
    u8s8_cnn_onnx(d / "u8s8.onnx")
    int8_tflite(d / "int8.tflite")
    return d


@pytest.fixture(params=["float.onnx", "u8s8.onnx", "int8.tflite"])
def model_path(request: pytest.FixtureRequest, model_dir: Path) -> Path:
    return model_dir / request.param


@pytest.fixture(autouse=True)
def _no_env_trust_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_TRUST_KEY", raising=False)


def _keypair(d: Path, stem: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv, pub = d / f"{stem}.pem", d / f"{stem}.pub.pem"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """``signing``/``trust``: a matching pair; ``other_signing``/``other_trust``: another pair."""
    a, b = _keypair(tmp_path, "signing"), _keypair(tmp_path, "other")
    return {"signing": a[0], "trust": a[1], "other_signing": b[0], "other_trust": b[1]}
