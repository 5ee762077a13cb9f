"""Declared shapes (``shapes=``, ``--shape``), dynamic outputs bound from the first real run (never a trial run on
zeros), run-time failures reported as the model rejecting its input, and ``inspect`` reading the graph only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from dynamic_models import dynamic_scale_onnx, nonzero_onnx, reshape3_onnx

from edge.cli import main
from edge.errors import ConfigError, ModelError, ShapeError
from edge.models import load_model
from edge.models.inspect import inspect_path
from edge.models.shapes import parse_shape, parse_shape_items


@pytest.fixture(scope="module")
def dyn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dynamic")
    return {
        "scale": dynamic_scale_onnx(d / "scale.onnx"),
        "reshape3": reshape3_onnx(d / "reshape3.onnx"),
        "nonzero": nonzero_onnx(d / "nonzero.onnx"),
    }


class CountingSession:
    """Counts ``InferenceSession.run`` calls (the plain run a trial run on zeros would use)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs = 0
        real = ort.InferenceSession.run

        def run(session, *args, **kwargs):
            self.runs += 1
            return real(session, *args, **kwargs)

        monkeypatch.setattr(ort.InferenceSession, "run", run)


@pytest.mark.parametrize(
    ("text", "dims"), [("1x512", (1, 512)), ("2,1,128", (2, 1, 128)), ("", ()), ([3, 4], (3, 4)), ("7", (7,))]
)
def test_parse_shape(text, dims) -> None:
    assert parse_shape("k", text) == dims


@pytest.mark.parametrize("bad", ["1x", "ax2", "0x4", "1x-2", [1.5], "1 by 2", None])
def test_parse_shape_refuses_with_the_key(bad) -> None:
    with pytest.raises(ConfigError, match=r"^shapes\.x: expected"):
        parse_shape("shapes.x", bad)


def test_parse_shape_items() -> None:
    assert parse_shape_items(["input=1x512", " state = 2x1x128"]) == {"input": (1, 512), "state": (2, 1, 128)}
    with pytest.raises(ConfigError, match="--shape: expected NAME=DIMS"):
        parse_shape_items(["1x512"])


def test_declared_shape_binds_dynamic_dims_without_running(dyn, monkeypatch) -> None:
    calls = CountingSession(monkeypatch)
    m = load_model(dyn["scale"], shapes={"x": "3x4"})
    assert m.inputs[0].shape == (3, 4) and m.input_buffers[0].shape == (3, 4)
    assert m.outputs[0].shape == (-1, 4) and m.outputs_pending  # not known before a real run
    assert m.report.warmup_runs == 0 and m.report.first_run_ms is None and calls.runs == 0
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (y,) = m.run(x)
    assert not m.outputs_pending and m.outputs[0].shape == (3, 4)
    np.testing.assert_array_equal(y, 2 * x)
    buf = m.output_buffers[0]
    (y2,) = m.run(x + 1)  # the adopted buffer is bound: the same array is written again
    assert y2 is buf and m.rebinds == 0
    np.testing.assert_array_equal(y2, 2 * (x + 1))
    assert calls.runs == 0


def test_dynamic_dim_without_shape_is_one_and_warmup_only_when_asked(dyn, monkeypatch) -> None:
    m = load_model(dyn["scale"])
    assert m.inputs[0].shape == (1, 4) and m.report.warmup_runs == 0
    asked = load_model(dyn["scale"], shapes={"x": (2, 4)}, warmup=2)
    assert asked.report.warmup_runs == 2 and asked.outputs[0].shape == (2, 4)


def test_static_model_keeps_its_default_warmup(model_dir) -> None:
    assert load_model(model_dir / "float.onnx").report.warmup_runs == 3


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"nope": "1x4"}, r"shapes\.nope: expected one of the model's inputs \(x\[batchx4\] float32\)"),
        ({"x": "4"}, r"shapes\.x: expected 2 dimension\(s\) .*x\[batchx4\] float32.*got 4$"),
        ({"x": "2x5"}, r"shapes\.x: dimension 1 is fixed at 4 .*x\[batchx4\] float32.*got 2x5$"),
    ],
)
def test_shapes_that_do_not_fit_are_refused_with_the_real_specs(dyn, shapes, message) -> None:
    with pytest.raises(ShapeError, match=message):
        load_model(dyn["scale"], shapes=shapes)


