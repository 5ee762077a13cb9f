"""A stateful model fed by a non-image sensor allocates nothing per frame in the loop (tracemalloc over thousands
of frames, as tests/loop/test_allocation.py does for the camera models): the vector feed, the constant input and
the state carry all write into buffers bound once."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_allocation import Counter, _check, _measure

sys.path.append(str(Path(__file__).resolve().parents[1] / "models"))  # dynamic_models.py
from dynamic_models import accumulator_onnx, silero_vad_path

from edge import kernels
from edge.loop.clock import LockstepClock
from edge.loop.feeds import InputBinding
from edge.loop.policy import RegressionPolicy
from edge.loop.runner import Inputs, Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.loop.sinks import CallableSink
from edge.models import load_model

pytestmark = pytest.mark.skipif(
    kernels.BACKEND != "native",
    reason="the NumPy twins (EDGE_PUREPYTHON=1) allocate temporaries by nature; the claim is for the native kernels",
)


def _run(model, slot: SensorSlot, bindings: dict[str, InputBinding], values: np.ndarray, state: str) -> None:
    counter = Counter()
    loop = Loop(
        model,
        RegressionPolicy(1),
        [slot],
        clock=LockstepClock(),
        timing=Timing(rate_hz=100),
        inputs=Inputs(bindings=bindings),
        sinks=[CallableSink(counter.deliver)],
        taps=[counter],
    )
    i = [0]

    def step() -> None:
        k = i[0] = (i[0] + 1) % len(values)
        slot.push(values[k], loop.schedule.next_ns)
        loop.step()

    with loop:
        net1, peak1, net2, peak2 = _measure(step)
        assert loop.ctx.fallbacks == 0 and loop.model_errors == 0 and loop.overruns == 0
        carried = model.input_buffers[[s.name for s in model.inputs].index(state)]
        assert model.state is not None and carried.any()  # the state was carried
    _check(net1, peak1, net2, peak2)


def test_stateful_vector_model_frames_allocate_nothing(tmp_path, rng) -> None:
    model = load_model(
        accumulator_onnx(tmp_path / "acc.onnx"),
        shapes={"x": "1x16", "state": "1x16"},
        state={"state_out": "state"},
        threads=1,
    )
    values = (rng.standard_normal((64, 16)) * 1e-3).astype(np.float32)
    bindings = {"x": InputBinding(sensor="imu", scale=0.5, offset=0.0), "gain": InputBinding(value=1.0)}
    _run(model, SensorSlot("imu", (16,), np.float32), bindings, values, "state")


@pytest.mark.skipif(silero_vad_path() is None, reason="the silero-vad wheel is not installed")
def test_silero_vad_frames_allocate_nothing(rng) -> None:
    model = load_model(
        silero_vad_path(),
        shapes={"input": "1x576", "state": "2x1x128"},
        state={"stateN": "state"},
        threads=1,
    )
    values = rng.integers(-3000, 3000, (64, 576)).astype(np.int16)
    bindings = {"input": InputBinding(sensor="mic", scale=1 / 32768), "sr": InputBinding(value=16000)}
    _run(model, SensorSlot("mic", (576,), np.int16), bindings, values, "state")
