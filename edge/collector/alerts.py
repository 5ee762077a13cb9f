"""The alert policy: when a drift or operational signal becomes an alert, and when the alert clears.

Vehicle data is autocorrelated (a tunnel, a night, a rain shower), so one bad window is not drift. A signal
*breaches* when its value is at or above the rule's ``threshold`` (below it, for ``chi2_p``) with at least
``min_samples`` values behind it; ``persistence`` consecutive breaching windows open an alert. An open alert
clears only after ``persistence`` consecutive windows past the lower ``clear`` level (hysteresis), so a value
hovering at the threshold does not flap. Windows with too few samples change nothing.

Scopes: a device id (the device's own horizon), ``"fleet"`` (the merged fleet sketch), and ``"cohort"``: the
fraction of a model's devices with an open device alert on the same (feature, metric), alerting at
``cohort_fraction`` (and at least ``cohort_min_devices`` devices) and clearing below half of it.

Lifecycle: ``open`` → ``acknowledged`` (an operator, through the HTTP API) → ``resolved`` (the policy, when the
signal clears; an acknowledged alert resolves the same way). Every transition goes to every sink.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge.collector.engine import FLEET, Evaluation
from edge.collector.stores import Store
from edge.errors import ConfigError

__all__ = ["COHORT", "DEFAULT_RULES", "AlertEvent", "AlertPolicy", "AlertSink", "Rule"]

COHORT = "cohort"


@dataclass(frozen=True)
class Rule:
    """``metric`` alerts at ``threshold`` and clears past ``clear``; ``above=False`` for p-values."""

    metric: str
    threshold: float
    clear: float
    persistence: int = 3
    min_samples: int = 200
    above: bool = True

    def __post_init__(self) -> None:
        ok = self.clear <= self.threshold if self.above else self.clear >= self.threshold
        if not ok or self.persistence < 1 or self.min_samples < 0:
            raise ConfigError(
                f"alert rule {self.metric}: expected clear on the safe side of threshold, persistence >= 1 and "
                f"min_samples >= 0, got threshold={self.threshold} clear={self.clear} "
                f"persistence={self.persistence} min_samples={self.min_samples}"
            )

    def breaches(self, value: float) -> bool:
        return value >= self.threshold if self.above else value <= self.threshold

    def clears(self, value: float) -> bool:
        return value < self.clear if self.above else value > self.clear


# PSI alerts at 0.25 ("significant") and clears below 0.1 ("moderate"): the convention gives the hysteresis.
# Operational rates: our defaults (5 % of frames missing the deadline / falling back; p99 over the budget).
# Prediction mix (chi2_p: the p-value of Pearson's chi-square test of homogeneity of the horizon's top-1 class
# counts and the reference profile's, edge.collector.engine._chi2_p): alerts at p <= 0.01 and clears above 0.05.
# 0.01 is the conventional "highly significant" level (0.05, the usual one, is the clear level, so a p hovering near
# 0.01 does not flap); with at least 200 frames behind it (the chi-square approximation wants expected counts of
# about 5 per class: 200 frames give that for a class at 2.5 %) and 3 consecutive windows, one burst of one class
# does not alert. A p-value shrinks with the sample size: at the fleet scope (every device's frames) a small but
# real change of the class mix is enough, and frames of one device are autocorrelated (a p-value assumes
# independent frames), which persistence only partly absorbs.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("psi", 0.25, 0.1),
    Rule("js", 0.1, 0.05),
    Rule("ks", 0.1, 0.05),
    Rule("wasserstein", 0.1, 0.05),
    Rule("chi2_p", 0.01, 0.05, min_samples=200, above=False),
    Rule("deadline_miss_rate", 0.05, 0.02, min_samples=100),
    Rule("fallback_rate", 0.05, 0.02, min_samples=100),
    Rule("p99_latency_ratio", 1.0, 0.9, min_samples=100),
)
_OPS_SAMPLES = "frames"


@dataclass(frozen=True)
class AlertEvent:
    """One lifecycle transition (``state``: open, acknowledged, resolved)."""

    alert_id: int
    state: str
    scope: str
    model: str
    feature: str
    metric: str
    value: float
    threshold: float
    t_ns: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AlertSink(Protocol):
    def emit(self, event: AlertEvent) -> None: ...


@dataclass
class _Track:
    breach: int = 0
    calm: int = 0
    alert_id: int | None = None


@dataclass
class AlertPolicy:
    """Turns :class:`Evaluation` objects into :class:`AlertEvent` objects and sends them to ``sinks``; with a
    ``store``, alerts are persisted there (ids from SQLite), else ids count from 1."""

    rules: Sequence[Rule] = DEFAULT_RULES
    sinks: list[AlertSink] = field(default_factory=list)
    store: Store | None = None
    horizon: int | None = None  # the horizon alerts use (None: any)
    cohort_fraction: float = 0.2
    cohort_min_devices: int = 3
    _tracks: dict[tuple[str, str, str, str], _Track] = field(default_factory=dict, init=False)
    _next_id: int = field(default=1, init=False)
    _drifting: dict[tuple[str, str, str], set[str]] = field(default_factory=dict, init=False)  # device scopes
    events: int = field(default=0, init=False)
    # tracks not at rest (a breach streak or an alert): (scope, model, metric) -> features; open cohort alerts
    _busy: dict[tuple[str, str, str], set[str]] = field(default_factory=dict, init=False)
    _cohort_open: set[tuple[str, str, str]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.cohort_fraction <= 1.0:
            raise ConfigError(f"cohort_fraction: expected a fraction in (0, 1], got {self.cohort_fraction}")
        self._by_metric = {r.metric: r for r in self.rules}

    # ------------------------------------------------------------------------------------------- evaluate

    def evaluate(self, ev: Evaluation, devices: Iterable[str] = (), windows: int = 1) -> list[AlertEvent]:
        """Apply the rules to one evaluation; ``devices``: the model's devices (for the cohort fraction);
        ``windows``: how many windows it stands for (a merged backlog: it counts that many towards persistence)."""
        if self.horizon is not None and ev.horizon != self.horizon:
            return []
        out: list[AlertEvent] = []
        for metric, values in ev.scores.items():
            rule = self._by_metric.get(metric)
            if rule is None:
                continue
            # only features that breach or whose track is not at rest can change anything (same result as a step
            # for every feature: a step of a resting track on a calm value leaves it at rest)
            busy = self._busy.get((ev.scope, ev.model, metric), ())
            live = np.asarray(values >= rule.threshold if rule.above else values <= rule.threshold)
            if busy:
                live = live | np.array([f in busy for f in ev.features])
            live &= ev.samples >= rule.min_samples
            for i in np.flatnonzero(live).tolist():
                feature = ev.features[i]
                value, samples = float(values[i]), int(ev.samples[i])
                out += self._step(rule, ev.scope, ev.model, feature, value, samples, ev.t_ns, windows)
        frames = ev.samples.max() if ev.samples.size else 0
        for metric, value in ev.ops.items():
            rule = self._by_metric.get(metric)
            if rule is not None and not math.isnan(value):
                out += self._step(rule, ev.scope, ev.model, "-", value, int(frames), ev.t_ns, windows)
        if ev.scope not in (FLEET, COHORT):
            out += self._cohort(ev, devices if isinstance(devices, (set, frozenset)) else set(devices))
        return out

    def _cohort(self, ev: Evaluation, devices: set[str] | frozenset[str]) -> list[AlertEvent]:
        if len(devices) < 1:
            return []
        out = []
        for metric in ev.scores:
            rule = self._by_metric.get(metric)
            if rule is None:
                continue
            cohort_rule = Rule(metric, self.cohort_fraction, self.cohort_fraction / 2, persistence=1, min_samples=0)
            members = devices
            watch = {f for (m, f, k), d in self._drifting.items() if d and m == ev.model and k == metric}
            watch |= {f for (m, f, k) in self._cohort_open if m == ev.model and k == metric}
            for feature in ev.features:
                if feature not in watch:
                    continue  # no device drifting on it and no cohort alert open: nothing can change
                drifting = len(self._drifting.get((ev.model, feature, metric), set()) & members)
                value = drifting / len(devices)
                if (
                    drifting < self.cohort_min_devices
                    and self._track(COHORT, ev.model, feature, metric).alert_id is None
                ):
                    continue
                out += self._step(cohort_rule, COHORT, ev.model, feature, value, len(devices), ev.t_ns)
        return out

    def _track(self, scope: str, model: str, feature: str, metric: str) -> _Track:
        return self._tracks.setdefault((scope, model, feature, metric), _Track())

    def _step(
        self, rule: Rule, scope: str, model: str, feature: str, value: float, samples: int, t_ns: int, windows: int = 1
    ) -> list[AlertEvent]:
        if samples < rule.min_samples:
            return []
        t = self._track(scope, model, feature, rule.metric)
        try:
            return self._advance(t, rule, scope, model, feature, value, t_ns, windows)
        finally:
            busy = self._busy.setdefault((scope, model, rule.metric), set())
            if t.breach or t.alert_id is not None:
                busy.add(feature)
            else:
                busy.discard(feature)
            if scope == COHORT:
                if t.alert_id is None:
                    self._cohort_open.discard((model, feature, rule.metric))
                else:
                    self._cohort_open.add((model, feature, rule.metric))

    def _advance(
        self, t: _Track, rule: Rule, scope: str, model: str, feature: str, value: float, t_ns: int, windows: int
    ) -> list[AlertEvent]:
        if t.alert_id is None:
            t.breach = t.breach + windows if rule.breaches(value) else 0
            if t.breach < rule.persistence:
                return []
            t.breach, t.calm = 0, 0
            msg = (
                f"{scope} {model} {feature}: {rule.metric} = {value:.4g} "
                f"{'>=' if rule.above else '<='} {rule.threshold} for {rule.persistence} windows"
            )
            if self.store is not None:
                t.alert_id = self.store.open_alert(scope, model, feature, rule.metric, value, rule.threshold, t_ns, msg)
            else:
                t.alert_id, self._next_id = self._next_id, self._next_id + 1
            if scope not in (FLEET, COHORT):
                self._drifting.setdefault((model, feature, rule.metric), set()).add(scope)
            return [
                self.publish(
                    AlertEvent(t.alert_id, "open", scope, model, feature, rule.metric, value, rule.threshold, t_ns, msg)
                )
            ]
        t.calm = t.calm + windows if rule.clears(value) else 0
        if t.calm < rule.persistence:
            return []
        alert_id, t.alert_id, t.calm = t.alert_id, None, 0
        self._drifting.get((model, feature, rule.metric), set()).discard(scope)
        if self.store is not None:
            self.store.set_alert_state(alert_id, "resolved", t_ns)
        msg = f"{scope} {model} {feature}: {rule.metric} = {value:.4g} past {rule.clear} for {rule.persistence} windows"
        return [
            self.publish(
                AlertEvent(alert_id, "resolved", scope, model, feature, rule.metric, value, rule.clear, t_ns, msg)
            )
        ]

    # ---------------------------------------------------------------------------------------- lifecycle

    def acknowledge(self, alert_id: int, t_ns: int) -> AlertEvent:
        """An operator acknowledged ``alert_id`` (it stays tracked and resolves when the signal clears)."""
        if self.store is not None:
            row = self.store.set_alert_state(alert_id, "acknowledged", t_ns)
            ev = AlertEvent(
                row.id,
                row.state,
                row.scope,
                row.model,
                row.feature,
                row.metric,
                row.value,
                row.threshold,
                t_ns,
                row.message,
            )
        else:
            key = next((k for k, t in self._tracks.items() if t.alert_id == alert_id), None)
            if key is None:
                raise ConfigError(f"alert id: expected an open alert, got {alert_id}")
            ev = AlertEvent(alert_id, "acknowledged", *key, math.nan, math.nan, t_ns, "acknowledged")
        return self.publish(ev)

    def restore(self) -> int:
        """After a restart: take the store's unresolved alerts back into the tracks, so they resolve when their
        signal clears instead of staying open forever. Returns how many were restored."""
        if self.store is None:
            return 0
        rows = [a for a in self.store.alerts(limit=100_000) if a.state != "resolved"]
        for a in rows:
            self._track(a.scope, a.model, a.feature, a.metric).alert_id = a.id
            self._busy.setdefault((a.scope, a.model, a.metric), set()).add(a.feature)
            if a.scope == COHORT:
                self._cohort_open.add((a.model, a.feature, a.metric))
            if a.scope not in (FLEET, COHORT):
                self._drifting.setdefault((a.model, a.feature, a.metric), set()).add(a.scope)
        return len(rows)

    def open_alerts(self) -> list[tuple[str, str, str, str]]:
        """Keys ``(scope, model, feature, metric)`` with an alert open (or acknowledged) now."""
        return sorted(k for k, t in self._tracks.items() if t.alert_id is not None)

    def publish(self, event: AlertEvent) -> AlertEvent:
        """Count ``event`` and send it to every sink (on the calling thread)."""
        self.events += 1
        for sink in self.sinks:
            sink.emit(event)
        return event
