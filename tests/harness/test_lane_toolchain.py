"""The model toolchain: U8S8 quantization, the reference profile, their CLI faces, and the shipped lane packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.cli import main
from edge.drift.profile import load_profile
from edge.errors import ShapeError
from edge.models import load_model
from edge.models.manage import verify_package
from edge.tooling.model_builders import float_cnn_onnx
from edge.tooling.toolchain import quantize_u8s8, reference_profile, run_frames

MODELS = Path(__file__).resolve().parents[2] / "sim" / "models"


def _float_reference(path, frames: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The float model run bare by onnxruntime on frames normalized by hand."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = ((frames.astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    return np.concatenate([sess.run(None, {"images": x[i : i + 1]})[0] for i in range(len(x))])


def test_quantize_u8s8_gives_a_uint8_input_model_close_to_the_float_one(tmp_path, rng) -> None:
    fp = float_cnn_onnx(tmp_path / "f.onnx", hw=32)
    frames = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    q = quantize_u8s8(fp, tmp_path / "q.onnx", frames[:16], mean=(0.5,) * 3, std=(0.25,) * 3)
    model = load_model(q, warmup=0)
    assert model.inputs[0].dtype == np.uint8 and model.inputs[0].quantized
    ops = {n.op_type for n in __import__("onnx").load_model(q).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    want = _float_reference(fp, frames[16:], 0.5, 0.25)
    got = run_frames(model, frames[16:], (0.5,) * 3, (0.25,) * 3)
    spread = float(want.max() - want.min())
    assert np.abs(got - want).max() < 0.1 * spread


def test_quantize_refuses_calibration_frames_of_the_wrong_size(tmp_path, rng) -> None:
    fp = float_cnn_onnx(tmp_path / "f.onnx", hw=32)
    with pytest.raises(ShapeError, match=r"expected \(N, 32, 32, 3\)"):
        quantize_u8s8(fp, tmp_path / "q.onnx", rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ShapeError, match="expected uint8"):
        quantize_u8s8(fp, tmp_path / "q.onnx", np.zeros((4, 32, 32, 3), np.float32))


def test_reference_profile_centres_bins_on_the_reference(tmp_path, rng) -> None:
    fp = float_cnn_onnx(tmp_path / "f.onnx", hw=32)
    model = load_model(fp, warmup=0)
    n = 50
    frames = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    stats = np.zeros((n, 2, 3))
    stats[:, 0, :] = 100.0  # constant means: width falls back to min_width (3.0), all in the middle bin
    stats[:, 1, 0] = 30.0
    stats[:, 1, 1] = 30.0 + 3.0  # 3.0 above a median of 30 (27 of the 50 values stay at 30)
    stats[: n // 2 + 1, 1, 1] = 30.0
    stats[:, 1, 2] = np.linspace(20.0, 40.0, n)  # std 5.89 → width 6 * 5.89
    profile = reference_profile(model, frames, stats, bins=13, outputs=True, output_names=("logit0",))
    names = profile.names
    assert names[:6] == tuple(f"pixel_{s}_c{c}" for s in ("mean", "std") for c in range(3))
    assert names[6] == "logit0" and len(names) == 6 + 10  # one per logit of the 10-class model
    f = profile.features[0]
    np.testing.assert_allclose(f.edges, 100.0 + 3.0 * (np.arange(14) - 6.5))
    assert f.counts[7] == n and f.counts.sum() == n
    g = profile.features[4]  # pixel_std_c1: 26 at 30, 24 at 33; median 30, std 1.497 → width max(8.98, 2) = 8.98
    w = 6 * np.std(stats[:, 1, 1])
    np.testing.assert_allclose(g.edges[7] - g.edges[6], w)
    assert g.counts[7] == n  # 33 is within half a bin (4.49) of the median
    h = profile.features[5]
    assert h.counts[7] > 0 and h.counts.sum() == n and h.moments[0] == n
    np.testing.assert_allclose(h.moments[1], 30.0)
    out = profile.features[6]
    assert out.source == {"kind": "output", "output": 0, "index": 0}
    assert out.counts.sum() == n


def test_model_quantize_and_profile_commands(tmp_path, rng, capsys) -> None:
    fp = float_cnn_onnx(tmp_path / "f.onnx", hw=32)
    frames = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    stats = np.stack([frames.mean(axis=(1, 2)), frames.std(axis=(1, 2))], axis=1)
    np.savez(tmp_path / "d.npz", frames=frames, pixel_stats=stats)
    assert main(["model", "quantize", str(fp), "-o", str(tmp_path / "q.onnx"), "--calibration",
                 str(tmp_path / "d.npz"), "--mean", "0.5", "--std", "0.25"]) == 0  # fmt: skip
    assert load_model(tmp_path / "q.onnx", warmup=0).inputs[0].dtype == np.uint8
    assert main(["model", "profile", str(tmp_path / "q.onnx"), "--frames", str(tmp_path / "d.npz"),
                 "-o", str(tmp_path / "p.json")]) == 0  # fmt: skip
    assert load_profile(tmp_path / "p.json").names[0] == "pixel_mean_c0"
    np.savez(tmp_path / "bad.npz", images=frames)
    assert main(["model", "profile", str(fp), "--frames", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "x")]) == 2
    assert "expected arrays ['frames', 'pixel_stats']" in capsys.readouterr().err


def test_shipped_lane_packages_are_signed_small_and_int8() -> None:
    from edge.models.integrity import load_public_key

    folder = MODELS
    trust = load_public_key((folder / "trust.pem").read_bytes())
    # (package, layout, size limit in bytes): the trained PilotNet-style network has about 470 k weights
    for name, layout, limit in (
        ("lane-keeper", "NCHW", 600_000),
        ("lane-keeper-float", "NCHW", 2_000_000),
        ("lane-keeper-next", "NCHW", 600_000),
        ("lane-keeper-tflite", "NHWC", 600_000),
        ("lane-keeper-next-tflite", "NHWC", 600_000),
    ):
        path = folder / f"{name}.tgz"
        assert path.stat().st_size < limit
        pkg = verify_package(path, trust)
        assert pkg.signed_by and pkg.manifest["preprocess"]["layout"] == layout
        profile = load_profile(pkg.files[pkg.manifest["reference_profile"]["file"]])
        assert profile.names == tuple(f"pixel_{s}_c{c}" for s in ("mean", "std") for c in range(3))
    int8 = load_model(folder / "lane-keeper.tgz", warmup=0)
    assert int8.inputs[0].dtype == np.uint8 and int8.inputs[0].shape == (1, 3, 66, 200)
    assert load_model(folder / "lane-keeper-float.tgz", warmup=0).inputs[0].dtype == np.float32
    tflite = load_model(folder / "lane-keeper-tflite.tgz", warmup=0)
    assert tflite.backend == "litert" and tflite.inputs[0].dtype == np.int8
    assert tflite.inputs[0].shape == (1, 66, 200, 3)
