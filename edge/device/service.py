"""The on-device service behind ``edge run device.toml``: build a loop from a config, run it until SIGTERM/SIGINT,
stop gracefully; and the systemd unit behind ``edge service unit``.

The loop runs on the main thread (so signals interrupt its sleep at once); sensor receivers, the watchdog, a swap
and a shadow model run in their own threads. On SIGTERM/SIGINT the current frame finishes, then everything is
closed in order (sources, loop helpers, taps, sinks) and ``edge run: stopped cleanly ...`` is printed; exit status 0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.device.notices import FallbackLog, sensor_origin, waiting_lines
from edge.errors import ConfigError
from edge.io.factory import recorder_from_config, sources_from_config
from edge.loop.clock import Clock, MonotonicClock
from edge.loop.config import DeviceConfig, RecordConfig, SensorConfig, load_config
from edge.loop.health import FallbackConfig
from edge.loop.pipeline import PreprocessSpec
from edge.loop.policy import ClassificationPolicy, RegressionPolicy
from edge.loop.runner import Inputs, Loop, SwapSettings
from edge.loop.scheduler import apply_realtime
from edge.loop.sensors import SensorSlot, SensorSync
from edge.loop.sinks import DecisionSink, LogSink, ZmqDecisionSink
from edge.loop.watchdog import attach_watchdog
from edge.loop.zmq_source import ZmqSensorSource

__all__ = ["Service", "build_service", "run_service", "systemd_unit"]

log = logging.getLogger("edge.loop")


@dataclass
class Service:
    """A loop built from a config and the resources around it (receivers), closed together by :meth:`close`."""

    config: DeviceConfig
    loop: Loop
    sources: list[Any] = field(default_factory=list)  # ZmqSensorSource and edge.io sources (close())

    def close(self) -> None:
        for src in self.sources:
            src.close()
        self.loop.close()


def _telemetry_tap(cfg: DeviceConfig) -> Any:
    try:
        from edge.telemetry import tap_from_config  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigError(
            f"telemetry: edge.telemetry is not available ({exc}); remove the [telemetry] table or install it"
        ) from exc
    return tap_from_config(cfg.telemetry, device_id=cfg.device_id, base_dir=cfg.base_dir)


def build_service(
    cfg: DeviceConfig,
    *,
    clock: Clock | None = None,
    sinks: Sequence[DecisionSink] = (),
    taps: Sequence[Any] = (),
    on_input_end: Callable[[], None] | None = None,
) -> Service:
    """Build (but do not start running) the loop described by ``cfg``; start its ZeroMQ receivers and robot I/O
    sources. ``on_input_end``: called (on a source's thread) when the primary sensor's finite input has ended."""
    p = cfg.policy
    rate = cfg.loop.rate_hz
    policy: Any
    if p.kind == "classification":
        policy = ClassificationPolicy(
            p.actions, min_confidence=p.min_confidence, low_confidence_action=p.low_confidence_action
        )
    elif p.kind == "detection":
        from edge.loop.detect import policy_from_config

        shape = next(s for s in cfg.sensors if s.primary).shape
        policy = policy_from_config(p.detection or {}, p.actions, (shape[0], shape[1]))
    else:
        policy = RegressionPolicy(p.size, lo=p.lo, hi=p.hi, max_rate=p.max_rate, rate_hz=rate)
    slots = []
    for s in cfg.sensors:
        stale = None if s.stale_ms is None else int(s.stale_ms * 1e6)
        slots.append(
            SensorSlot(s.name, s.shape, s.dtype, stale_ns=stale, lo=s.lo, hi=s.hi, frozen_frames=s.frozen_frames)
        )
    primary = next(s for s in cfg.sensors if s.primary)
    m = cfg.model
    if not m.package.exists():
        raise ConfigError(f"model.package: expected a model package or model file, got {m.package} (not found)")
    all_taps = list(taps)
    if cfg.telemetry is not None:
        all_taps.append(_telemetry_tap(cfg))
    recorder = None
    if cfg.record is not None:  # robot I/O: the MCAP recorder ([record], edge run --record)
        recorder = recorder_from_config(cfg, cfg.record, {s.name: s for s in slots})
        all_taps.append(recorder)
    all_sinks: list[DecisionSink] = list(sinks)
    # decisions logged one in log_every; fallbacks at most once per 5 s, saying what the primary sensor waits on
    primary_slot = next(slot for slot in slots if slot.name == primary.name)
    all_sinks.append(FallbackLog(cfg.log_every, primary_slot, sensor_origin(primary)))
    if cfg.zmq_endpoint:
        all_sinks.append(ZmqDecisionSink(cfg.zmq_endpoint))
    if cfg.ros2_sink is not None:  # ROS 2: [sinks.ros2]
        all_sinks.append(_ros2_sink(cfg, policy))
    load_options: dict[str, Any] = {}
    if m.threads is not None:
        load_options["threads"] = m.threads
    if m.providers is not None:
        load_options["providers"] = list(m.providers)
    if m.shapes:  # [model.shapes], [model.state]: checked against the model when it is loaded
        load_options["shapes"] = dict(m.shapes)
    if m.state:
        load_options["state"] = dict(m.state)
    try:
        loop = _make_loop(
            cfg, policy, slots, primary.name, primary.channel_order, clock, all_sinks, all_taps, load_options
        )
    except BaseException:
        for sink in all_sinks:
            sink.close()
        for tap in all_taps[len(taps) :]:
            tap.close()
        raise
    service = Service(cfg, loop)
    try:
        if cfg.shadow is not None:
            loop.start_shadow(
                cfg.shadow.package, every=cfg.shadow.every, mode=cfg.shadow.mode, tolerance=cfg.shadow.tolerance
            )
        if cfg.watchdog_ms is not None:
            wd_sinks: list[DecisionSink] = [LogSink()]
            if cfg.watchdog_endpoint:
                wd_sinks.append(ZmqDecisionSink(cfg.watchdog_endpoint))
            attach_watchdog(loop, cfg.watchdog_ms, wd_sinks)
        by_endpoint: dict[tuple[str, bool, str], dict[str, SensorSlot]] = {}
        for s in cfg.sensors:
            if s.source == "zmq":
                by_endpoint.setdefault((s.endpoint or "", s.bind, s.stamp), {})[s.name] = loop.slot(s.name)
        for (endpoint, bind, stamp), group in by_endpoint.items():
            service.sources.append(ZmqSensorSource(endpoint, group, bind=bind, stamp=stamp).start())
        for src in sources_from_config(cfg, loop.slots, loop.clock):  # robot I/O: video, camera, mcap
            service.sources.append(src)
            if src.slot is loop.slot(primary.name):
                src.on_end = on_input_end
                _tee_to(recorder, src)
            src.start()
        for s in cfg.sensors:  # ROS 2: source = "ros2"
            if s.ros2 is not None:
                service.sources.append(_ros2_source(s, loop.slot(s.name), recorder if s.primary else None))
    except BaseException:
        service.close()
        raise
    return service


# --- ROS 2 (edge.io.ros2_source, edge.io.ros2_sink; cyclonedds is imported only when a config uses them) -----------


def _ros2_module(name: str) -> Any:
    try:
        if name == "ros2_source":
            from edge.io import ros2_source as mod
        else:
            from edge.io import ros2_sink as mod
        return mod
    except ImportError as exc:
        raise ConfigError(
            f"ROS 2 sources and sinks need the cyclonedds package ({exc}); install it with: pip install 'edge[ros2]'"
        ) from exc


def _tee_to(recorder: Any, src: Any) -> None:
    """The primary sensor's source hands its images to the recorder on its own thread (none on the loop's)."""
    if recorder is not None:
        recorder.use_tee()
        src.tee = recorder.tee


def _ros2_source(s: SensorConfig, slot: SensorSlot, recorder: Any = None) -> Any:
    """Start the ROS 2 subscription of sensor ``s`` feeding ``slot`` (and ``recorder``'s tee, for the primary)."""
    assert s.ros2 is not None
    r = s.ros2
    src = _ros2_module("ros2_source").Ros2Source(
        s.name, r.topic, r.type, slot, domain_id=r.domain_id, stamp=s.stamp, channel_order=s.channel_order
    )
    if s.ros2.type != "imu":
        _tee_to(recorder, src)
    src.start()
    return src


def _ros2_sink(cfg: DeviceConfig, policy: Any) -> DecisionSink:
    """The ``[sinks.ros2]`` publisher of decisions and diagnostics."""
    mod = _ros2_module("ros2_sink")
    settings = mod.Ros2SinkSettings(**(cfg.ros2_sink or {}))
    size = cfg.policy.size if cfg.policy.kind == "regression" else 0
    return mod.Ros2DecisionSink(
        cfg.policy.kind,
        size,
        settings,
        name=cfg.model.package.stem,
        hardware_id=cfg.device_id or "",
        detections=getattr(policy, "max_detections", 0),
        labels=getattr(policy, "labels", ()),
    )


# ---------------------------------------------------------------------------------------------------------------------


def _make_loop(
    cfg: DeviceConfig,
    policy: Any,
    slots: list[SensorSlot],
    primary: str,
    frame_order: str,
    clock: Clock | None,
    sinks: list[DecisionSink],
    taps: list[Any],
    load_options: dict[str, Any],
) -> Loop:
    m = cfg.model
    return Loop(
        m.package,
        policy,
        slots,
        clock=clock or MonotonicClock(),
        timing=cfg.loop.timing(),
        inputs=Inputs(
            primary,
            frame_order,
            PreprocessSpec(_tuple(m.mean), _tuple(m.std), m.channel_order, m.layout),
            SensorSync(cfg.sync_mode, None if cfg.max_skew_ms is None else int(cfg.max_skew_ms * 1e6)),
            bindings=m.inputs,
        ),
        fallback=FallbackConfig(cfg.hold_frames, cfg.recover_frames, cfg.safe_action, cfg.safe_command),
        swap=SwapSettings(cfg.swap_failure_frames, cfg.swap_probation_frames, load_options),
        sinks=sinks,
        taps=taps,
        name=m.package.stem,
    )


def _tuple(v: Any) -> tuple[float, ...] | None:
    return v if v is None or isinstance(v, tuple) else (v,)


def run_service(config_path: str | Path, record: str | Path | None = None) -> int:
    """``edge run``: run the configured loop until SIGTERM/SIGINT (or the end of a finite primary input, such as
    a video without ``loop``); 0 after a clean stop. ``record``: an MCAP file to record into (as ``[record]``)."""
    cfg = load_config(config_path)
    if record is not None:
        rec = cfg.record or RecordConfig(Path(record))
        cfg = dataclasses.replace(cfg, record=dataclasses.replace(rec, path=Path(record).resolve()))
    ended: list[Loop] = []

    def input_ended() -> None:  # robot I/O: the primary's finite input (a video without loop) ends the run
        received.append("end of input")
        for lp in ended:
            lp.stop()

    service = build_service(cfg, on_input_end=input_ended)
    loop = service.loop
    ended.append(loop)
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        loop.stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        apply_realtime(cfg.loop.cpus, cfg.loop.fifo_priority)
        print(
            f"edge run: {loop.stage.version} at {cfg.loop.rate_hz:g} Hz, sensors {list(loop.slots)}; "
            f"stop with SIGTERM or SIGINT",
            flush=True,
        )
        for line in waiting_lines(cfg):  # once, before the first frame: which sensor, and where from
            print(line, flush=True)
        loop.run()
    finally:
        service.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    why = received[0] if received else "end of run"
    print(
        f"edge run: stopped cleanly on {why} after {loop.frames_done} frames "
        f"({loop.overruns} overruns, {loop.ctx.fallbacks} fallbacks)",
        flush=True,
    )
    for src in service.sources:  # robot I/O sources: what they delivered
        if (st := getattr(src, "stats", None)) is not None:
            last = f", last error: {st.last_error}" if st.errors else ""
            print(f"edge run: {src.name}: {st.delivered} delivered, {st.dropped} dropped, {st.errors} errors{last}")
    return 0


def systemd_unit(config: str | Path = "/etc/edge/device.toml", user: str | None = None) -> str:
    """A systemd unit for ``edge run CONFIG`` (Type=simple, Restart=on-failure, SIGTERM to stop)."""
    config = Path(config).expanduser()
    config = config if config.is_absolute() else Path(os.getcwd()) / config
    exec_line = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "edge", "run", str(config)))
    lines = [
        "[Unit]",
        f"Description=edge on-device inference loop ({config.name})",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_line}",
        f"WorkingDirectory={config.parent}",
        "Restart=on-failure",
        "RestartSec=2",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=10",
        "# SCHED_FIFO ([loop] fifo_priority) needs a real-time priority limit",
        "LimitRTPRIO=99",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if user:
        lines.append(f"User={user}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)
