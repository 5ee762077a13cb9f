"""The ROS 2 decision/health sink: the Twist mapping, diagnostics, a bounded hand-off that drops and counts and
allocates nothing on the loop thread, a real DDS peer receiving it all, and the device service end to end (an image
published on a ROS 2 topic reaches the loop, the decision comes back on ROS 2 topics)."""

from __future__ import annotations

import gc
import json
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros2_harness import Peer, unique_domain, wait_until

from edge import kernels
from edge.contracts import STALE_SENSOR, Health
from edge.device.service import build_service
from edge.errors import ConfigError
from edge.io.ros2_dds import loopback_config
from edge.io.ros2_msgs import DiagnosticStatus
from edge.io.ros2_sink import Ros2DecisionSink, Ros2SinkSettings
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config
from edge.loop.decision import Decision
from edge.loop.policy import RegressionPolicy
from edge.loop.runner import Loop
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Timing
from edge.models import load_model

REPO = Path(__file__).resolve().parents[2]
LANE_MODEL = REPO / "sim" / "models" / "lane-keeper.tgz"


@pytest.fixture
def domain() -> int:
    return unique_domain()


@pytest.fixture
def peer(domain: int) -> Iterator[Peer]:
    p = Peer(domain)
    yield p
    p.close()


def _sink(domain: int, kind: str = "regression", size: int = 2, **settings) -> Ros2DecisionSink:
    return Ros2DecisionSink(kind, size, Ros2SinkSettings(domain_id=domain, **settings), config=loopback_config(domain))


def _decision(seq: int, command=(0.25, 1.5), health: int = Health.OK, label: str = "", action: int = -1) -> Decision:
    d = Decision(len(command))
    d.seq, d.tick_ns, d.health, d.label, d.action = seq, seq * 1000, health, label, action
    d.command[:] = command
    d.confidence = 0.5
    d.fallback = health != Health.OK
    d.flags = STALE_SENSOR if d.fallback else 0
    return d


class Paused:
    """Blocks the sink's publisher thread inside its first decision until :meth:`release` (so the ring's state is
    the test's, not the scheduler's)."""

    def __init__(self, sink: Ros2DecisionSink) -> None:
        self.gate, self.entered = threading.Event(), threading.Event()
        original = sink._publish_decision

        def blocked(i: int) -> None:
            self.entered.set()
            self.gate.wait(30)
            original(i)

        sink._publish_decision = blocked  # type: ignore[method-assign]

    def release(self) -> None:
        self.gate.set()


# ------------------------------------------------------------------------------------------- mapping


def test_twist_maps_steering_to_angular_z_and_speed_to_linear_x(domain: int) -> None:
    sink = _sink(domain, steering_index=0, steering_scale=2.0, speed_index=1, speed_scale=0.5)
    try:
        t = sink.twist([0.25, 3.0], Health.OK)
        assert (t.angular.z, t.linear.x, t.linear.y, t.angular.x) == (0.5, 1.5, 0.0, 0.0)
        stop = sink.twist([0.1, 3.0], Health.SAFE_STOP)
        assert stop.linear.x == 0.0 and stop.angular.z == pytest.approx(0.2)
    finally:
        sink.close()


def test_a_model_without_speed_drives_at_the_cruise_speed_and_stops_in_safe_stop(domain: int) -> None:
    sink = _sink(domain, size=1, cruise_speed=0.8)
    try:
        assert sink.twist([0.3], Health.DEGRADED).linear.x == 0.8
        assert sink.twist([0.0], Health.SAFE_STOP).linear.x == 0.0
    finally:
        sink.close()


def test_bad_settings_are_config_errors(domain: int) -> None:
    with pytest.raises(ConfigError, match=r"sinks\.ros2\.speed_index: expected an index into the 1-element command"):
        _sink(domain, size=1, speed_index=1)
    with pytest.raises(ConfigError, match="expected policy kind"):
        _sink(domain, kind="vibes")


def test_diagnostics_before_and_after_a_decision(domain: int) -> None:
    sink = _sink(domain, decision_topic="")
    try:
        first = sink.diagnostics().status[0]
        assert first.level == DiagnosticStatus.STALE and first.message == "waiting for the first decision"
        paused = Paused(sink)
        sink.deliver(_decision(7, health=Health.DEGRADED))
        paused.release()
        wait_until(lambda: sink.published == 1, "the decision to be published")
        st = sink.diagnostics().status[0]
        values = {kv.key: kv.value for kv in st.values}
        assert st.level == DiagnosticStatus.WARN and st.message == "DEGRADED (stale_sensor)"
        assert values["seq"] == "7" and values["fallbacks"] == "1" and values["reasons"] == "stale_sensor"
    finally:
        sink.close()


