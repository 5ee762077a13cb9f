"""The lockstep driver: determinism, sensor timing, faults, events, CPU contention."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from edge.sim.expert import StanleyController
from edge.sim.scenario import Scenario
from edge.sim.simulation import Simulation
from edge.sim.world import World

from edge.loop.clock import LockstepClock

Maker = Callable[..., Scenario]


class Recorder:
    """Test sink: keeps copies of what a sensor delivered, with its capture time (ns)."""

    def __init__(self) -> None:
        self.values: list[np.ndarray] = []
        self.times: list[int] = []

    def __call__(self, value: np.ndarray, capture_ns: int) -> None:
        self.values.append(value.copy())
        self.times.append(capture_ns)


def drive(scenario: Scenario, seconds: float, clock: LockstepClock | None = None, **sinks: Any) -> Simulation:
    sim = Simulation(scenario, clock, **sinks)
    expert = StanleyController(sim.world.track)
    try:
        while sim.time_ns < seconds * 1e9:
            sim.actuate(expert.steer(sim.world.vehicle))
            sim.advance_to(sim.start_ns + sim.time_ns + sim.camera_period_ns)
    finally:
        sim.close()
    return sim


def fingerprint(values: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for v in values:
        digest.update(v.tobytes())
    return digest.hexdigest()


def test_same_seed_same_run_other_seed_other_noise(make_scenario: Maker) -> None:
    runs = []
    for seed in (5, 5, 6):
        camera, imu = Recorder(), Recorder()
        sim = drive(make_scenario(seed=seed), 3.0, camera_sink=camera, imu_sink=imu)
        st = sim.world.vehicle.state
        runs.append((fingerprint(camera.values), fingerprint(imu.values), (st.x, st.y, st.yaw), camera.times))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0] and runs[0][1] != runs[2][1]  # the noise differs
    assert runs[0][2] == runs[2][2]  # the expert drives on ground truth: the same path


def test_readings_arrive_at_their_rates_on_the_clock(make_scenario: Maker) -> None:
    clock = LockstepClock(start_ns=7_000_000_000)
    camera, imu, wheel = Recorder(), Recorder(), Recorder()
    sim = Simulation(make_scenario(rate_hz=20, imu_hz=100), clock, camera_sink=camera, imu_sink=imu, wheel_sink=wheel)
    sim.advance_to(clock.now_ns() + 1_000_000_000)
    assert sim.time_ns == 1_000_000_000 and clock.now_ns() == 8_000_000_000
    # the camera at 50, 100, ..., 1000 ms, the IMU and wheel speed every 10 ms, in clock ns
    assert camera.times == [7_000_000_000 + k * 50_000_000 for k in range(1, 21)]
    assert imu.times == [7_000_000_000 + k * 10_000_000 for k in range(1, 101)]
    assert wheel.times == imu.times
    speeds = np.array([w[0] for w in wheel.values])
    assert speeds.mean() == pytest.approx(10.0, abs=0.02)  # wheel speed: the true 10 m/s plus noise
    assert all(v.shape == (60, 80, 3) and v.dtype == np.uint8 for v in camera.values)


def test_sinks_get_ring_buffers_that_stay_valid(make_scenario: Maker) -> None:
    seen: list[np.ndarray] = []
    sim = Simulation(make_scenario(), camera_sink=lambda f, t: seen.append(f), buffers=3)
    sim.advance_to(sim.start_ns + 500_000_000)
    assert len(seen) == 10 and all(np.shares_memory(f, sim.frames) for f in seen)
    for i in range(3, 10):  # the ring of three: a frame's buffer comes back three frames later, not sooner
        assert np.shares_memory(seen[i], seen[i - 3])
        assert not np.shares_memory(seen[i], seen[i - 1]) and not np.shares_memory(seen[i], seen[i - 2])


def test_dropout_drops_frames_only_in_its_interval(make_scenario: Maker) -> None:
    camera = Recorder()
    scenario = make_scenario([{"kind": "dropout", "start_s": 1.0, "end_s": 3.0, "probability": 0.5}])
    sim = drive(scenario, 4.0, camera_sink=camera)
    times = np.array(camera.times) * 1e-9
    inside = ((times >= 1.0) & (times < 3.0)).sum()
    assert 10 <= inside <= 30  # about half of the 40 frames scheduled in [1, 3) s
    assert sim.frames_dropped == 40 - inside
    assert ((times < 1.0) | (times >= 3.0)).sum() == 40  # none dropped outside: 19 before, 21 after (3.0 .. 4.0 s)


def test_frozen_camera_repeats_one_frame_with_fresh_timestamps(make_scenario: Maker) -> None:
    camera = Recorder()
    sim = drive(make_scenario([{"kind": "frozen", "start_s": 1.0, "end_s": 2.0}]), 2.5, camera_sink=camera)
    times = np.array(camera.times) * 1e-9
    frozen = [v for v, t in zip(camera.values, times, strict=True) if 1.0 <= t < 2.0]
    assert len(frozen) == 20 and sim.frames_frozen == 20
    assert all(np.array_equal(frozen[0], f) for f in frozen)
    assert np.all(np.diff(times) > 0)
    before = [v for v, t in zip(camera.values, times, strict=True) if t < 1.0]
    after = [v for v, t in zip(camera.values, times, strict=True) if t >= 2.0]
    assert np.array_equal(frozen[0], before[-1])  # the frame the camera had when it froze
    assert not np.array_equal(after[0], frozen[0])


def test_nan_imu_in_its_interval(make_scenario: Maker) -> None:
    imu = Recorder()
    drive(make_scenario([{"kind": "nan_imu", "start_s": 0.5, "end_s": 1.0}]), 1.5, imu_sink=imu)
    for value, t in zip(imu.values, imu.times, strict=True):
        assert np.isnan(value).all() == (0.5 <= t * 1e-9 < 1.0)


def test_events_reach_the_harness_at_their_times(make_scenario: Maker) -> None:
    events: list[tuple[str, str, int]] = []
    timeline = [
        {"kind": "collector_outage", "start_s": 0.0, "end_s": 0.7},
        {"kind": "model_swap", "start_s": 0.3, "model": "next.tgz"},
        {"kind": "bad_swap", "start_s": 0.5},
    ]
    clock = LockstepClock(start_ns=1_000)
    sim = Simulation(make_scenario(timeline), clock, event_sink=lambda e, what, t: events.append((e.kind, what, t)))
    sim.advance_to(clock.now_ns() + 1_000_000_000)
    assert events == [
        ("collector_outage", "start", 1_000),
        ("model_swap", "start", 300_001_000),
        ("bad_swap", "start", 500_001_000),
        ("collector_outage", "end", 700_001_000),
    ]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_cpu_contention_starts_and_stops_on_the_timeline(make_scenario: Maker, mode: str) -> None:
    scenario = make_scenario([{"kind": "cpu_contention", "start_s": 0.2, "end_s": 0.4, "workers": 1, "mode": mode}])
    with Simulation(scenario) as sim:
        sim.advance_to(sim.start_ns + 100_000_000)
        assert not sim.contention_running
        sim.advance_to(sim.start_ns + 300_000_000)
        assert sim.contention_running
        sim.advance_to(sim.start_ns + 500_000_000)
        assert not sim.contention_running
        sim.advance_to(sim.start_ns + 250_000_000 + sim.time_ns)  # a second run of the check: nothing restarts
        assert not sim.contention_running


def test_close_stops_contention_that_is_still_running(make_scenario: Maker) -> None:
    scenario = make_scenario([{"kind": "cpu_contention", "start_s": 0.1, "workers": 2, "mode": "thread"}])
    sim = Simulation(scenario)
    sim.advance_to(sim.start_ns + 200_000_000)
    assert sim.contention_running
    sim.close()
    assert not sim.contention_running


def test_imu_and_wheel_speed_measure_the_motion(make_scenario: Maker) -> None:
    world = World(make_scenario(speed_mps=8.0).world)
    world.command(0.2, 8.0)
    for _ in range(400):  # 2 s: the steering reaches 0.2 rad (1.2 rad/s) and holds
        world.step(0.005)
    radius = world.spec.vehicle.wheelbase_m / math.tan(0.2)
    readings = np.empty((500, 3))
    wheel = np.empty(500)
    for i in range(500):
        world.read_imu(readings[i])
        wheel[i] = world.read_wheel_speed()
    yaw_rate, lateral, longitudinal = readings.mean(axis=0)
    assert yaw_rate == pytest.approx(8.0 / radius, abs=0.002)
    assert lateral == pytest.approx(8.0**2 / radius, abs=0.02)
    assert longitudinal == pytest.approx(0.0, abs=0.02)
    assert readings.std(axis=0) == pytest.approx([0.005, 0.05, 0.05], rel=0.15)  # the stated noise
    assert wheel.mean() == pytest.approx(8.0, abs=0.01) and wheel.std() == pytest.approx(0.03, rel=0.15)
