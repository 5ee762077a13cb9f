"""The Loop: sensor slots → preprocess → infer → postprocess → policy → fallback/health → sinks → taps, at a fixed rate.

Three ways to drive it, all stable (the simulator relies on them):

* ``loop.slot(name).push(value, capture_ns)`` — feed a sensor (copies into the slot; any thread);
* ``loop.step()`` — sleep until the next tick on the loop's clock (a :class:`LockstepClock` just jumps there), run
  that one frame and return the :class:`Decision` (the loop's reused object);
* ``loop.run(until_ns=None)`` — run frames on the schedule until :meth:`Loop.stop` or until the next tick would be
  at or after ``until_ns``.

Decisions also go to every sink (e.g. ``CallableSink(fn)``), and every frame to every :class:`FrameTap`.
The frame path allocates nothing in steady state (see tests/loop/test_allocation.py) and never blocks on I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from edge.contracts import (
    DEADLINE_MISS,
    FALLBACK,
    HEALTH_NAMES,
    MODEL_FAULT,
    STALE_SENSOR,
    FrameContext,
    FrameTap,
    Model,
)
from edge.errors import ConfigError
from edge.loop.clock import Clock, MonotonicClock
from edge.loop.decision import Decision
from edge.loop.health import HOLD_LAST, SAFE_STOP, FallbackConfig, HealthMonitor, reasons, safe_decision
from edge.loop.pipeline import ModelStage, build_stage
from edge.loop.policy import Policy
from edge.loop.scheduler import Schedule, StageBudgets
from edge.loop.sensors import SensorSlot
from edge.loop.settings import Inputs, Timing
from edge.loop.shadow import ShadowRunner
from edge.loop.sinks import DecisionSink
from edge.loop.swap import HotSwap, SwapSettings, SwapTicket

__all__ = ["Inputs", "Loop", "SwapSettings", "Timing"]

log = logging.getLogger("edge.loop")
_US = 1e-3  # ns → µs
_G = TypeVar("_G")


def _group(key: str, value: _G | None, cls: type[_G]) -> _G:
    """``value``, or the group's defaults when ``None``; a value of another type is refused naming ``key``."""
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise ConfigError(f"{key}: expected a {cls.__name__}, got {value!r}")
    return value


