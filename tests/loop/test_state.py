"""Stateful models in the loop: ``[model.state]`` carried every frame, reset on start, swap, rollback, fallback and
on request; a shadow candidate keeps its own state; bad mappings refused at load with the key and the real specs.

The model is an accumulator built in code (``y = state + gain * x``, ``state_out = y``): with the state carried,
``y`` is the running sum of ``gain * x``, computed here by hand with numpy.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "models"))  # dynamic_models.py
from dynamic_models import accumulator_onnx

from edge.contracts import FALLBACK
from edge.errors import ConfigError, ModelError, ShapeError
from edge.loop.clock import LockstepClock
from edge.loop.feeds import InputBinding
from edge.loop.health import FallbackConfig
from edge.loop.policy import CallablePolicy
from edge.loop.runner import Inputs, Loop, SwapSettings, Timing
from edge.loop.sensors import SensorSlot
from edge.models import load_model

N = 3
GAIN = 0.5
SCALE, OFFSET = 2.0, 1.0
OPTIONS = {"shapes": {"x": f"1x{N}", "state": f"1x{N}"}, "state": {"state_out": "state"}, "threads": 1}
PERIOD_NS = 10_000_000


@pytest.fixture(scope="module")
def acc_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return accumulator_onnx(tmp_path_factory.mktemp("state") / "acc.onnx")


def _policy() -> CallablePolicy:
    def copy_y(outputs, decision) -> bool:
        np.copyto(decision.command, outputs[0][0])
        return bool(np.isfinite(decision.command).all())  # False: invalid outputs (a model fault)

    return CallablePolicy(copy_y, command_size=N)


def _loop(model, *, stale_ms: float | None = None, swap_options: dict | None = None) -> Loop:
    mic = SensorSlot("imu", (N,), np.float32, stale_ns=None if stale_ms is None else int(stale_ms * 1e6))
    return Loop(
        model,
        _policy(),
        [mic],
        clock=LockstepClock(),
        timing=Timing(rate_hz=1e9 / PERIOD_NS, start_ns=0),
        inputs=Inputs(
            bindings={"x": InputBinding(sensor="imu", scale=SCALE, offset=OFFSET), "gain": InputBinding(value=GAIN)}
        ),
        fallback=FallbackConfig(hold_frames=1, recover_frames=1),
        swap=SwapSettings(failure_frames=2, probation_frames=2, load_options=swap_options or OPTIONS),
    )


def _push_step(loop: Loop, x: np.ndarray) -> np.ndarray:
    loop.slot("imu").push(x, loop.schedule.next_ns)
    d = loop.step()
    assert not d.fallback, d.snapshot()
    return d.command.copy()


def _contribution(x: np.ndarray) -> np.ndarray:
    return GAIN * (x.astype(np.float32) * np.float32(SCALE) + np.float32(OFFSET))


def test_model_run_carries_the_state_and_reset_state_clears_it(acc_path, rng) -> None:
    m = load_model(acc_path, **OPTIONS)
    gain = np.array(GAIN, np.float32)
    total = np.zeros((1, N), np.float32)
    for _ in range(5):
        x = rng.standard_normal((1, N)).astype(np.float32)
        y, state_out = m.run(x, gain, m.input_buffers[2])
        total = total + GAIN * x
        np.testing.assert_allclose(y, total, rtol=1e-6)
        np.testing.assert_array_equal(m.input_buffers[2], state_out)  # carried into the input for the next run
    m.reset_state()
    assert not m.input_buffers[2].any()


def test_loop_carries_state_every_frame(acc_path, rng) -> None:
    with _loop(acc_path) as loop:
        total = np.zeros(N, np.float32)
        for _ in range(20):
            x = rng.standard_normal(N).astype(np.float32)
            total = total + _contribution(x)
            np.testing.assert_allclose(_push_step(loop, x), total, rtol=1e-5)


def test_reset_on_request(acc_path, rng) -> None:
    with _loop(acc_path) as loop:
        for _ in range(4):
            _push_step(loop, rng.standard_normal(N).astype(np.float32))
        loop.reset_state()
        x = rng.standard_normal(N).astype(np.float32)
        np.testing.assert_allclose(_push_step(loop, x), _contribution(x), rtol=1e-6)


def test_reset_on_fallback(acc_path, rng) -> None:
    with _loop(acc_path, stale_ms=15) as loop:
        for _ in range(3):
            _push_step(loop, rng.standard_normal(N).astype(np.float32))
        loop.step()  # no new value: still fresh (within 15 ms)
        d = loop.step()  # stale now: a fallback frame
        assert d.fallback and d.flags & FALLBACK
        resets = loop.state_resets
        x = rng.standard_normal(N).astype(np.float32)
        loop.slot("imu").push(x, loop.schedule.next_ns)
        d = loop.step()
        assert loop.state_resets == resets and not d.fallback
        np.testing.assert_allclose(d.command, _contribution(x), rtol=1e-6)


def test_reset_on_hot_swap(acc_path, rng) -> None:
    with _loop(acc_path) as loop:
        for _ in range(4):
            _push_step(loop, rng.standard_normal(N).astype(np.float32))
        ticket = loop.swap(acc_path)
        assert ticket.wait_ready(30) == "staged"
        x = rng.standard_normal(N).astype(np.float32)
        got = _push_step(loop, x)  # adopted before this frame: it starts from a fresh state
        assert ticket.state == "adopted"
        np.testing.assert_allclose(got, _contribution(x), rtol=1e-6)


def test_reset_on_rollback(acc_path, tmp_path, rng) -> None:
    broken = accumulator_onnx(tmp_path / "broken.onnx", broken=True)
    with _loop(acc_path) as loop:
        for _ in range(4):
            _push_step(loop, rng.standard_normal(N).astype(np.float32))
        first = loop.stage
        ticket = loop.swap(broken)
        assert ticket.wait_ready(30) == "staged"
        for _ in range(2):  # swap.failure_frames = 2 failed frames on the broken model
            loop.slot("imu").push(np.ones(N, np.float32), loop.schedule.next_ns)
            assert loop.step().fallback
        assert ticket.state == "rolled_back" and loop.stage is first
        x = rng.standard_normal(N).astype(np.float32)
        got = _push_step(loop, x)  # the restored model started over from a fresh state
        np.testing.assert_allclose(got, _contribution(x), rtol=1e-6)


def test_shadow_keeps_its_own_state(acc_path, rng) -> None:
    with _loop(acc_path) as loop:
        shadow = loop.start_shadow(acc_path, every=1, mode="tolerance", tolerance=1e-4)
        total = np.zeros(N, np.float32)
        for i in range(6):
            x = rng.standard_normal(N).astype(np.float32)
            total = total + _contribution(x)
            _push_step(loop, x)
            deadline = time.monotonic() + 10
            while loop.ctx.shadow_compared < i + 1 and time.monotonic() < deadline:
                time.sleep(0.001)  # waits on the shadow worker's count, with a timeout
            assert loop.ctx.shadow_compared == i + 1
        assert loop.ctx.shadow_agreed == 6 and shadow.errors == 0  # the same sums: its state was carried too
        loop.reset_state()
        _push_step(loop, np.zeros(N, np.float32))
        np.testing.assert_allclose(shadow.candidate.input_buffers[2][0], total, rtol=1e-5)  # not reset with the live


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        ({"nope": "state"}, ConfigError, r"state\.nope: expected one of the model's outputs \(y\[1x-1\] float32"),
        ({"state_out": "nope"}, ConfigError, r"state\.state_out: expected one of the model's inputs \(x\[1x3\]"),
        ({"state_out": "gain"}, ShapeError, r"state\.state_out: expected output state_out\[1x-1\] float32 to match "),
    ],
)
def test_bad_state_mapping_is_refused_at_load(acc_path, state, error, message) -> None:
    with pytest.raises(error, match=message):
        load_model(acc_path, shapes=OPTIONS["shapes"], state=state)


def test_a_model_that_rejects_its_input_is_a_model_fault_in_the_loop(acc_path) -> None:
    """x is 1x3 and state 1x4: onnxruntime refuses the Add at run time; the loop falls back and keeps going."""
    bad = {**OPTIONS, "shapes": {"x": "1x3", "state": "1x4"}}
    m = load_model(acc_path, **bad)
    with pytest.raises(
        ModelError, match=r"the model rejected its input \(x\[1x3\] float32, gain\[\] float32, state\[1x4\]"
    ):
        m.run()
    with _loop(m, swap_options=bad) as loop:
        loop.slot("imu").push(np.ones(N, np.float32), 0)
        d = loop.step()
        assert d.fallback and loop.model_errors == 1
