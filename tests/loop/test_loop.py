"""The loop's frame path in lockstep: decisions equal an independent numpy + onnxruntime computation, the frame
record is filled every frame, the schedule is absolute and skips ahead on overruns."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ACTIONS, PERIOD_NS
from loop_helpers import SlowModel

from edge.contracts import DEADLINE_MISS, FALLBACK, STAGES, Health
from edge.errors import ConfigError, ShapeError
from edge.loop.clock import LockstepClock
from edge.loop.health import FallbackConfig
from edge.loop.policy import ClassificationPolicy
from edge.loop.runner import Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.models import load_model


def _reference_decision(model_path, frame: np.ndarray, scale: float, zp: int) -> tuple[int, float]:
    """Hand-written path: quantize v/255 with the input's scale/zero point, NCHW, session.run, softmax, argmax."""
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    q = np.clip(np.rint(frame.astype(np.float64) / 255.0 / scale) + zp, 0, 255).astype(np.uint8)
    x = q.transpose(2, 0, 1)[None]
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return int(np.argmax(p)), float(p.max())


def test_decisions_match_a_hand_written_numpy_and_onnxruntime_path(harness, loop_models, rng) -> None:
    model = load_model(loop_models["v1_pkg"], threads=1)
    spec = model.inputs[0]
    h = harness(model, sensors=[SensorSlot("camera", (32, 32, 3), stale_ns=25_000_000)])
    frames = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    for f in frames:
        d = h.push_step(f)
        want_cls, want_conf = _reference_decision(loop_models["v1"], f, spec.scale, spec.zero_point)
        assert (d.action, d.label, d.fallback, d.health) == (want_cls, ACTIONS[want_cls], False, Health.OK)
        assert d.confidence == pytest.approx(want_conf, abs=2e-3)


def test_frame_record_and_decision_are_filled_every_frame(harness, v1_model, frames) -> None:
    h = harness(v1_model)
    for i in range(5):
        h.push_step(frames[i])
    tap, ctx = h.tap, h.loop.ctx
    assert tap.n == 5 and tap.seq[:5].tolist() == [0, 1, 2, 3, 4]
    assert len(tap.binds) == 1 and tap.binds[0][0] == "cnn@v1.0"
    for i in range(5):  # stats: per-channel mean and population std of the frame, in pixel units
        want = np.stack([frames[i].reshape(-1, 3).mean(0), frames[i].reshape(-1, 3).std(0)])
        np.testing.assert_allclose(tap.stats[i], want, rtol=1e-9)
    assert ctx.tick_ns == 4 * PERIOD_NS and ctx.capture_ns == 4 * PERIOD_NS
    assert ctx.decision is h.loop.decision and ctx.outputs == v1_model.output_buffers
    assert ctx.frame is not None and np.array_equal(ctx.frame, frames[4])
    assert ctx.stage_us.shape == (len(STAGES),) and ctx.model_version == "cnn@v1.0"
    assert [d["seq"] for d in h.decisions] == [0, 1, 2, 3, 4]
    assert [d["tick_ns"] for d in h.decisions] == [i * PERIOD_NS for i in range(5)]


def test_schedule_is_absolute_and_an_overrun_skips_ahead_without_bursting(harness, v1_model, frames) -> None:
    clock = LockstepClock()
    slow = SlowModel(v1_model, clock, 0)
    h = harness(slow, clock=clock)
    slow.cost_ns = 3_000_000  # 3 ms of a 10 ms period: on time
    for i in range(3):
        h.push_step(frames[i])
    assert [d["tick_ns"] for d in h.decisions] == [0, 10_000_000, 20_000_000] and h.loop.overruns == 0
    slow.cost_ns = 25_000_000  # this frame ends at 55 ms: the 40 and 50 ms ticks are skipped
    h.push_step(frames[3])
    assert h.loop.overruns == 2 and h.loop.schedule.next_ns == 60_000_000
    assert h.decisions[-1]["flags"] & DEADLINE_MISS and h.decisions[-1]["flags"] & FALLBACK
    slow.cost_ns = 3_000_000
    h.push_step(frames[4])
    assert h.decisions[-1]["tick_ns"] == 60_000_000 and h.loop.overruns == 2
    assert h.loop.ctx.deadline_misses == 1


def test_bad_construction_is_refused_with_the_key_named(v1_model) -> None:
    with pytest.raises(ConfigError, match=r"policy\.actions: expected 10 names"):
        Loop(v1_model, ClassificationPolicy(["a", "b"]), [SensorSlot("camera", (48, 64, 3))])
    with pytest.raises(ConfigError, match=r"timing\.rate_hz: expected a number > 0, got 0"):
        Loop(v1_model, ClassificationPolicy(ACTIONS), [SensorSlot("camera", (48, 64, 3))], timing=Timing(rate_hz=0))
    with pytest.raises(ConfigError, match=r"uint8 \(H, W, channels\) camera"):
        Loop(v1_model, ClassificationPolicy(ACTIONS), [SensorSlot("camera", (48, 64), np.float32)])
    with pytest.raises(ConfigError, match=r"fallback\.safe_action: expected one of"):
        Loop(
            v1_model,
            ClassificationPolicy(ACTIONS),
            [SensorSlot("camera", (48, 64, 3))],
            fallback=FallbackConfig(safe_action="brake"),
        )


def test_push_copies_and_a_held_view_never_changes(rng) -> None:
    slot = SensorSlot("camera", (4, 4, 3))
    a, b, c = (rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(3))
    slot.push(a, 5)
    view = slot.latest()
    a[...] = 0  # the slot copied it
    assert slot.capture_ns == 5 and not view.flags.writeable
    kept = view.copy()
    slot.push(b, 6)
    slot.push(c, 7)  # two pushes while the reader holds its view: the view is untouched
    np.testing.assert_array_equal(view, kept)
    np.testing.assert_array_equal(slot.latest(), c)
    assert slot.capture_ns == 7 and slot.seq == 3
    with pytest.raises(ShapeError, match=r"expected shape \(4, 4, 3\), got \(4, 3, 3\)"):
        slot.push(np.zeros((4, 3, 3), np.uint8), 8)
    with pytest.raises(ShapeError, match="expected uint8 values, got float64"):
        slot.push(np.zeros((4, 4, 3)), 8)


def test_schedule_starts_at_the_first_frame_not_at_construction(v1_model, frames) -> None:
    clock = LockstepClock()
    camera = SensorSlot("camera", (48, 64, 3))
    loop = Loop(v1_model, ClassificationPolicy(ACTIONS), [camera], clock=clock, timing=Timing(rate_hz=100))
    clock.advance(1_000_000_000)  # a second of set-up (receivers, shadow, ...) after the loop was built
    camera.push(frames[0], clock.now_ns())
    d = loop.step()
    assert d.tick_ns == 1_000_000_000 and not d.flags and loop.overruns == 0
    assert loop.step().tick_ns == 1_010_000_000
    loop.close()


def test_a_stop_before_run_is_kept_and_consumed(harness, v1_model) -> None:
    # edge run's SIGTERM handler may fire while the service is still starting: run() must return at once, not lose it
    h = harness(v1_model)
    h.loop.stop()
    h.loop.run(max_frames=5)
    assert h.decisions == []
    h.loop.run(max_frames=3)  # the request was consumed when run() returned
    assert len(h.decisions) == 3