class Loop:
    """A fixed-rate sensor-to-decision loop around one live model.

    * ``model``: a loaded model (:func:`edge.models.load_model`) or a path to load (with ``swap.load_options``).
    * ``policy``: a :class:`~edge.loop.policy.ClassificationPolicy`, :class:`~edge.loop.policy.RegressionPolicy`
      or :class:`~edge.loop.policy.CallablePolicy`.
    * ``sensors``: the slots; ``inputs.primary`` names the primary sensor (default: the first): a camera
      (uint8 ``(H, W, C)``) through the preprocessing kernel, or a vector (audio, IMU, range scan) through
      ``inputs.bindings``; other model inputs are bound to other slots or constants there (:mod:`edge.loop.feeds`).
    * A stateful model (loaded with ``state={output: input}``, ``[model.state]``) carries its state every frame;
      it is reset when the model becomes live (start, swap, rollback), on every fallback frame and on
      :meth:`Loop.reset_state`. A shadow candidate keeps its own state.
    * ``clock`` (default: the monotonic wall clock) and ``timing`` (:class:`~edge.loop.settings.Timing`: rate,
      deadline, first tick, per-stage budgets): the schedule.
    * ``inputs``: :class:`~edge.loop.settings.Inputs` (primary camera, its channel order, preprocessing, sync).
    * ``fallback``: the hold-last / safe-stop rule (:class:`~edge.loop.health.FallbackConfig`).
    * ``swap``: the rollback rule and load options (:class:`~edge.loop.swap.SwapSettings`).
    * ``sinks`` receive every decision, ``taps`` every frame record; ``name`` names an unversioned model.

    ``Loop(model, policy, [camera], timing=Timing(rate_hz=100))`` is a complete loop.
    """

    def __init__(
        self,
        model: Model | str | Path,
        policy: Policy,
        sensors: Sequence[SensorSlot],
        *,
        clock: Clock | None = None,
        timing: Timing | None = None,
        inputs: Inputs | None = None,
        fallback: FallbackConfig | None = None,
        swap: SwapSettings | None = None,
        sinks: Sequence[DecisionSink] = (),
        taps: Sequence[FrameTap] = (),
        name: str = "model",
    ) -> None:
        timing, inputs = _group("timing", timing, Timing), _group("inputs", inputs, Inputs)
        self.fallback = _group("fallback", fallback, FallbackConfig)
        self.swap_settings = _group("swap", swap, SwapSettings)
        if not sensors:
            raise ConfigError("sensors: expected at least one sensor slot, got none")
        self.slots = {s.name: s for s in sensors}
        primary = inputs.primary or sensors[0].name
        if primary not in self.slots:
            raise ConfigError(f"inputs.primary: expected one of {list(self.slots)}, got {primary!r}")
        self.primary = self.slots[primary]
        self.bindings = inputs.bindings
        self.others = tuple(s for s in sensors if s is not self.primary)
        self.clock = clock or MonotonicClock()
        deadline_ns = None if timing.deadline_ms is None else int(timing.deadline_ms * 1e6)
        self.schedule = Schedule(self.clock, timing.rate_hz, deadline_ns=deadline_ns, start_ns=timing.start_ns)
        self.policy, self.name, self.frame_order = policy, name, inputs.frame_order
        self.preprocess_spec, self.sync = inputs.preprocess, inputs.sync
        self.load_options = dict(self.swap_settings.load_options)
        self.sinks, self.taps = list(sinks), list(taps)
        self.stage = self._build(model)
        self.ctx = FrameContext(channels=self.stage.channels)
        budgets = timing.stage_budgets_us
        self.budgets = StageBudgets(budgets, self.ctx.stage_us) if budgets else None
        # frozen detection: a camera compares its preprocessing stats, any other sensor its value
        self._signature = self.ctx.stats if self.stage.image else None
        self.primary.use_signature(self.ctx.stats.shape if self.stage.image else None)
        n = policy.command_size
        det = getattr(policy, "max_detections", 0), getattr(policy, "labels", ())  # detection policies
        self.decision = Decision(n, stage_us=self.ctx.stage_us, detections=det[0], labels=det[1])
        self.last_good = Decision(n, detections=det[0], labels=det[1])
        self.safe = safe_decision(self.fallback, getattr(policy, "actions", ()), n)
        self.health = HealthMonitor(self.fallback)
        self._have_good = False
        self._reset_requested = False
        self.state_resets = 0  # state resets of the live model: requested, on fallback, on swap/rollback
        self.frames_done = 0  # completed frames (the watchdog watches this)
        self.model_errors = 0
        self.sink_errors = 0
        self.tap_errors = 0
        self._t_pre = 0
        self.running = False
        self._stop = False
        self._bound = False
        self.hot_swap = HotSwap(self.swap_settings, self._set_stage, self._event)
        self.shadow: ShadowRunner | None = None
        self.watchdog: Any = None
        self._watchdog_seen = 0
        self._closed = False
        self._anchor = timing.start_ns is None  # the first tick is "now" at the first frame, not at construction
        self._set_stage(self.stage)

    # ------------------------------------------------------------------------------------------------- building
    def _build(self, model: Model | str | Path) -> ModelStage:
        if isinstance(model, str | Path):
            from edge.models import load_model

            model = load_model(model, **self.load_options)
        return build_stage(
            model,
            self.policy,
            self.primary.shape,
            self.frame_order,
            self.preprocess_spec,
            self.name,
            slots=self.slots,
            primary=self.primary.name,
            bindings=self.bindings,
        )

    def slot(self, name: str) -> SensorSlot:
        """The sensor slot ``name`` (for :meth:`SensorSlot.push`)."""
        try:
            return self.slots[name]
        except KeyError:
            raise ConfigError(f"sensor: expected one of {list(self.slots)}, got {name!r}") from None

    @property
    def model(self) -> Model:
        """The live model."""
        return self.stage.model

    @property
    def overruns(self) -> int:
        """Ticks skipped because a frame ended after them (cumulative)."""
        return self.schedule.overruns

    def reset_state(self) -> None:
        """Ask for the live model's state inputs (``[model.state]``) to be reset to zero before the next frame
        (safe from any thread; the loop thread does it between two frames)."""
        self._reset_requested = True

    def _set_stage(self, stage: ModelStage) -> None:
        self.stage = stage
        stage.reset_state()  # a model made live (start, swap, rollback) starts from a fresh state
        self.state_resets += 1
        self.ctx.outputs = stage.outputs
        self.ctx.model_version = stage.version
        if self.shadow is not None:
            try:
                self.shadow.check_live(stage.model)
            except ConfigError as exc:
                log.warning("shadow stopped: %s", exc)
                self.shadow.close()
                self.shadow = None
        if self._bound:
            for tap in self.taps:
                tap.bind(self.ctx, stage.model)

    def _outputs_rebound(self, stage: ModelStage) -> None:
        """The live model's output buffers changed (dynamic outputs bound at its first run, or a data-dependent
        shape): point the frame record at them and re-bind the taps. Allocates, on that frame only."""
        self.ctx.outputs = stage.outputs
        if self._bound:
            for tap in self.taps:
                tap.bind(self.ctx, stage.model)

    def _event(self, kind: str, fields: dict[str, Any]) -> None:
        log.info("loop event %s: %s", kind, fields)
        for tap in self.taps:
            try:
                tap.on_event(kind, fields)
            except Exception:
                log.exception("tap %r failed on event %s", tap, kind)

    # ------------------------------------------------------------------------------------------ swap and shadow
    def swap(self, package: str | Path) -> SwapTicket:
        """Verify, load, bind and warm ``package`` in a background thread; the loop adopts it between two frames
        and restores the current model if the new one fails ``swap.failure_frames`` consecutive frames."""
        return self.hot_swap.start(Path(package), self._build)

    def start_shadow(
        self, candidate: Any, *, every: int = 10, mode: str | None = None, tolerance: float = 0.0
    ) -> ShadowRunner:
        """Run ``candidate`` (a loaded model or a package path; its first output shaped like the live model's) on
        every ``every``-th frame in its own thread. ``mode``: "argmax" (default for classification) or "tolerance"."""
        candidate = self._build(candidate)
        if mode is None:
            mode = "argmax" if hasattr(self.policy, "actions") else "tolerance"
        if self.shadow is not None:
            self.shadow.close()
        self.shadow = ShadowRunner(candidate, self.model, self.ctx, every=every, mode=mode, tolerance=tolerance)
        return self.shadow

    # --------------------------------------------------------------------------------------------------- frames
    def step(self) -> Decision:
        """Run the frame of the next tick (sleeping on the clock until it) and return the decision."""
        if not self._bound:
            self._bind_taps()
            if self._anchor:  # loading models and starting receivers is not the loop's first overrun
                self.schedule.next_ns = self.clock.now_ns()
        tick = self.schedule.wait()
        end = self._frame(tick)
        self.schedule.finish(end)
        return self.decision

    def run(self, until_ns: int | None = None, max_frames: int | None = None) -> None:
        """Run frames on the schedule until :meth:`stop`, the next tick reaching ``until_ns``, or ``max_frames``.

        A :meth:`stop` that arrives before ``run`` starts (a SIGTERM while the service is still starting) makes it
        return at once; the request is consumed when ``run`` returns, so a later ``run`` goes on."""
        self.running = True
        done = 0
        try:
            while not self._stop:
                if until_ns is not None and self.schedule.next_ns >= until_ns:
                    break
                if max_frames is not None and done >= max_frames:
                    break
                self.step()
                done += 1
        finally:
            self.running = False
            self._stop = False

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current frame (safe from signal handlers and other threads)."""
        self._stop = True

    def _bind_taps(self) -> None:
        self._bound = True
        for tap in self.taps:
            tap.bind(self.ctx, self.stage.model)

    def _frame(self, tick: int) -> int:
        """One frame at ``tick``; returns its end time (clock ns). Allocation-free in steady state."""
        self.hot_swap.between_frames(self.stage)
        if self._reset_requested:
            self._reset_requested = False
            self.stage.reset_state()
            self.state_resets += 1
        if self.watchdog is not None and self.watchdog.trips != self._watchdog_seen:
            self._watchdog_seen = self.watchdog.trips
            self._event("watchdog", {"trips": self._watchdog_seen})
        ctx, d = self.ctx, self.decision
        ctx.stage_us.fill(0.0)
        frame = self.primary.latest()
        flags = self._sense(tick, frame)
        ran = not flags
        if ran:
            flags |= self._infer(frame, d)
        if self.clock.now_ns() - tick > self.schedule.deadline_ns:
            flags |= DEADLINE_MISS
            ctx.deadline_misses += 1
        before = self.health.state
        flags = self._fall_back(flags)
        if self.budgets is not None:
            flags |= self.budgets.check_stages()
        end = self._deliver(tick, frame, flags)
        if before != self.health.state:
            self._event(
                "health",
                {"from": HEALTH_NAMES[before], "to": HEALTH_NAMES[self.health.state], "reasons": reasons(flags)},
            )
        self.hot_swap.after_frame(ran, bool(flags & MODEL_FAULT))
        ctx.seq += 1
        self.frames_done += 1
        return end

    def _sense(self, tick: int, frame: Any) -> int:
        """Read the other sensors, preprocess the camera frame into the model input, check every sensor."""
        clock, ctx, st, primary = self.clock, self.ctx, self.ctx.stage_us, self.primary
        for other in self.others:
            other.latest()
        t1 = clock.now_ns()
        st[0] = (t1 - tick) * _US
        if frame is not None:
            self.stage.preprocess(frame, ctx.stats)
        self._t_pre = t2 = clock.now_ns()
        st[1] = (t2 - t1) * _US
        flags = primary.assess(frame, tick, self._signature)
        for other in self.others:
            flags |= other.assess(other.value, tick)
        if frame is not None and self.sync.skewed(primary.capture_ns, self.others):
            flags |= STALE_SENSOR
        return flags

    def _infer(self, frame: Any, d: Decision) -> int:
        """Model, shadow hand-off, postprocess, policy; MODEL_FAULT when any of them fails or is invalid."""
        clock, st, stage = self.clock, self.ctx.stage_us, self.stage
        ok = False
        try:
            stage.infer()
            if stage.outputs is not self.ctx.outputs:  # outputs bound at the model's first run (or re-bound)
                self._outputs_rebound(stage)
            t3 = clock.now_ns()
            st[2] = (t3 - self._t_pre) * _US
            shadow = self.shadow
            if shadow is not None and self.ctx.seq % shadow.every == 0:
                shadow.offer(frame, stage.input, stage.outputs[0])
            ok = stage.postprocess()
            t4 = clock.now_ns()
            st[3] = (t4 - t3) * _US
            if ok:
                ok = stage.decide(d)
            st[4] = (clock.now_ns() - t4) * _US
        except Exception as exc:
            self.model_errors += 1
            if self.model_errors == 1 or self.model_errors % 1000 == 0:
                log.warning("model %s failed (%d so far): %s", stage.version, self.model_errors, exc)
        return 0 if ok else MODEL_FAULT

    def _fall_back(self, flags: int) -> int:
        """Health update; replace the decision by the held or safe one when the frame is faulty."""
        d = self.decision
        if not flags:
            self.last_good.copy_from(d)
            self._have_good = True
        mode = self.health.update(flags, self._have_good)
        if mode == HOLD_LAST:
            d.copy_from(self.last_good)
            flags |= FALLBACK
        elif mode == SAFE_STOP:
            d.copy_from(self.safe)
            flags |= FALLBACK
        if flags & FALLBACK:
            self.ctx.fallbacks += 1
            self.stage.reset_state()  # a state built on frames that failed is not carried on
            self.state_resets += 1
        return flags

    def _deliver(self, tick: int, frame: Any, flags: int) -> int:
        """Stamp the decision, deliver it to the sinks, fill the frame record, call the taps; returns the end."""
        ctx, d, clock = self.ctx, self.decision, self.clock
        d.seq, d.tick_ns, d.flags, d.health = ctx.seq, tick, flags, self.health.state
        d.fallback = bool(flags & FALLBACK)
        for sink in self.sinks:
            try:
                sink.deliver(d)
            except Exception:
                self.sink_errors += 1
                if self.sink_errors == 1:
                    log.exception("sink %r failed", sink)
        end = clock.now_ns()
        ctx.stage_us[5] = (end - tick) * _US
        if self.budgets is not None:
            flags |= self.budgets.check_total()  # the record's flags only: the decision is already out
        ctx.tick_ns, ctx.capture_ns, ctx.frame = tick, self.primary.capture_ns, frame
        ctx.flags, ctx.health, ctx.confidence, ctx.decision = flags, d.health, d.confidence, d
        for tap in self.taps:
            try:
                tap.on_frame(ctx)
            except Exception:
                self.tap_errors += 1
                if self.tap_errors == 1:
                    log.exception("tap %r failed", tap)
        return end

    # ------------------------------------------------------------------------------------------------- stopping
    def close(self) -> None:
        """Stop helpers (watchdog, shadow, a swap thread), emit ``stop`` to the taps and close taps and sinks."""
        if self._closed:
            return
        self._closed = True
        if self.watchdog is not None:
            self.watchdog.close()
        if self.shadow is not None:
            self.shadow.close()
        self.hot_swap.close()
        self._event("stop", {"frames": self.frames_done, "overruns": self.overruns, "fallbacks": self.ctx.fallbacks})
        for tap in self.taps:
            try:
                tap.close()
            except Exception:
                log.exception("tap %r failed to close", tap)
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
