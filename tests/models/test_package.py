"""Model packages: pack, verify, sign; any changed byte or missing/wrong signature is refused before loading."""

from __future__ import annotations

import tarfile
import tomllib
from pathlib import Path

import numpy as np
import pytest

from edge.errors import IntegrityError
from edge.models import _toml, load_model
from edge.models.manage import pack_model, sign_package, verify_package


@pytest.fixture(params=["folder", "archive"])
def package(request: pytest.FixtureRequest, model_path: Path, tmp_path: Path) -> Path:
    out = tmp_path / ("pkg" if request.param == "folder" else "pkg.tar.gz")
    return pack_model(model_path, out, name="cnn", version="1.2.0", preprocess={"mean": [0.5] * 3, "std": [0.25] * 3})


def _rewrite(pkg: Path, name: str, change) -> None:
    """Apply ``change(bytes) -> bytes`` to one file of a folder or archive package."""
    if pkg.is_dir():
        (pkg / name).write_bytes(change((pkg / name).read_bytes()))
        return
    with tarfile.open(pkg) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    files[name] = change(files[name])
    from edge.models.package import write_package

    write_package(pkg, files)


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def test_package_loads_and_matches_bare_model(package: Path, model_path: Path) -> None:
    pkg = verify_package(package)
    assert pkg.manifest["model"]["name"] == "cnn" and pkg.manifest["preprocess"]["std"] == [0.25] * 3
    a, b = load_model(package), load_model(model_path)
    assert a.inputs == b.inputs and a.outputs == b.outputs
    assert pkg.manifest["inputs"][0] == a.inputs[0].to_dict()
    x = np.ones(a.inputs[0].shape, a.inputs[0].dtype)
    np.testing.assert_array_equal(a.run(x)[0], b.run(x)[0])
    assert a.package.signed_by is None


def test_any_changed_model_byte_is_refused(package: Path, model_path: Path) -> None:
    _rewrite(package, model_path.name, _flip)
    with pytest.raises(IntegrityError, match="sha256"):
        verify_package(package)
    with pytest.raises(IntegrityError):
        load_model(package)


def test_changed_manifest_or_extra_file_is_refused(package: Path, model_path: Path, tmp_path: Path) -> None:
    if package.is_dir():
        (package / "extra.bin").write_bytes(b"x")
        with pytest.raises(IntegrityError, match="not in the manifest"):
            load_model(package)
        (package / "extra.bin").unlink()
        (package / model_path.name).unlink()
        with pytest.raises(IntegrityError, match="missing"):
            load_model(package)
    else:
        _rewrite(package, "manifest.toml", lambda b: b.replace(b"schema = 1", b"schema = 2"))
        with pytest.raises(IntegrityError, match="schema"):
            load_model(package)


def test_truncated_archive_is_refused(model_dir: Path, tmp_path: Path) -> None:
    pkg = pack_model(model_dir / "float.onnx", tmp_path / "p.tar.gz", name="n", version="1")
    pkg.write_bytes(pkg.read_bytes()[:200])
    with pytest.raises(IntegrityError, match="truncated"):
        load_model(pkg)


def test_signed_package_with_trust_key(package: Path, keys: dict[str, Path]) -> None:
    sign_package(package, keys["signing"])
    pkg = verify_package(package, keys["trust"])
    assert pkg.signed_by and len(pkg.signed_by) == 16
    model = load_model(package, trust_key=keys["trust"])
    assert model.package.signed_by == pkg.signed_by
    with pytest.raises(IntegrityError, match="made with key"):
        load_model(package, trust_key=keys["other_trust"])


def test_unsigned_package_refused_when_trust_key_configured(
    package: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(IntegrityError, match="not signed"):
        load_model(package, trust_key=keys["trust"])
    monkeypatch.setenv("EDGE_TRUST_KEY", str(keys["trust"]))
    with pytest.raises(IntegrityError, match="not signed"):
        load_model(package)


def test_bare_model_refused_when_trust_key_configured(model_path: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(IntegrityError, match="bare model"):
        load_model(model_path, trust_key=keys["trust"])


def test_manifest_edit_after_signing_is_refused(package: Path, model_path: Path, keys: dict[str, Path]) -> None:
    sign_package(package, keys["signing"])
    # an attacker swaps the model and updates its hash in the manifest: hashes match, the signature does not
    _rewrite(package, model_path.name, _flip)
    from edge.models.integrity import sha256_hex
    from edge.models.package import read_files

    new_hash = sha256_hex(read_files(package)[model_path.name])

    def fix_hash(m: bytes) -> bytes:
        old = tomllib.loads(m.decode())["files"][model_path.name]
        return m.replace(old.encode(), new_hash.encode())

    _rewrite(package, "manifest.toml", fix_hash)
    verify_package(package)  # hashes alone now agree ...
    with pytest.raises(IntegrityError, match="does not match"):
        load_model(package, trust_key=keys["trust"])  # ... the signature refuses it


def test_content_after_signature_is_refused(package: Path, keys: dict[str, Path]) -> None:
    sign_package(package, keys["signing"])
    _rewrite(package, "manifest.toml", lambda b: b + b"\n[preprocess2]\nmean = [1.0]\n")
    with pytest.raises(IntegrityError, match="last table"):
        load_model(package, trust_key=keys["trust"])


def test_forged_signature_value_is_refused(package: Path, keys: dict[str, Path]) -> None:
    sign_package(package, keys["signing"])

    def forge(m: bytes) -> bytes:
        head, _, value = m.rpartition(b'value = "')
        return head + b'value = "' + (b"A" if value[:1] != b"A" else b"B") + value[1:]

    _rewrite(package, "manifest.toml", forge)
    with pytest.raises(IntegrityError, match="does not match"):
        verify_package(package, keys["trust"])


def test_tampered_package_is_not_signed(package: Path, model_path: Path, keys: dict[str, Path]) -> None:
    _rewrite(package, model_path.name, _flip)
    with pytest.raises(IntegrityError):
        sign_package(package, keys["signing"])


def test_toml_writer_round_trips() -> None:
    doc = {
        "schema": 1,
        "model": {"name": 'a "quoted"\nname', "n": 3, "ok": True, "x": 0.1},
        "files": {"m.onnx": "ab", "with space.bin": "cd"},
        "empty": {},
        "inputs": [{"name": "i", "shape": [1, 3], "scale": 1e-5}, {"name": "j", "shape": []}],
    }
    assert tomllib.loads(_toml.dumps(doc)) == doc
    assert _toml.dumps(doc) == _toml.dumps(doc)
