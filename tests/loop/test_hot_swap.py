"""The swap/rollback state machine on its own (fake stages, no model), and the groups the Loop takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ACTIONS

from edge.contracts import MODEL_FAULT
from edge.errors import ConfigError
from edge.loop.policy import ClassificationPolicy
from edge.loop.runner import Inputs, Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.loop.swap import HotSwap, SwapSettings

TIMEOUT_S = 60


class Stage:
    def __init__(self, version: str) -> None:
        self.version = version


class Recorder:
    """A live stage and the calls the state machine makes back into the loop."""

    def __init__(self, **settings: Any) -> None:
        self.live = Stage("old@1")
        self.stages: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.hot = HotSwap(SwapSettings(**settings), self.set_stage, lambda k, f: self.events.append((k, f)))

    def set_stage(self, stage: Stage) -> None:
        self.live = stage
        self.stages.append(stage.version)

    def staged(self, build: Any) -> Any:
        ticket = self.hot.start(Path("new.tgz"), build)
        ticket.wait_ready(TIMEOUT_S)
        ticket.join(TIMEOUT_S)
        return ticket

    def frames(self, *faults: bool, ran: bool = True) -> None:
        for fault in faults:
            self.hot.between_frames(self.live)
            self.hot.after_frame(ran and not fault, fault)


def test_adopted_between_frames_then_kept_after_probation() -> None:
    r = Recorder(probation_frames=3)
    ticket = r.staged(lambda path: Stage("new@2"))
    assert ticket.state == "staged" and r.stages == []  # nothing changes off the loop thread
    r.hot.between_frames(r.live)
    assert ticket.state == "adopted" and r.stages == ["new@2"] and r.hot.on_probation
    assert r.events == [("swap", {"ok": True, "package": "new.tgz", "from": "old@1", "to": "new@2"})]
    r.hot.after_frame(True, False)
    r.frames(False)
    assert ticket.state == "adopted"
    r.frames(False)
    assert ticket.state == "kept" and ticket.wait(0) == "kept" and not r.hot.on_probation
    r.frames(True, True, True, True)  # faults after the swap is kept roll nothing back
    assert r.stages == ["new@2"] and r.live.version == "new@2"


def test_rolled_back_after_n_consecutive_faults() -> None:
    r = Recorder(failure_frames=3, probation_frames=10)
    ticket = r.staged(lambda path: Stage("bad@2"))
    r.hot.between_frames(r.live)
    r.hot.after_frame(False, True)
    r.frames(True, False, True, True)  # a good frame resets the count: 2 consecutive so far
    assert ticket.state == "adopted" and r.live.version == "bad@2"
    r.frames(True)
    assert ticket.state == "rolled_back" and ticket.error == "3 consecutive failed frames"
    assert r.stages == ["bad@2", "old@1"] and not r.hot.on_probation
    assert r.events[-1] == ("rollback", {"from": "bad@2", "to": "old@1", "failed_frames": 3})
    r.frames(False)  # a new swap may start now
    assert r.staged(lambda path: Stage("new@3")).state == "staged"


def test_frames_the_model_did_not_run_count_for_nothing() -> None:
    r = Recorder(failure_frames=1, probation_frames=1)
    ticket = r.staged(lambda path: Stage("new@2"))
    r.hot.between_frames(r.live)
    r.frames(False, False, ran=False)  # stale sensor: no inference, no fault
    assert ticket.state == "adopted"
    r.frames(False)
    assert ticket.state == "kept"


def test_a_refused_package_leaves_the_running_model() -> None:
    r = Recorder()

    def build(path: Path) -> Stage:
        raise ValueError(f"{path}: sha256 mismatch")

    ticket = r.staged(build)
    assert ticket.state == "refused" and ticket.error == "ValueError: new.tgz: sha256 mismatch"
    r.frames(True, True, True, True)
    assert r.stages == [] and r.live.version == "old@1" and not r.hot.on_probation
    assert r.events == [("swap", {"ok": False, "package": "new.tgz", "error": ticket.error})]


def test_one_swap_at_a_time_until_settled() -> None:
    r = Recorder(probation_frames=2)
    r.staged(lambda path: Stage("new@2"))
    with pytest.raises(ConfigError, match=r"swap: expected no swap in progress, got <SwapTicket new\.tgz staged>"):
        r.hot.start(Path("other.tgz"), lambda path: Stage("x"))
    r.frames(False, False)
    assert r.staged(lambda path: Stage("new@3")).state == "staged"


def test_rollback_restores_the_previous_buffers_in_the_frame_record(harness, v1_model, loop_models, frames) -> None:
    h = harness(v1_model, swap=SwapSettings(failure_frames=2))
    h.push_step(frames[0])
    before = list(h.loop.ctx.outputs)
    assert before[0] is v1_model.output_buffers[0]
    assert h.loop.swap(loop_models["nan_pkg"]).wait_ready(TIMEOUT_S) == "staged"
    h.push_step(frames[1])
    assert h.loop.ctx.outputs[0] is not before[0] and h.loop.ctx.model_version == "cnn@nan.0"
    h.push_step(frames[2])
    assert h.loop.swap_settings.failure_frames == 2 and h.loop.hot_swap.ticket.state == "rolled_back"
    assert all(a is b for a, b in zip(h.loop.ctx.outputs, before, strict=True))
    assert h.loop.ctx.model_version == "cnn@v1.0" and not h.push_step(frames[3]).flags & MODEL_FAULT


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SwapSettings(failure_frames=0), r"swap\.failure_frames: expected an integer >= 1, got 0"),
        (lambda: SwapSettings(probation_frames=True), r"swap\.probation_frames: expected an integer >= 1, got True"),
        (lambda: SwapSettings(load_options=["threads"]), r"swap\.load_options: expected a mapping"),
        (lambda: Timing(rate_hz="fast"), r"timing\.rate_hz: expected a number > 0, got 'fast'"),
        (lambda: Timing(deadline_ms=0), r"timing\.deadline_ms: expected a number > 0 or None, got 0"),
        (lambda: Timing(start_ns=1.5), r"timing\.start_ns: expected an integer \(clock ns\) or None, got 1.5"),
        (lambda: Inputs(frame_order=""), r"inputs\.frame_order: expected a channel order such as 'RGB', got ''"),
        (lambda: Inputs(sync="latest"), r"inputs\.sync: expected a SensorSync, got 'latest'"),
    ],
)
def test_settings_groups_name_the_bad_field(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_loop_refuses_a_group_of_the_wrong_type_naming_it(v1_model) -> None:
    camera = [SensorSlot("camera", (48, 64, 3))]
    with pytest.raises(ConfigError, match=r"^timing: expected a Timing, got 100$"):
        Loop(v1_model, ClassificationPolicy(ACTIONS), camera, timing=100)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"inputs\.primary: expected one of \['camera'\], got 'lidar'"):
        Loop(v1_model, ClassificationPolicy(ACTIONS), camera, inputs=Inputs(primary="lidar"))
    with pytest.raises(TypeError, match="rate_hz"):  # the flat keywords are gone: grouped in Timing
        Loop(v1_model, ClassificationPolicy(ACTIONS), camera, rate_hz=100)  # type: ignore[call-arg]
    loop = Loop(v1_model, ClassificationPolicy(ACTIONS), camera)
    assert loop.schedule.period_ns == round(1e9 / 30) and loop.frame_order == "RGB"
    assert loop.swap_settings == SwapSettings() and loop.load_options == {}
    loop.close()
