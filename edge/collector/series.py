"""Drift series: the recent evaluations of each (scope, model), for the HTTP API and the dashboard.

The HTTP threads read bounded rings in memory; the scoring thread appends to them and persists each point it
appends (:meth:`DriftSeries.append` returns it) in the transaction that moves its cursor
(:mod:`edge.collector.scoring_log`), and a restarted collector loads them back (:meth:`DriftSeries.load`), so the
dashboard shows the same history before and after a restart. One lock guards the rings.

At most ``max_rings`` rings stay in memory, the least recently appended evicted first (the fleet's are kept): a
fleet of many devices, or a flood of new device ids, does not hold every device's history in memory. An evicted
ring's points are in the store (persisted when they were appended); :attr:`DriftSeries.reader` reads them back for
the HTTP API.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.collector.engine import FLEET, Evaluation
from edge.errors import ConfigError

__all__ = ["DriftSeries", "SeriesPoint"]


@dataclass(frozen=True)
class SeriesPoint:
    t_ns: int
    features: tuple[str, ...]
    samples: tuple[int, ...]
    scores: dict[str, tuple[float, ...]]
    ops: dict[str, float]


def _point(t_ns: int, p: dict[str, Any]) -> SeriesPoint:
    """A point as :meth:`DriftSeries.append` returned it for the store, read back."""
    return SeriesPoint(t_ns, tuple(p["features"]), tuple(p["samples"]), {k: tuple(v) for k, v in p["scores"].items()},
                       dict(p["ops"]))  # fmt: skip


def _clean(x: float) -> float | None:
    return None if not math.isfinite(x) else x


class DriftSeries:
    """The last ``capacity`` evaluations of each (scope, model) at each horizon kept: ``horizon`` (the primary one,
    what a query without a horizon gets) and ``more`` (the collector's other horizons). ``max_rings``: the rings
    kept in memory (None: all); ``reader``: ``(scope, model, horizon, limit) -> [(t_ns, point map), ...]`` (oldest
    first) for a ring evicted from memory (None: an evicted ring reads as empty)."""

    def __init__(
        self, horizon: int, capacity: int = 600, more: Sequence[int] = (), max_rings: int | None = None
    ) -> None:
        self.horizon = horizon
        self.horizons = (horizon, *(h for h in more if h != horizon))
        self.capacity = capacity
        self.max_rings = max_rings
        self.reader: Callable[[str, str, int, int], list[tuple[int, dict[str, Any]]]] | None = None
        self.evicted = 0
        self._lock = threading.Lock()
        self._rings: OrderedDict[tuple[str, str, int], deque[SeriesPoint]] = OrderedDict()  # least recent first
        self._known: set[tuple[str, str, int]] = set()  # every ring's key, kept or evicted

    def append(self, ev: Evaluation) -> tuple[str, str, int, int, dict[str, Any]] | None:
        """Keep ``ev`` (when its horizon is kept); returns it as ``(scope, model, horizon, t_ns, point)`` for the
        scoring log (``point``: a msgpack-able map :meth:`load` reads), else None."""
        if ev.horizon not in self.horizons:
            return None
        point = SeriesPoint(
            ev.t_ns,
            ev.features,
            tuple(int(s) for s in ev.samples),
            {k: tuple(float(x) for x in v) for k, v in ev.scores.items()},
            dict(ev.ops),
        )
        self._keep((ev.scope, ev.model, ev.horizon), point)
        stored = {"features": list(point.features), "samples": list(point.samples),
                  "scores": {k: list(v) for k, v in point.scores.items()}, "ops": point.ops}  # fmt: skip
        return ev.scope, ev.model, ev.horizon, ev.t_ns, stored

    def load(self, points: list[tuple[str, str, int, int, dict[str, Any]]]) -> None:
        """Keep persisted points (oldest first, as :meth:`append` returned them); those of horizons not kept are
        left out."""
        rings: OrderedDict[tuple[str, str, int], list[SeriesPoint]] = OrderedDict()  # least recent first
        for scope, model, horizon, t_ns, p in points:
            if horizon in self.horizons:
                key = (scope, model, horizon)
                rings.setdefault(key, []).append(_point(t_ns, p))
                rings.move_to_end(key)
        with self._lock:
            for key, kept in rings.items():
                self._rings[key] = deque(kept, maxlen=self.capacity)
                self._rings.move_to_end(key)
                self._known.add(key)
                self._evict()

    def _keep(self, key: tuple[str, str, int], point: SeriesPoint) -> None:
        with self._lock:
            ring = self._rings.get(key)
            if ring is not None:
                self._rings.move_to_end(key)
                ring.append(point)
                return
            evicted = key in self._known
        # an evicted ring comes back with its history from the store (read outside the lock; one appending thread)
        history = self.reader(*key, self.capacity) if evicted and self.reader is not None else []
        with self._lock:
            ring = self._rings[key] = deque((_point(t_ns, p) for t_ns, p in history), maxlen=self.capacity)
            ring.append(point)
            self._known.add(key)
            self._evict()

    def _evict(self) -> None:
        """Drop the least recently appended rings beyond ``max_rings`` (the fleet's stay; under the lock)."""
        if self.max_rings is None:
            return
        for _ in range(len(self._rings)):
            if len(self._rings) <= self.max_rings:
                return
            key, ring = self._rings.popitem(last=False)
            if key[0] == FLEET:
                self._rings[key] = ring  # to the back
            else:
                self.evicted += 1

    def _points(self, key: tuple[str, str, int], limit: int) -> list[SeriesPoint]:
        """The last ``limit`` points of ``key``'s ring, from memory, or from the store when it was evicted."""
        with self._lock:
            ring = self._rings.get(key)
            if ring is not None:
                return list(ring)[-limit:]
            known = key in self._known
        if not known or self.reader is None:
            return []
        return [_point(t_ns, p) for t_ns, p in self.reader(*key, limit)]

    @property
    def rings(self) -> int:
        """Rings in memory (at most ``max_rings`` beside the fleet's)."""
        return len(self._rings)

    def scopes(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted({key[:2] for key in self._known})

    def _horizon(self, horizon: int | None) -> int:
        if horizon is None:
            return self.horizon
        if horizon not in self.horizons:
            raise ConfigError(f"horizon: expected one of {list(self.horizons)} (windows), got {horizon}")
        return horizon

    def latest(self, scope: str, model: str, horizon: int | None = None) -> SeriesPoint | None:
        points = self._points((scope, model, self._horizon(horizon)), 1)
        return points[-1] if points else None

    def series(self, scope: str, model: str, metric: str, horizon: int | None = None) -> dict[str, Any]:
        """``{"t_ns": [...], "features": [...], "values": [[per feature] per point]}`` at ``horizon`` (windows;
        default the primary one; :class:`ConfigError` for one not kept); an ops metric has the single feature
        ``"-"``."""
        h = self._horizon(horizon)
        points = self._points((scope, model, h), self.capacity)
        head = {"scope": scope, "model": model, "metric": metric, "horizon": h}
        if not points:
            return {**head, "t_ns": [], "features": [], "values": []}
        if metric in points[-1].scores:
            features = list(points[-1].features)
            values = [[_clean(v) for v in p.scores.get(metric, ())] for p in points]
        else:
            features = ["-"]
            values = [[_clean(p.ops.get(metric, math.nan))] for p in points]
        return {**head, "t_ns": [p.t_ns for p in points], "features": features, "values": values}

    def heatmap(
        self, scope: str, model: str, metric: str, horizon: int | None = None, columns: int = 60
    ) -> dict[str, Any]:
        """Feature × time: the series cut into at most ``columns`` time buckets, each the bucket's largest value."""
        s = self.series(scope, model, metric, horizon)
        if not s["values"]:
            return {**s, "cells": []}
        v = np.array([[np.nan if x is None else x for x in row] for row in s["values"]], dtype=np.float64)
        groups = np.array_split(np.arange(v.shape[0]), min(columns, v.shape[0]))
        cells = [[_clean(float(np.nanmax(v[g, f]))) if np.any(np.isfinite(v[g, f])) else None for g in groups]
                 for f in range(v.shape[1])]  # fmt: skip
        t = [s["t_ns"][g[-1]] for g in groups]
        head = {k: s[k] for k in ("scope", "model", "metric", "horizon")}
        return {**head, "features": s["features"], "t_ns": t, "cells": cells}
