"""Each fault kind yields a fallback decision within one period; hold-last for up to N frames, then safe stop;
health OK → DEGRADED → SAFE_STOP with reasons, and recovery after M good frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PERIOD_NS
from loop_helpers import FailingModel, SlowModel

from edge.contracts import DEADLINE_MISS, FALLBACK, INVALID_SENSOR, MODEL_FAULT, STALE_SENSOR, Health
from edge.errors import ConfigError
from edge.loop.clock import LockstepClock
from edge.loop.health import FallbackConfig
from edge.loop.policy import ClassificationPolicy, RegressionPolicy
from edge.loop.runner import Inputs, Loop, Timing
from edge.loop.sensors import SensorSlot, SensorSync
from edge.models import load_model


def _good_then(h, frames, n_good: int = 3):
    for i in range(n_good):
        d = h.push_step(frames[i])
        assert not d.fallback and d.health == Health.OK
    return h.decisions[-1]


def test_stale_sensor_falls_back_in_the_frame_it_goes_stale(harness, v1_model, frames) -> None:
    h = harness(v1_model, stale_ns=25_000_000)
    last = _good_then(h, frames)
    # no new capture after the one at 20 ms: 10 and 20 ms old at the 30 and 40 ms ticks, within 25 ms
    h.loop.step()
    h.loop.step()
    assert [d["fallback"] for d in h.decisions[-2:]] == [False, False]
    d = h.loop.step()  # tick 50 ms: capture is 30 ms old > 25 ms
    assert d.tick_ns == 5 * PERIOD_NS and d.flags & STALE_SENSOR and d.flags & FALLBACK
    assert d.health == Health.DEGRADED and d.label == last["label"]  # holds the last good decision


def test_missing_sensor_is_stale_and_safe_stops_with_nothing_to_hold(harness, v1_model) -> None:
    h = harness(v1_model)
    d = h.loop.step()
    assert d.flags & STALE_SENSOR and d.health == Health.SAFE_STOP and d.label == "a0" and d.fallback


def test_frozen_camera_is_invalid_after_k_identical_captures(harness, v1_model, frames) -> None:
    h = harness(v1_model, frozen=3)
    _good_then(h, frames, 2)
    flags = [h.push_step(frames[7]).flags for _ in range(5)]  # first capture, then identical ones
    assert [bool(f & INVALID_SENSOR) for f in flags] == [False, False, False, True, True]
    assert h.push_step(frames[8]).flags == 0 and h.loop.health.state == Health.DEGRADED


def test_nan_and_out_of_range_aux_sensor_are_invalid(harness, v1_model, frames) -> None:
    camera = SensorSlot("camera", (48, 64, 3), stale_ns=25_000_000)
    speed = SensorSlot("speed", (2,), np.float32, lo=-5.0, hi=30.0)
    h = harness(v1_model, sensors=[camera, speed])
    for value, invalid in (([1.0, 2.0], False), ([np.nan, 2.0], True), ([1.0, 31.0], True), ([-6.0, 0.0], True)):
        speed.push(np.array(value, np.float32), h.loop.schedule.next_ns)
        d = h.push_step(frames[0])
        assert bool(d.flags & INVALID_SENSOR) == invalid and d.fallback == invalid, value


def test_approximate_sync_flags_a_skewed_sensor(harness, v1_model, frames) -> None:
    camera = SensorSlot("camera", (48, 64, 3))
    lidar = SensorSlot("lidar", (8,), np.float32)
    h = harness(v1_model, sensors=[camera, lidar], inputs=Inputs(sync=SensorSync("approximate", max_skew_ns=5_000_000)))
    lidar.push(np.zeros(8, np.float32), 0)
    assert h.push_step(frames[0]).flags == 0  # both captured at 0
    lidar.push(np.zeros(8, np.float32), 4_000_000)
    assert h.push_step(frames[1]).flags & STALE_SENSOR  # camera at 10 ms, lidar at 4 ms: 6 ms apart


def test_model_exception_holds_then_safe_stops_then_recovers(harness, v1_model, frames) -> None:
    faulty = FailingModel(v1_model, fail_on={3, 4, 5, 6})
    h = harness(faulty, fallback=FallbackConfig(hold_frames=2, recover_frames=3, safe_action="a0"))
    last = _good_then(h, frames)
    out = [h.push_step(frames[3 + i]).snapshot() for i in range(8)]
    want = ["DEGRADED", "DEGRADED", "SAFE_STOP", "SAFE_STOP", "SAFE_STOP", "SAFE_STOP", "OK", "OK"]
    assert [d["health"] for d in out] == want
    assert [d["label"] for d in out[:2]] == [last["label"]] * 2  # hold last
    assert [d["label"] for d in out[2:6]] == ["a0"] * 4  # safe stop, kept until 3 good frames
    assert all(d["flags"] & MODEL_FAULT for d in out[:4]) and not any(d["flags"] & MODEL_FAULT for d in out[4:])
    assert [d["fallback"] for d in out] == [True] * 6 + [False] * 2
    health = [f for k, f in h.tap.events if k == "health"]
    assert [(e["from"], e["to"]) for e in health] == [
        ("OK", "DEGRADED"),
        ("DEGRADED", "SAFE_STOP"),
        ("SAFE_STOP", "OK"),
    ]
    assert health[0]["reasons"] == ["model_fault"] and h.loop.model_errors == 4
    assert h.loop.ctx.fallbacks == 6


def test_deadline_miss_falls_back_in_the_same_frame(harness, v1_model, frames) -> None:
    clock = LockstepClock()
    slow = SlowModel(v1_model, clock, 0)
    h = harness(slow, clock=clock)  # the model charges its time to the loop's clock
    _good_then(h, frames)
    slow.cost_ns = 12_000_000  # > the 10 ms deadline
    d = h.push_step(frames[4])
    assert d.flags & DEADLINE_MISS and d.fallback and d.health == Health.DEGRADED
    assert d.stage_us[2] == pytest.approx(12_000.0) and d.stage_us[5] == pytest.approx(12_000.0)


def test_non_finite_model_outputs_are_a_model_fault(harness, loop_models, rng) -> None:
    # command = sqrt([4*m0 - 2, m1]): NaN while the red mean is below half scale
    model = load_model(loop_models["regress_sqrt"], threads=1)
    policy = RegressionPolicy(2)
    h = harness(model, policy=policy, fallback=FallbackConfig(hold_frames=1, recover_frames=1))
    bright = np.full((48, 64, 3), 255, np.uint8)
    dark = np.zeros((48, 64, 3), np.uint8)
    d = h.push_step(bright)
    np.testing.assert_allclose(d.command, [np.sqrt(2.0), 1.0], rtol=1e-6)
    d = h.push_step(dark)
    assert d.flags & MODEL_FAULT and d.fallback and d.health == Health.DEGRADED
    np.testing.assert_allclose(d.command, [np.sqrt(2.0), 1.0], rtol=1e-6)  # held
    d = h.push_step(dark)
    assert d.health == Health.SAFE_STOP and d.command.tolist() == [0.0, 0.0]


def test_regression_policy_clamps_and_rate_limits(harness, loop_models) -> None:
    model = load_model(loop_models["regress"], threads=1)  # command = [4*m0 - 2, m1], m = channel mean / 255
    policy = RegressionPolicy(2, lo=[-1.0, 0.0], hi=[1.5, 0.5], max_rate=[50.0, 100.0], rate_hz=100)
    h = harness(model, policy=policy, fallback=FallbackConfig())
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0], frame[..., 1] = 255, 204  # target [2.0, 0.8]
    steps = [h.push_step(frame).command.tolist() for _ in range(4)]
    # per frame at most 0.5 and 1.0; then clamped to [-1, 1.5] and [0, 0.5]
    assert steps == [[0.5, 0.5], [1.0, 0.5], [1.5, 0.5], [1.5, 0.5]]


def test_stage_budgets_are_counted_and_flagged_without_a_fallback(harness, v1_model, frames) -> None:
    clock = LockstepClock()
    slow = SlowModel(v1_model, clock, 2_000_000)
    h = harness(slow, clock=clock, stage_budgets_us={"infer": 3_000.0, "total": 8_000.0})
    assert not h.push_step(frames[0]).flags
    slow.cost_ns = 4_000_000  # infer over its 3 ms budget, the frame well within its 10 ms deadline
    d = h.push_step(frames[1])
    assert d.flags == DEADLINE_MISS and not d.fallback and d.health == Health.OK
    assert h.loop.budgets.overruns.tolist() == [0, 0, 1, 0, 0, 0] and h.loop.ctx.deadline_misses == 0
    slow.cost_ns = 9_000_000  # infer and total over budget
    h.push_step(frames[2])
    assert h.loop.budgets.overruns.tolist() == [0, 0, 2, 0, 0, 1]


def test_unknown_stage_budget_is_refused(v1_model) -> None:
    with pytest.raises(ConfigError, match=r"loop\.budgets_ms\.render: expected a stage in"):
        Loop(
            v1_model,
            ClassificationPolicy([f"a{i}" for i in range(10)]),
            [SensorSlot("camera", (48, 64, 3))],
            timing=Timing(stage_budgets_us={"render": 1.0}),
        )
