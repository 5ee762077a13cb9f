"""The closed-loop harness: world → :class:`~edge.loop.Loop` (the real int8 model) → decision → world, with the
loop's telemetry streamed to a fleet collector, the timeline's faults applied, and the scenario's assertions checked.

One thread drives everything in order, frame by frame: the simulation advances to the loop's next tick (the camera
frame captured then lands in the loop's camera slot, cropped below the horizon as the model was trained),
``loop.step()`` runs that frame, and its steering command goes back to the car. With a
:class:`~edge.loop.clock.LockstepClock` (the default) a run is as fast as the CPU allows and deterministic (the same
seed gives the same trajectory); ``realtime=True`` uses the monotonic clock, so the simulation waits for wall time.

Timeline events: ``collector_outage`` stops the in-process collector and starts it again at the end (the device
spools and resends); ``model_swap`` hot-swaps to ``<models>/<model>.tgz`` (with ``backend="tflite"``:
``<model>-tflite.tgz`` when it exists); ``bad_swap`` swaps to a package whose model outputs NaN (written into the
run's folder), which the loop adopts and then rolls back. The loop's safe stop (health ``SAFE_STOP``: a stale,
frozen or faulty camera for longer than the fallback holds) is the vehicle's minimum-risk manoeuvre: it brakes and
holds the steering wheel where it was until the loop recovers; the camera counts as frozen after 5 identical
captures. Frame dropout, frozen frames, NaN IMU, CPU contention and the image effects come from the simulation
itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from edge.sim.harness_collector import SimCollector
from edge.sim.harness_result import RunResult, Trace
from edge.sim.scenario import Scenario
from edge.sim.simulation import Simulation
from edge.sim.timeline import TimelineEntry

from edge.contracts import Health
from edge.errors import ConfigError
from edge.loop.clock import Clock, LockstepClock, MonotonicClock

__all__ = ["HarnessOptions", "builtin_models", "run_scenario"]

log = logging.getLogger("edge.sim.harness")
BACKENDS = {"onnx": "lane-keeper.tgz", "tflite": "lane-keeper-tflite.tgz"}


def builtin_models() -> Path:
    """The folder of the shipped lane-keeping packages (``sim/models``)."""
    with resources.as_file(resources.files("edge.sim") / "models") as path:
        return Path(path)


@dataclass
class HarnessOptions:
    """``backend``: ``onnx`` (int8 U8S8 ONNX) or ``tflite``; ``package``: another package instead; ``models``: the
    folder that swaps take packages from; ``workdir``: where the spool, the collector's database and the broken
    package go; ``endpoint``: an external collector (default: one in-process); ``http``: the in-process
    collector's dashboard address or None; ``window_s``: telemetry window (s); ``horizons``: the collector's
    horizons (windows); ``progress``: called with (scenario time s, duration s, the run so far) every second of
    scenario time; ``keep_collector``: leave the in-process collector running after the run (the caller closes
    ``result.collector``); ``collector``: a running :class:`SimCollector` to report to (the caller owns it)."""

    workdir: Path
    backend: str = "onnx"
    package: Path | None = None
    models: Path | None = None
    realtime: bool = False
    endpoint: str | None = None
    http: tuple[str, int] | None = None
    window_s: float = 1.0
    horizons: tuple[int, ...] = (10,)
    device_id: str | None = None
    progress: Any = None
    keep_collector: bool = False
    collector: SimCollector | None = None
    drain_timeout_s: float = 20.0
    extra: dict[str, Any] = field(default_factory=dict)


def _telemetry_tap(opts: HarnessOptions, endpoint: str, device: str, windows: int) -> Any:
    from edge.telemetry.config import TelemetrySettings
    from edge.telemetry.publisher import PublisherSettings
    from edge.telemetry.tap import TelemetryTap

    settings = TelemetrySettings(
        link=PublisherSettings(
            endpoint=endpoint,
            window_s=opts.window_s,
            backoff_max_s=0.5,
            ack_timeout_s=2.0,
            close_flush_s=opts.drain_timeout_s,
        ),
        spool_dir=opts.workdir / "spool",
        fsync="never",
        # lockstep runs close windows faster than real time: room for every window of the run, so none is dropped
        queue_size=max(4, windows + 2),
    )
    return TelemetryTap(settings, device_id=device, boot_id=uuid.uuid4().hex)


def broken_package(folder: Path, like: Any) -> Path:
    """A package named like the live model (same input) whose model answers NaN: a bad update. Written once."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge.models.manage import pack_model

    out = folder / "broken.tgz"
    if out.exists():
        return out
    spec = like.inputs[0]
    elem = TensorProto.UINT8 if spec.dtype == np.uint8 else TensorProto.FLOAT
    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "nan"], ["v"]),
        helper.make_node("Reshape", ["v", "shape"], ["steering_rad"]),
    ]
    graph = helper.make_graph(
        nodes,
        "broken",
        [helper.make_tensor_value_info("images", elem, list(spec.shape))],
        [helper.make_tensor_value_info("steering_rad", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(np.array(np.nan, np.float32), "nan"),
         numpy_helper.from_array(np.array([1, 1], np.int64), "shape")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    path = folder / "broken.onnx"
    onnx.save_model(model, path)
    pre = dict(like.package.manifest.get("preprocess", {})) if getattr(like, "package", None) else {}
    return pack_model(path, out, name="lane-keeper", version="9.9.9-broken", preprocess=pre)


class _Events:
    """Acts on the timeline's harness events (called by the simulation on the driving thread)."""

    def __init__(self, run: ClosedLoop) -> None:
        self.run = run

    def __call__(self, entry: TimelineEntry, what: str, t_ns: int) -> None:
        run = self.run
        t_s = (t_ns - run.sim.start_ns) * 1e-9
        note = f"{entry.kind} {what}"
        if entry.kind == "collector_outage":
            done = run.collector.stop() if what == "start" else run.collector.restart()
            note += "" if done else " (external collector: not simulated)"
        elif entry.kind in ("model_swap", "bad_swap") and what == "start":
            if entry.kind == "model_swap":
                package = run.models / f"{entry.params['model']}.tgz"
                tflite = run.models / f"{entry.params['model']}-tflite.tgz"
                if run.opts.backend == "tflite" and tflite.exists():  # the new version's TFLite variant
                    package = tflite
            else:
                package = broken_package(run.opts.workdir, run.loop.model)
            ticket = run.loop.swap(package)
            run.swaps.append(ticket)
            if not run.opts.realtime:  # lockstep: loading takes no simulated time, so the adoption frame is fixed
                ticket.wait_ready(30.0)
            note += f" → {package.name}"
        run.result.events.append((t_s, note))
        log.info("t=%.2f s: %s", t_s, note)


class ClosedLoop:
    """One scenario run; :meth:`run` returns the :class:`RunResult`. Owns the collector, the loop (with its
    telemetry tap) and the simulation, and closes them all in :meth:`close`."""

    def __init__(self, scenario: Scenario, opts: HarnessOptions) -> None:
        from edge.loop import Loop, RegressionPolicy, SensorSlot, Timing
        from edge.models import load_model

        self.scenario, self.opts = scenario, opts
        if opts.backend not in BACKENDS:
            raise ConfigError(f"--backend: expected one of {sorted(BACKENDS)}, got {opts.backend!r}")
        self.models = opts.models or builtin_models()
        package = opts.package or self.models / BACKENDS[opts.backend]
        if not Path(package).exists():
            why = (
                "the TFLite variant of the lane model is not shipped yet: toolchains/lane/build.py writes it with "
                "edge.tooling.tflite_export; or pass --package with a .tflite package"
                if opts.backend == "tflite" and opts.package is None
                else "built by toolchains/lane/build.py"
            )
            raise ConfigError(f"model package: expected {package} to exist, got no such file ({why})")
        opts.workdir.mkdir(parents=True, exist_ok=True)
        spec = scenario.world
        self.clock: Clock = MonotonicClock() if opts.realtime else LockstepClock()
        self.device = opts.device_id or f"sim-{scenario.name}"
        self.own_collector = opts.collector is None
        self.collector = opts.collector or SimCollector(
            opts.workdir, self.models, endpoint=opts.endpoint, http=opts.http, horizons=opts.horizons
        )
        self.result = RunResult(scenario, Trace(round(spec.duration_s * spec.rate_hz) + 2))
        self.swaps: list[Any] = []
        self.loop: Any = None
        self.sim: Simulation | None = None
        self.tap: Any = None
        try:
            windows = int(spec.duration_s / opts.window_s) + 2
            self.tap = _telemetry_tap(opts, self.collector.endpoint, self.device, windows)
            model = load_model(package)
            if opts.backend == "tflite" and model.backend != "litert":
                raise ConfigError(f"{package}: expected a TFLite model for --backend tflite, got an onnx model")
            self.sim = Simulation(scenario, self.clock, event_sink=_Events(self))
            self.collector.recorder.start_ns = self.sim.start_ns
            self.top = self.sim.world.geometry.ground_row
            h, w, _ = self.sim.world.frame_shape
            vehicle = spec.vehicle
            self.loop = Loop(
                model,
                RegressionPolicy(1, lo=-vehicle.max_steer_rad, hi=vehicle.max_steer_rad),
                [SensorSlot("camera", (h - self.top, w, 3), stale_ns=3 * self.sim.camera_period_ns, frozen_frames=5)],
                clock=self.clock,
                timing=Timing(rate_hz=spec.rate_hz),
                taps=[self.tap],
                name="lane-keeper",
            )
            self.sim.camera_sink = self._camera
        except BaseException:
            self.close()
            raise

    def _camera(self, frame: np.ndarray, capture_ns: int) -> None:
        self.loop.slot("camera").push(frame[self.top :], capture_ns)

    def run(self) -> RunResult:
        sim, loop, spec, res = self.sim, self.loop, self.scenario.world, self.result
        assert sim is not None
        speed = spec.speed_mps
        period = sim.camera_period_ns
        next_ns = sim.start_ns + period
        last_progress = 0.0
        held = 0.0  # the last steering angle delivered before a safe stop (rad)
        wall0 = time.perf_counter()
        while not sim.done:
            sim.advance_to(next_ns)
            t0 = time.perf_counter_ns()
            d = loop.step()
            wall_us = (time.perf_counter_ns() - t0) * 1e-3
            steer = float(d.command[0])
            if d.health == Health.SAFE_STOP:  # the vehicle's minimum-risk manoeuvre: brake, wheel held where it was
                sim.actuate(held, 0.0)
            else:
                held = steer
                sim.actuate(steer, speed)
            world = sim.world
            res.trace.add(world, steer, wall_us, d.fallback, loop.overruns, d.flags)
            next_ns = loop.schedule.next_ns
            if self.opts.progress is not None and world.t_s - last_progress >= 1.0:
                last_progress = world.t_s
                res.alerts = [a for a in self.collector.alerts if a.scope == self.device]  # so far (scoring is async)
                self.opts.progress(world.t_s, spec.duration_s, res)
        res.wall_s = time.perf_counter() - wall0
        self._finish()
        return res

    def _finish(self) -> None:
        res, loop, sim = self.result, self.loop, self.sim
        world = sim.world
        res.max_lateral_m = world.max_abs_lateral_m
        res.lane_departures = world.lane_departures
        res.frames_dropped, res.frames_frozen = sim.frames_dropped, sim.frames_frozen
        res.deadline_misses = int(loop.ctx.deadline_misses)
        res.overruns = int(loop.overruns)
        res.model_errors = int(loop.model_errors)
        res.model_version = loop.ctx.model_version
        res.swaps = [repr(t) for t in self.swaps]
        res.swap_states = [getattr(t, "state", "?") for t in self.swaps]
        self.tap.close(timeout_s=self.opts.drain_timeout_s)  # hands over the last window and waits for the acks
        self.tap = None
        self._wait_scored()
        res.alerts = [a for a in self.collector.alerts if a.scope == self.device]
        res.drift = {**self.collector.drift_series(self.device), "start_ns": sim.start_ns}
        res.dashboard = self.collector.dashboard_url
        res.collector_endpoint = self.collector.endpoint
        res.external_collector = self.collector.external

    def _wait_scored(self) -> None:
        """Wait until the in-process collector has scored every window it acknowledged (the tap's close waited for
        the acks)."""
        if self.collector.external or self.collector.server is None:
            return
        if not self.collector.server.drain(self.opts.drain_timeout_s):
            log.warning("collector: windows still unscored after %.0f s", self.opts.drain_timeout_s)

    def close(self) -> None:
        for t in self.swaps:
            wait = getattr(t, "wait", None)
            if wait is not None:
                try:
                    wait(5.0)
                except Exception:
                    pass
        if self.tap is not None:
            self.tap.close()
            self.tap = None
        if self.loop is not None:
            self.loop.close()
            self.loop = None
        if self.sim is not None:
            self.sim.close()
        if self.own_collector and not self.opts.keep_collector:
            self.collector.close()


def run_scenario(scenario: Scenario, opts: HarnessOptions) -> RunResult:
    """Run ``scenario`` closed-loop and return the result (with the assertions checked: ``result.failures``)."""
    run = ClosedLoop(scenario, opts)
    try:
        result = run.run()
    finally:
        run.close()
    result.collector = run.collector if opts.keep_collector else None
    result.check()
    return result
