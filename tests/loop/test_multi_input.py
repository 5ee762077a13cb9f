"""Multi-input models and non-image sensors: a camera through the preprocessing kernel, an IMU window through its
declared ``scale``/``offset``, a constant from the config — each into its own model input; drift stats from vector
inputs; every bad binding refused at build with the key and the model's input specs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.append(str(Path(__file__).resolve().parents[1] / "models"))  # dynamic_models.py
from dynamic_models import accumulator_onnx

from edge.errors import ConfigError
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config
from edge.loop.feeds import InputBinding
from edge.loop.policy import CallablePolicy
from edge.loop.runner import Inputs, Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.models import load_model
from edge.tooling.model_builders import IR_VERSION, OPSET

IMU_SCALE, IMU_OFFSET, K = 0.01, -1.0, 3.0


def fusion_onnx(path: Path) -> Path:
    """``image[1x3x4x4] float32``, ``imu[1x6] float32``, ``k`` (float32 scalar) → ``out[1x2] = [mean(image),
    k * sum(imu)]``."""
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("ReduceMean", ["flat"], ["m"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["imu", "k"], ["kimu"]),
            helper.make_node("ReduceSum", ["kimu", "axes"], ["s"], keepdims=1),
            helper.make_node("Concat", ["m", "s"], ["out"], axis=1),
        ],
        "fusion",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4]),
            helper.make_tensor_value_info("imu", TensorProto.FLOAT, [1, 6]),
            helper.make_tensor_value_info("k", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])],
        [axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save_model(model, path)
    return path


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("multi")
    return {"fusion": fusion_onnx(d / "fusion.onnx"), "acc": accumulator_onnx(d / "acc.onnx")}


def _copy_policy(n: int) -> CallablePolicy:
    return CallablePolicy(lambda outputs, d: np.copyto(d.command, outputs[0][0]), command_size=n)


BINDINGS = {
    "imu": InputBinding(sensor="imu", scale=IMU_SCALE, offset=IMU_OFFSET),
    "k": InputBinding(value=K),
    "image": InputBinding(sensor="camera"),
}


def _fusion_loop(path: Path, bindings=BINDINGS) -> Loop:
    return Loop(
        load_model(path, threads=1),
        _copy_policy(2),
        [SensorSlot("camera", (4, 4, 3)), SensorSlot("imu", (6,), np.int16)],
        clock=LockstepClock(),
        timing=Timing(rate_hz=100, start_ns=0),
        inputs=Inputs(bindings=bindings),
    )


def test_camera_imu_and_constant_feed_their_inputs(paths, rng) -> None:
    with _fusion_loop(paths["fusion"]) as loop:
        for _ in range(5):
            frame = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            imu = rng.integers(-300, 300, 6).astype(np.int16)
            t = loop.schedule.next_ns
            loop.slot("camera").push(frame, t)
            loop.slot("imu").push(imu, t)
            d = loop.step()
            assert not d.fallback
            imu_in = imu.astype(np.float32) * np.float32(IMU_SCALE) + np.float32(IMU_OFFSET)
            np.testing.assert_allclose(loop.model.input_buffers[1][0], imu_in, rtol=0, atol=0)
            want = [frame.astype(np.float64).mean() / 255.0, K * imu_in.astype(np.float64).sum()]
            np.testing.assert_allclose(d.command, want, rtol=1e-5, atol=1e-5)
            # the frame record's stats stay the camera's per-channel mean and std (pixel units)
            np.testing.assert_allclose(loop.ctx.stats[0], frame.reshape(-1, 3).mean(0), rtol=1e-9)


def test_vector_primary_gives_drift_stats_per_vector_input(paths, rng) -> None:
    model = load_model(paths["acc"], shapes={"x": "1x8", "state": "1x8"}, threads=1)  # stateless here
    loop = Loop(
        model,
        _copy_policy(8),
        [SensorSlot("scan", (8,), np.float32), SensorSlot("gain", (1,), np.float32)],
        clock=LockstepClock(),
        timing=Timing(rate_hz=100, start_ns=0),
        inputs=Inputs(
            bindings={
                "x": InputBinding(sensor="scan", scale=0.5),
                "gain": InputBinding(sensor="gain"),
                "state": InputBinding(value=0.0),
            }
        ),
    )
    with loop:
        assert loop.ctx.stats.shape == (2, 2)
        scan = rng.standard_normal(8).astype(np.float32) * 4
        t = loop.schedule.next_ns
        loop.slot("scan").push(scan, t)
        loop.slot("gain").push(np.array([2.0], np.float32), t)
        d = loop.step()
        assert not d.fallback
        x = scan * np.float32(0.5)
        np.testing.assert_allclose(d.command, 2.0 * x, rtol=1e-6)
        np.testing.assert_allclose(loop.ctx.stats[:, 0], [x.mean(), x.std()], rtol=1e-5)
        np.testing.assert_allclose(loop.ctx.stats[:, 1], [2.0, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    ("bindings", "message"),
    [
        (
            {"image": BINDINGS["image"], "imu": BINDINGS["imu"]},
            r"model\.inputs: expected a binding for every model input, got none for k\[\] float32 \(inputs: "
            r"image\[1x3x4x4\] float32, imu\[1x6\] float32, k\[\] float32\)",
        ),
        ({**BINDINGS, "nope": InputBinding(value=1)}, r"model\.inputs\.nope: expected one of the model's inputs \("),
        ({**BINDINGS, "imu": InputBinding(sensor="lidar")}, r"model\.inputs\.imu\.sensor: expected one of the sensors"),
        (
            {**BINDINGS, "k": InputBinding(value=[1.0, 2.0])},
            r"model\.inputs\.k\.value: expected a constant that fits k",
        ),
        ({**BINDINGS, "k": InputBinding(sensor="imu", value=1)}, r"model\.inputs\.k: expected exactly one of sensor"),
        ({**BINDINGS, "k": InputBinding(sensor="imu")}, r"model\.inputs\.k\.sensor: expected a sensor with 1 values"),
        ({**BINDINGS, "imu": InputBinding(sensor="imu", scale=float("nan"))}, r"model\.inputs\.imu\.scale"),
    ],
)
def test_bad_bindings_are_refused_with_the_key_and_specs(paths, bindings, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _fusion_loop(paths["fusion"], bindings)


def test_binding_a_state_input_is_refused(paths) -> None:
    model = load_model(paths["acc"], shapes={"x": "1x2", "state": "1x2"}, state={"state_out": "state"})
    with pytest.raises(ConfigError, match=r"model\.inputs\.state: expected an input not carried as state"):
        Loop(
            model,
            _copy_policy(2),
            [SensorSlot("scan", (2,), np.float32)],
            inputs=Inputs(
                bindings={
                    "x": InputBinding(sensor="scan"),
                    "gain": InputBinding(value=1.0),
                    "state": InputBinding(value=0.0),
                }
            ),
        )


def test_an_integer_input_refuses_a_fractional_constant() -> None:
    from edge.contracts import TensorSpec
    from edge.loop.feeds import fill_constant

    spec = TensorSpec("sr", (), np.dtype(np.int64))
    buf = np.zeros((), np.int64)
    fill_constant("model.inputs.sr", spec, buf, 16000)
    assert buf == 16000
    with pytest.raises(ConfigError, match=r"model\.inputs\.sr\.value: expected a constant that fits sr\[\] int64"):
        fill_constant("model.inputs.sr", spec, buf, 16000.5)


CONFIG = """
[loop]
rate_hz = 100
[model]
package = "{model}"
[model.shapes]
x = "{shape}"
[model.inputs.x]
sensor = "{sensor}"
[sensors.scan]
shape = [3]
dtype = "float32"
[policy]
kind = "regression"
"""


@pytest.mark.parametrize(
    ("shape", "sensor", "message"),
    [
        ("1x3", "lidar", r"model\.inputs\.x\.sensor: expected one of the sensors \['scan'\], got 'lidar'"),
        ("1xx3", "scan", r"model\.shapes\.x: expected a shape such as '1x512'"),
    ],
)
def test_config_refuses_bad_inputs_and_shapes_with_the_key(paths, tmp_path, shape, sensor, message) -> None:
    p = tmp_path / "device.toml"
    p.write_text(CONFIG.format(model=paths["acc"], shape=shape, sensor=sensor))
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_config_reads_shapes_state_and_inputs(paths, tmp_path) -> None:
    p = tmp_path / "device.toml"
    text = CONFIG.format(model=paths["acc"], shape="1x3", sensor="scan")
    text += '\n[model.state]\nstate_out = "state"\n[model.inputs.gain]\nvalue = 2\n'
    p.write_text(text.replace('sensor = "scan"', 'sensor = "scan"\nscale = 0.5\noffset = 1'))
    m = load_config(p).model
    assert m.shapes == {"x": (1, 3)} and m.state == {"state_out": "state"}
    assert m.inputs == {"x": InputBinding("scan", 0.5, 1.0), "gain": InputBinding(value=2)}
