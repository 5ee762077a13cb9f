"""Reference profiles: save/load round trip, validation errors, the default profile, and a real ONNX model packaged
with a profile that declares output features (top-1 score, one logit, confidence, PCA reconstruction error)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_collector import wait_for

from edge.drift import ReferenceProfile, default_profile, load_profile, save_profile
from edge.drift.profile import FeatureSpec, PcaBasis, profile_for_model
from edge.errors import ConfigError


def _profile(rng: np.random.Generator) -> ReferenceProfile:
    basis, _ = np.linalg.qr(rng.standard_normal((10, 3)))
    feats = list(default_profile(3).features)
    for name, source, edges in [
        ("top1_logit", {"kind": "output_max", "output": 0}, np.linspace(-5, 5, 11)),
        ("logit_3", {"kind": "output", "output": 0, "index": 3}, np.linspace(-5, 5, 11)),
        ("confidence", {"kind": "confidence"}, np.linspace(0, 1, 6)),
        ("embedding_error", {"kind": "pca_error", "output": 0}, np.array([0.0, 0.5, 1, 2, 4, 8])),
    ]:
        counts = rng.integers(0, 50, len(edges) + 2)
        feats.append(FeatureSpec(name, source, edges, counts, np.array([5.0, 0.1, 2.0, -1.0, 1.0])))
    pca = PcaBasis(0, rng.standard_normal(10) * 0.1, basis.T.copy())
    return ReferenceProfile(tuple(feats), pca=pca, prediction_output=0)


def test_round_trip_and_profile_id(tmp_path: Path, rng) -> None:
    p = _profile(rng)
    path = save_profile(p, tmp_path / "profile.json")
    back = load_profile(path)
    assert back.to_bytes() == p.to_bytes() == path.read_bytes()
    assert back.profile_id == p.profile_id and len(p.profile_id) == 16
    assert back.names == p.names and back.prediction_output == 0
    np.testing.assert_array_equal(back.pca.basis, p.pca.basis)
    doc = json.loads(path.read_bytes())
    doc["features"][0]["counts"][1] += 1
    assert load_profile(json.dumps(doc).encode()).profile_id != p.profile_id


def test_default_profile() -> None:
    p = default_profile(3)
    assert p.names == tuple(f"pixel_{s}_c{c}" for s in ("mean", "std") for c in range(3))
    np.testing.assert_array_equal(p.features[0].edges, [255.0 * i / 16 for i in range(17)])
    np.testing.assert_array_equal(p.features[3].edges, [128.0 * i / 16 for i in range(17)])
    assert all(int(f.counts.sum()) == 0 for f in p.features)  # no reference data


def _doc(**feature_changes) -> dict:
    feature = {"name": "f", "source": {"kind": "confidence"}, "edges": [0.0, 1.0], **feature_changes}
    return {"schema": 1, "features": [feature]}


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"schema": 2, "features": []}, "schema: expected 1, got 2"),
        (_doc(edges=[1.0, 0.0]), "features[0].edges: expected 2..256 finite, strictly increasing edges"),
        (_doc(counts=[1, 2]), "features[0].counts: expected 4 counts >= 0"),
        (_doc(source={"kind": "magic"}), "features[0].source: expected a table with kind one of"),
        (_doc(source={"kind": "output", "output": 0}), "expected an integer element index >= 0"),
        (_doc(source={"kind": "pca_error", "output": 0}), "pca: expected a PCA basis for the pca_error feature"),
        ({"schema": 1, "features": [_doc()["features"][0]] * 2}, "features[1].name: expected a unique name"),
    ],
)
def test_validation_errors(doc, message) -> None:
    with pytest.raises(ConfigError) as info:
        load_profile(json.dumps(doc).encode())
    assert message in str(info.value)


def test_undecodable_profile() -> None:
    with pytest.raises(ConfigError, match="expected UTF-8 JSON"):
        load_profile(b"\xff{")


def test_real_model_package_output_features(tmp_path: Path, rng, make_tap, collector, make_driver) -> None:
    from edge.models import load_model
    from edge.models.manage import pack_model
    from edge.tooling.model_builders import float_cnn_onnx

    profile = _profile(rng)
    save_profile(profile, tmp_path / "profile.json")
    onnx_path = float_cnn_onnx(tmp_path / "cnn.onnx")
    pkg = pack_model(
        onnx_path, tmp_path / "pkg", name="cnn", version="2.0.0", reference_profile=tmp_path / "profile.json"
    )
    model = load_model(pkg)
    assert profile_for_model(model, 3).profile_id == profile.profile_id
    assert profile_for_model(load_model(onnx_path), 3).names == default_profile(3).names  # bare model

    d = make_driver(rng)
    d.ctx.outputs = model.output_buffers
    d.ctx.model_version = "cnn@2.0.0"
    tap = make_tap(collector.endpoint)
    tap.bind(d.ctx, model)
    logits: list[np.ndarray] = []
    confidences: list[float] = []
    x = np.empty(model.inputs[0].shape, np.float32)

    def infer(ctx) -> None:
        x[...] = rng.standard_normal(x.shape)
        model.run(x)  # real onnxruntime, writing into the bound output buffer the tap reads
        logits.append(model.output_buffers[0].reshape(-1).astype(np.float64))
        confidences.append(ctx.confidence)

    d.fill = _no_output_overwrite(d)
    d.run(tap, 10, on_frame=infer)
    d.run(tap, 1, on_frame=infer)  # closes the first window
    wait_for(lambda: len(collector.of_kind("window")) == 1)
    body = collector.of_kind("window")[0].body
    hello = collector.hellos[-1].body
    assert hello["profile"] == profile.profile_id and body["profile"] == profile.profile_id
    assert body["model"] == "cnn@2.0.0"
    frames = logits[:10]
    top1 = [float(v.max()) for v in frames]
    mean, std = profile.pca.mean, profile.pca.basis
    errors = [float((v - mean) @ (v - mean) - np.sum((std @ (v - mean)) ** 2)) for v in frames]
    for name, values in [("top1_logit", top1), ("logit_3", [float(v[3]) for v in frames]),
                         ("confidence", confidences[:10]), ("embedding_error", errors)]:  # fmt: skip
        count, m, _, lo, hi = body["features"][name]["m"]
        assert count == 10
        assert m == pytest.approx(np.mean(values), rel=1e-6, abs=1e-9)
        assert (lo, hi) == pytest.approx((min(values), max(values)), rel=1e-6, abs=1e-9)
    assert body["predictions"] == [sum(1 for v in frames if int(v.argmax()) == k) for k in range(10)]


def _no_output_overwrite(d):
    """The driver's fill() without writing random outputs: the model writes them."""
    original = type(d).fill

    def fill() -> None:
        keep = d.ctx.outputs
        d.ctx.outputs = (np.zeros(1, np.float32),)
        original(d)
        d.ctx.outputs = keep

    return fill
