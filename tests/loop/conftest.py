"""Loop test fixtures: real models and packages built once per session, a lockstep loop factory, and a guard that
fails a test leaving a thread behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from loop_helpers import RecordingTap, mean_regression_onnx, nan_classifier_onnx

from edge.loop.clock import LockstepClock
from edge.loop.health import FallbackConfig
from edge.loop.policy import ClassificationPolicy
from edge.loop.runner import Loop
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Timing
from edge.loop.sinks import CallableSink
from edge.models import load_model
from edge.models.manage import pack_model
from edge.tooling.model_builders import float_cnn_onnx, u8s8_cnn_onnx

ACTIONS = tuple(f"a{i}" for i in range(10))
FRAME_SHAPE = (48, 64, 3)
PERIOD_NS = 10_000_000  # 100 Hz


@pytest.fixture(scope="session")
def loop_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bare models and packages: ``v1``/``v2`` (U8S8 CNNs, seeds 0 and 5), ``float`` (float CNN), ``nan``
    (a classifier whose logits are NaN), ``regress``/``regress_sqrt`` (mean regression), ``corrupt`` (v1 with a
    flipped model byte)."""
    d = tmp_path_factory.mktemp("loop_models")
    bare = {
        "v1": u8s8_cnn_onnx(d / "v1.onnx", seed=0),
        "v2": u8s8_cnn_onnx(d / "v2.onnx", seed=5),
        "float": float_cnn_onnx(d / "float.onnx"),
        "nan": nan_classifier_onnx(d / "nan.onnx"),
        "regress": mean_regression_onnx(d / "regress.onnx"),
        "regress_sqrt": mean_regression_onnx(d / "regress_sqrt.onnx", sqrt_offset=0.0),
    }
    out = dict(bare)
    for name in ("v1", "v2", "float", "nan"):
        out[f"{name}_pkg"] = pack_model(bare[name], d / f"{name}.tgz", name="cnn", version=f"{name}.0")
    corrupt = pack_model(bare["v1"], d / "corrupt_pkg", name="cnn", version="bad")
    model_file = corrupt / "v1.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    out["corrupt_pkg"] = corrupt
    return out


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (after a generous grace period)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


@pytest.fixture
def zmq_ctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


class Harness:
    """A lockstep loop on a 48×64 RGB camera at 100 Hz with a recording tap and a sink that keeps snapshots."""

    def __init__(self, model: Any, **kw: Any) -> None:
        self.clock = kw.pop("clock", None) or LockstepClock()
        self.tap = RecordingTap()
        self.decisions: list[dict[str, Any]] = []
        sensors = kw.pop("sensors", None) or [
            SensorSlot(
                "camera", FRAME_SHAPE, stale_ns=kw.pop("stale_ns", 25_000_000), frozen_frames=kw.pop("frozen", 0)
            )
        ]
        kw.setdefault("fallback", FallbackConfig(hold_frames=2, recover_frames=3, safe_action="a0"))
        policy = kw.pop("policy", None) or ClassificationPolicy(ACTIONS)
        self.loop = Loop(
            model,
            policy,
            sensors,
            clock=self.clock,
            timing=Timing(rate_hz=100, start_ns=0, stage_budgets_us=kw.pop("stage_budgets_us", None)),
            sinks=[CallableSink(lambda d: self.decisions.append(d.snapshot())), *kw.pop("sinks", [])],
            taps=[self.tap],
            **kw,
        )
        self.camera = self.loop.primary

    def push_step(self, frame: np.ndarray) -> Any:
        """Capture ``frame`` now (at the coming tick) and run that frame."""
        self.camera.push(frame, self.loop.schedule.next_ns)
        return self.loop.step()


@pytest.fixture
def harness(request: pytest.FixtureRequest) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(model: Any, **kw: Any) -> Harness:
        h = Harness(model, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.loop.close()


@pytest.fixture
def frames(rng: np.random.Generator) -> np.ndarray:
    """16 distinct seeded camera frames (uint8, 48×64×3)."""
    return rng.integers(0, 256, (16, *FRAME_SHAPE), dtype=np.uint8)


@pytest.fixture(scope="session")
def v1_model(loop_models: dict[str, Path]) -> Any:
    return load_model(loop_models["v1_pkg"], threads=1)