def test_shapes_that_do_not_parse_are_refused_with_the_key(dyn) -> None:
    with pytest.raises(ConfigError, match=r"shapes\.x: expected a shape"):
        load_model(dyn["scale"], shapes={"x": "2xx"})


def test_tflite_shapes_are_checked_too(model_dir) -> None:
    spec = load_model(model_dir / "int8.tflite", warmup=0).inputs[0]
    with pytest.raises(ShapeError, match=rf"shapes\.{spec.name}: expected {len(spec.shape)} dimension"):
        load_model(model_dir / "int8.tflite", shapes={spec.name: "1x2"})


def test_runtime_failure_is_the_model_rejecting_its_input(dyn) -> None:
    m = load_model(dyn["reshape3"], shapes={"x": "4"})
    with pytest.raises(ModelError) as err:
        m.run()
    msg = str(err.value)
    assert "the model rejected its input (x[4] float32)" in msg
    assert "corrupt" not in msg and "truncated" not in msg
    ok = load_model(dyn["reshape3"], shapes={"x": "6"})
    (y,) = ok.run(np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(y, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_a_file_that_does_not_parse_is_still_corrupt(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model" * 4)
    with pytest.raises(ModelError, match="corrupt"):
        load_model(bad)


def test_data_dependent_output_is_rebound_when_its_shape_changes(dyn) -> None:
    m = load_model(dyn["nonzero"])
    (idx,) = m.run(np.array([0, 1, 0, 2], np.float32))
    np.testing.assert_array_equal(idx, [[1, 3]])
    first = m.output_buffers
    (idx,) = m.run(np.array([5, 0, 0, 0], np.float32))  # another count: another shape
    np.testing.assert_array_equal(idx, [[0]])
    assert m.rebinds == 1 and m.output_buffers is not first and m.outputs[0].shape == (1, 1)
    (idx,) = m.run(np.array([0, 0, 0, 9], np.float32))  # same shape: the bound buffer is reused
    np.testing.assert_array_equal(idx, [[3]])
    assert m.rebinds == 1


def test_inspect_reads_the_graph_only(dyn, monkeypatch) -> None:
    def no_session(*a, **k):
        raise AssertionError("inspect created an inference session")

    monkeypatch.setattr(ort, "InferenceSession", no_session)
    info = inspect_path(dyn["scale"])
    assert info["inputs"] == [{"name": "x", "shape": ["batch", 4], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "y", "shape": ["batch", 4], "dtype": "float32"}]
    fixed = inspect_path(dyn["scale"], shapes={"x": (5, 4)})
    assert fixed["inputs"][0]["shape"] == [5, 4]
    with pytest.raises(ShapeError, match=r"--shape x: dimension 1 is fixed at 4"):
        inspect_path(dyn["scale"], shapes={"x": (5, 3)})


def test_inspect_tflite_matches_the_interpreter(model_dir) -> None:
    m = load_model(model_dir / "int8.tflite", warmup=0)
    info = inspect_path(model_dir / "int8.tflite")
    assert info["inputs"] == [s.to_dict() for s in m.inputs]
    assert info["outputs"] == [s.to_dict() for s in m.outputs]


def test_cli_shape_on_inspect_and_bench(dyn, capsys) -> None:
    assert main(["model", "inspect", str(dyn["scale"]), "--shape", "x=2x4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"][0]["shape"] == [2, 4]
    assert main(["bench", str(dyn["scale"]), "--shape", "x=8x4", "--runs", "20", "--warmup", "2", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["runs"] == 20
    assert main(["model", "inspect", str(dyn["scale"]), "--shape", "x=8x5"]) == 2
    assert "--shape x: dimension 1 is fixed at 4" in capsys.readouterr().err
    assert main(["bench", str(dyn["scale"]), "--shape", "x=1x"]) != 0
    assert "--shape x: expected a shape" in capsys.readouterr().err


def test_bench_value_gives_a_constant_input(dyn, capsys) -> None:
    args = ["bench", str(dyn["reshape3"]), "--shape", "x=6", "--runs", "10", "--warmup", "2", "--json"]
    assert main([*args, "--value", "x=1.5"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["first_run_ms"] > 0  # loaded without warm-up: the first benchmark run is reported
    assert main([*args, "--value", "y=1"]) == 2
    assert "--value y: expected one of the model's inputs (x[6] float32)" in capsys.readouterr().err
    assert main([*args, "--value", "x=abc"]) == 2
    assert "--value: expected NAME=NUMBER" in capsys.readouterr().err