# ------------------------------------------------------------------------------------------- hand-off


def test_a_full_ring_drops_and_counts_and_never_blocks(domain: int) -> None:
    sink = _sink(domain, queue=4)
    try:
        paused = Paused(sink)
        d = _decision(0)
        for seq in range(1, 11):
            d.seq = seq
            sink.deliver(d)
        assert paused.entered.wait(20)
        assert sink.dropped == 6  # 4 records fit, the publisher holds the first: 10 - 4 dropped
        paused.release()
        wait_until(lambda: sink.published == 4, "the 4 queued decisions to be published")
        assert sink._last is not None and sink._last["seq"] == 4
    finally:
        sink.close()


def test_deliver_allocates_nothing_per_decision(domain: int) -> None:
    warmup, first, more = 200, 1000, 3000
    sink = _sink(domain, queue=warmup + first + more + 1)
    paused = Paused(sink)  # publishing is the other thread's work; tracemalloc would count its allocations too
    d = _decision(0, command=(0.1, 0.2))
    try:
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            for i in range(warmup):
                d.seq = i
                sink.deliver(d)
            assert paused.entered.wait(20)
            c0 = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for i in range(first):
                d.seq = i
                sink.deliver(d)
            c1, p1 = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for i in range(more):
                d.seq = i
                sink.deliver(d)
            c2, p2 = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            gc.enable()
        assert sink.dropped == 0
        assert c1 - c0 <= 256 and c2 - c1 <= 256, f"kept {c1 - c0} B over {first} decisions, {c2 - c1} B over {more}"
        assert p1 - c0 <= 8192 and p2 - c1 <= p1 - c0 + 256, f"transient peaks {p1 - c0} B, {p2 - c1} B"
    finally:
        paused.release()
        sink.close()


# ------------------------------------------------------------------------------------------- over DDS


def test_a_peer_receives_twist_decision_json_and_diagnostics(domain: int, peer: Peer) -> None:
    for topic, kind in (("/cmd_vel", "twist"), ("/edge/decision", "string"), ("/diagnostics", "diagnostics")):
        peer.request("reader", topic=topic, type=kind)
    sink = _sink(domain, speed_index=1, diagnostics_hz=50.0)
    try:
        for topic in ("/cmd_vel", "/edge/decision", "/diagnostics"):
            peer.wait_matched(topic)
            wait_until(lambda t=topic: sink.writers[t].get_matched_subscriptions(), f"our writer on {topic} to match")
        sink.deliver(_decision(1, command=(0.25, 1.5)))
        sink.deliver(_decision(2, command=(-0.5, 2.0), health=Health.SAFE_STOP))
        twist1 = peer.wait_sample("/cmd_vel")
        twist2 = peer.wait_sample("/cmd_vel")
        assert twist1["angular"]["z"] == 0.25 and twist1["linear"]["x"] == 1.5
        assert twist2["angular"]["z"] == -0.5 and twist2["linear"]["x"] == 0.0  # safe stop: no speed
        j = json.loads(peer.wait_sample("/edge/decision")["data"])
        assert j == {
            "seq": 1,
            "tick_ns": 1000,
            "action": -1,
            "label": "",
            "command": [0.25, 1.5],
            "confidence": 0.5,
            "health": "OK",
            "fallback": False,
            "flags": 0,
        }
        diag = peer.wait_sample("/diagnostics", lambda m: m["status"][0]["message"].startswith("SAFE_STOP"))
        st = diag["status"][0]
        assert st["level"] == DiagnosticStatus.ERROR and st["name"] == "edge: loop"
        assert diag["header"]["stamp"]["sec"] > 1_600_000_000  # wall-clock ROS time
    finally:
        sink.close()


def test_classification_decisions_go_out_as_json_strings(domain: int, peer: Peer) -> None:
    peer.request("reader", topic="/edge/decision", type="string")
    sink = _sink(domain, kind="classification", size=0)
    try:
        assert "/cmd_vel" not in sink.writers
        peer.wait_matched("/edge/decision")
        wait_until(lambda: sink.writers["/edge/decision"].get_matched_subscriptions(), "our writer to match")
        sink.deliver(_decision(3, command=(), label="stop", action=2))
        j = json.loads(peer.wait_sample("/edge/decision")["data"])
        assert (j["seq"], j["label"], j["action"], j["command"]) == (3, "stop", 2, [])
    finally:
        sink.close()


# ------------------------------------------------------------------------------------------- edge run, end to end

