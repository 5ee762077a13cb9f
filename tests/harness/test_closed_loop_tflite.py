"""``--backend tflite``: the full-int8 TFLite lane model (edge.tooling.tflite_export) drives the simulated car in
closed loop through the loop's int8 NHWC preprocessing, with telemetry to the in-process collector.

The package is built here from the shipped float lane model (``sim/models/lane-keeper-float.tgz``): calibrated and
quantized to U8S8 QDQ (edge.tooling.toolchain), converted, packed with ``layout = "NHWC"`` and signed with a key made
for the test (the shipped ``trust.pem``'s private half was thrown away). A float model that divides its features by
their mean level (ReduceMean/Add/Div, which the export refuses) gets that level folded into its head first: on
nominal frames it is nearly constant.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from edge.sim import builtin_scenario
from edge.sim.dataset import collect
from edge.sim.harness import HarnessOptions, builtin_models, run_scenario
from edge.sim.scenario import parse_scenario

from edge.cli import main
from edge.errors import ConfigError
from edge.models import load_model


def _fold_mean_level(model, frames: np.ndarray, mean, std) -> None:
    """Replace ``Div(raw, ReduceMean(raw) + eps)`` → Gemm by ``raw`` → Gemm with its weights divided by the mean
    level on ``frames`` (in place)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from edge.tooling.toolchain import normalize_frames

    g = model.graph
    div = next((n for n in g.node if n.op_type == "Div"), None)
    if div is None:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_tensor_value_info(div.input[1], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    x = normalize_frames(frames, mean, std)
    level = float(np.mean([sess.run([div.input[1]], {"images": xi[None]})[0] for xi in x]))
    raw, dead, drop = div.input[0], {div.input[1]}, [div]
    for n in reversed(list(g.node)):  # the nodes computing the level (ReduceMean, Add eps)
        if set(n.output) & dead:
            drop.append(n)
            dead |= {i for i in n.input if i != raw}
    for n in drop:
        g.node.remove(n)
    for n in g.node:
        if n.op_type == "Gemm" and n.input[0] == div.output[0]:
            n.input[0] = raw
            w = next(i for i in g.initializer if i.name == n.input[1])
            w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) / np.float32(level), w.name))


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding ``lane-keeper-tflite.tgz`` (signed with ``trust.pem`` in the same folder)."""
    import onnx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.models.manage import pack_model
    from edge.models.package import read_package
    from edge.tooling.tflite_export import qdq_onnx_to_tflite
    from edge.tooling.toolchain import quantize_u8s8

    tmp = tmp_path_factory.mktemp("tflite-models")
    pkg = read_package(builtin_models() / "lane-keeper-float.tgz")
    pre = dict(pkg.manifest["preprocess"])
    frames = collect(builtin_scenario("nominal"), 200, seed=11, perturb_rad=0.2, perturb_every_s=2.0)["frames"]
    model = onnx.load_model_from_string(pkg.model_bytes)
    _fold_mean_level(model, frames, pre["mean"], pre["std"])
    onnx.save_model(model, tmp / "float.onnx")
    qdq = quantize_u8s8(tmp / "float.onnx", tmp / "qdq.onnx", frames, mean=pre["mean"], std=pre["std"])
    tfl = qdq_onnx_to_tflite(qdq, tmp / "lane_keeper.tflite")
    profile = tmp / pkg.manifest["reference_profile"]["file"]
    profile.write_bytes(pkg.files[profile.name])
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    models = tmp / "models"
    models.mkdir()
    (models / "trust.pem").write_bytes(pub)
    pack_model(tfl, models / "lane-keeper-tflite.tgz", name="lane-keeper", version="1.0.0",
               preprocess={**pre, "layout": "NHWC"}, reference_profile=profile, signing_key=key)  # fmt: skip
    return models


@pytest.fixture
def no_leaks():
    """The run's collector, publisher and swap threads are all gone afterwards."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in left:
        t.join(5.0)
    assert not [t.name for t in left if t.is_alive()]


def _scenario(duration_s: float, timeline: list[dict] | None = None):
    raw = {
        "name": "t",
        "world": {"seed": 1, "duration_s": duration_s, "rate_hz": 20, "speed_mps": 10.0},
        "timeline": timeline or [],
        "assertions": {"max_lateral_error_m": 0.5, "max_lane_departures": 0, "no_alert": True},
    }
    return parse_scenario(raw)


def test_the_tflite_model_keeps_the_lane(tflite_models: Path, tmp_path: Path, no_leaks) -> None:
    model = load_model(tflite_models / "lane-keeper-tflite.tgz", trust_key=tflite_models / "trust.pem", warmup=0)
    assert model.backend == "litert" and model.inputs[0].dtype == np.int8 and model.inputs[0].shape[3] == 3
    res = run_scenario(_scenario(12.0), HarnessOptions(workdir=tmp_path, backend="tflite", models=tflite_models))
    assert res.passed, res.failures
    assert res.trace.n == 240 and res.lane_departures == 0 and res.max_lateral_m < 0.5
    assert res.model_errors == 0 and not res.trace.view("fallback").any()
    assert res.alerts == []


def test_a_bad_swap_from_the_tflite_model_is_rolled_back(tflite_models: Path, tmp_path: Path, no_leaks) -> None:
    sc = _scenario(6.0, [{"kind": "bad_swap", "start_s": 2.0, "model": "broken"}])
    res = run_scenario(sc, HarnessOptions(workdir=tmp_path, backend="tflite", models=tflite_models))
    assert res.passed, res.failures
    assert res.swap_states == ["rolled_back"] and res.model_version == "lane-keeper@1.0.0"
    assert res.trace.view("fallback").any()  # the broken model's NaN frames were replaced by the fallback


def test_backend_tflite_without_the_package_says_what_is_missing(tmp_path: Path) -> None:
    want = r"lane-keeper-tflite\.tgz to exist.*TFLite variant.*not shipped yet.*tflite_export.*--package"
    with pytest.raises(ConfigError, match=want):
        run_scenario(_scenario(1.0), HarnessOptions(workdir=tmp_path, backend="tflite", models=tmp_path))


def test_backend_tflite_refuses_an_onnx_package(tmp_path: Path, capsys) -> None:
    onnx_pkg = str(builtin_models() / "lane-keeper.tgz")
    assert main(["sim", "run", "nominal", "--backend", "tflite", "--package", onnx_pkg, "--quiet"]) == 2
    assert "expected a TFLite model for --backend tflite, got an onnx model" in capsys.readouterr().err


def test_sim_run_backend_tflite_command(tflite_models: Path, tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "short.toml"
    scenario.write_text(
        'name = "short"\n[world]\nseed = 2\nduration_s = 3\nrate_hz = 20\nspeed_mps = 10.0\n'
        "[assertions]\nmax_lateral_error_m = 0.5\nmax_lane_departures = 0\n"
    )
    pkg = str(tflite_models / "lane-keeper-tflite.tgz")
    assert main(["sim", "run", str(scenario), "--backend", "tflite", "--package", pkg, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["passed"] and summary["frames"] == 60 and summary["lane_departures"] == 0