DEVICE_TOML = """
[device]
id = "ros2-robot"

[loop]
rate_hz = 20

[model]
package = "{package}"
threads = 1

[sensors.camera]
source = "ros2"
topic = "/camera/image_raw"
type = "image"
domain_id = {domain}
shape = [66, 200, 3]
stale_ms = 2000

[policy]
kind = "regression"
size = 1

[fallback]
hold_frames = 0
recover_frames = 2

[sinks.ros2]
domain_id = {domain}
steering_scale = 2.0
cruise_speed = 0.5
diagnostics_hz = 20
"""


def test_an_image_on_a_ros2_topic_drives_the_loop_and_the_decision_comes_back_on_ros2(
    tmp_path: Path, domain: int, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_config(domain))  # the service reads the robot's usual variable
    cfg_path = tmp_path / "device.toml"
    cfg_path.write_text(DEVICE_TOML.format(package=LANE_MODEL, domain=domain))
    for topic, kind in (("/cmd_vel", "twist"), ("/edge/decision", "string"), ("/diagnostics", "diagnostics")):
        peer.request("reader", topic=topic, type=kind)
    peer.request("writer", topic="/camera/image_raw", type="image", reliable=True)
    service = build_service(load_config(cfg_path))
    runner = threading.Thread(target=service.loop.run, name="test loop", daemon=True)
    runner.start()
    try:
        peer.wait_matched("/camera/image_raw")
        for topic in ("/cmd_vel", "/edge/decision", "/diagnostics"):
            peer.wait_matched(topic)
        # before any image: the loop waits on its sensor and says so on ROS 2 (safe stop)
        stale = json.loads(peer.wait_sample("/edge/decision")["data"])
        assert stale["health"] == "SAFE_STOP" and stale["fallback"]
        peer.request("image", topic="/camera/image_raw", height=66, width=200, encoding="rgb8", step=600, age_ms=0)
        good = peer.wait_sample("/edge/decision", lambda m: not json.loads(m["data"])["fallback"])
        command = json.loads(good["data"])["command"]
        assert len(command) == 1 and np.isfinite(command[0])
        twist = peer.wait_sample("/cmd_vel", lambda m: m["linear"]["x"] == 0.5)
        assert twist["angular"]["z"] == pytest.approx(2.0 * command[0])
        diag = peer.wait_sample("/diagnostics", lambda m: m["status"][0]["level"] == DiagnosticStatus.OK)
        assert diag["status"][0]["name"] == "edge: lane-keeper" and diag["status"][0]["hardware_id"] == "ros2-robot"
        assert service.sources[0].stats.delivered >= 1
    finally:
        service.loop.stop()
        runner.join(10)
        service.close()
    assert not runner.is_alive()


@pytest.mark.skipif(
    kernels.BACKEND != "native",
    reason="the NumPy twins (EDGE_PUREPYTHON=1) allocate temporaries by nature; the claim is for the native kernels",
)
def test_a_loop_with_the_ros2_sink_allocates_nothing_per_frame(domain: int) -> None:
    """As tests/loop/test_allocation.py, with the ROS 2 sink as the loop's sink (its publisher held, so what is
    measured is the loop thread's side only)."""
    warmup, first, more = 300, 1000, 3000
    sink = _sink(domain, size=1, queue=warmup + first + more + 1)
    paused = Paused(sink)
    camera = SensorSlot("camera", (66, 200, 3), stale_ns=25_000_000)
    loop = Loop(
        load_model(LANE_MODEL, threads=1),
        RegressionPolicy(1, lo=-0.5, hi=0.5, max_rate=2.0, rate_hz=100),
        [camera],
        clock=LockstepClock(),
        timing=Timing(rate_hz=100),
        sinks=[sink],
    )
    frame = np.random.default_rng(3).integers(0, 256, (66, 200, 3), dtype=np.uint8)
    try:
        with loop:

            def frames(n: int) -> None:
                for _ in range(n):
                    camera.push(frame, loop.schedule.next_ns)
                    loop.step()

            gc.collect()
            gc.disable()
            tracemalloc.start()
            try:
                frames(warmup)
                c0 = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                frames(first)
                c1, p1 = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                frames(more)
                c2, p2 = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
                gc.enable()
            assert sink.dropped == 0 and loop.ctx.fallbacks == 0
            paused.release()
    finally:
        paused.release()
    assert c1 - c0 <= 256 and c2 - c1 <= 256, f"kept {c1 - c0} B over {first} frames, {c2 - c1} B over {more}"
    assert p1 - c0 <= 8192 and p2 - c1 <= p1 - c0 + 256, f"transient peaks {p1 - c0} B, {p2 - c1} B"
