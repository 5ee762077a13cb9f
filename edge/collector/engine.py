"""The drift engine: live windows merged per (model, device / fleet, feature) over rolling horizons, scored
against the model's reference bins.

Sketches are monoids, so a horizon of ``H`` windows is a running sum (:class:`~edge.collector.rolling.RollingSums`):
each new window is added and the window that falls out of the horizon subtracted (integer counts, exact). The fleet
cohort of a model is the sum of its devices' horizons, kept the same way. A device's queued windows can be merged
as one block (:meth:`DriftEngine.observe_windows`, or :meth:`DriftEngine.observe_digests` for windows digested by
:func:`~edge.collector.frames.window_digest_block`): the sums are those that merging them one by one leaves, in a
constant number of NumPy calls per block, and the horizons are scored once, after the block's last window. A scoring
yields one :class:`Evaluation` for the device and one for the fleet, per horizon (all of them scored in one
:func:`~edge.drift.metrics.drift_rows` call on their stacked counts): PSI, JS, KS and normalized Wasserstein per
feature, the chi-square p-value ``chi2_p`` of the top-1 class counts against the reference profile's (a test of
homogeneity, :func:`_chi2_p`) when the profile has them, and the operational signals: mean confidence, p99 latency
(µs) and its ratio to the latency budget, deadline-miss and fallback rates.

Per-device state is bounded: at most ``max_tracks`` (device, model) tracks are kept, the least recently merged
evicted first. An evicted track's windows stay in the fleet's sums (they are still in its horizons); when the
device sends again, :meth:`DriftEngine.needs_reload` says so and the caller merges the device's last stored windows
back with ``into_fleet=False`` before its new ones (the scoring thread reads them from the store), which rebuilds
the track exactly (integer counts) without counting them twice in the fleet.

Not thread-safe: one thread (the collector's scoring thread) feeds the engine; others take its lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.collector.reference import FeatureReference, ModelReference, PackedReference
from edge.collector.rolling import RollingSums
from edge.drift import metrics
from edge.errors import ConfigError, ProtocolError

__all__ = ["DriftEngine", "Evaluation", "FeatureReference", "ModelReference"]

FLEET = "fleet"
DEFAULT_MAX_TRACKS = 4096  # (device, model) tracks in memory: at most ~0.5 MB each with 32 features, 60 windows
_NO_DEVICES: set[str] = set()
OPS = ("frames", "deadline_misses", "fallbacks", "confidence_n", "confidence_sum")


@dataclass
class Evaluation:
    """One scoring of one scope (a device id or ``"fleet"``) over one horizon (windows), at ``t_ns`` (the end of
    the window that triggered it, device clock). ``samples`` int64 (F,): values per feature in the horizon;
    ``scores``: metric name → float64 (F,); ``ops``: operational signal name → float (NaN when unknown)."""

    scope: str
    model: str
    t_ns: int
    horizon: int
    windows: int
    features: tuple[str, ...]
    samples: np.ndarray
    scores: dict[str, np.ndarray]
    ops: dict[str, float] = field(default_factory=dict)


class DriftEngine:
    """Scores live windows against :class:`ModelReference` objects (one per model string).

    ``horizons``: rolling horizons in windows (e.g. ``(10, 60)`` for 10 s and 1 min of 1 s windows), the first is
    the primary one alerts use by default. ``latency_stage``: the latency sketch used for p99 (µs).
    """

    def __init__(
        self, horizons: Sequence[int] = (10,), latency_stage: str = "total", max_tracks: int = DEFAULT_MAX_TRACKS
    ) -> None:
        if not horizons or any(type(h) is not int or h < 1 for h in horizons):
            raise ConfigError(f"DriftEngine horizons: expected window counts >= 1, got {list(horizons)}")
        if type(max_tracks) is not int or max_tracks < 1:
            raise ConfigError(f"DriftEngine max_tracks: expected an integer >= 1, got {max_tracks!r}")
        self.horizons = tuple(horizons)
        self.latency_stage = latency_stage
        self.max_tracks = max_tracks
        self._refs: dict[str, PackedReference] = {}
        self._lat_edges: dict[str, np.ndarray] = {}
        # (device, model) -> its rolling sums, least recently merged first (at most max_tracks)
        self._tracks: OrderedDict[tuple[str, str], dict[str, RollingSums | None]] = OrderedDict()
        self._evicted: set[tuple[str, str]] = set()  # tracks evicted whose windows are still in the fleet's sums
        self._members: dict[str, set[str]] = {}  # model -> every device with a track, kept or evicted
        self.tracks_evicted = 0
        self._fleet: dict[str, dict[str, dict[int, np.ndarray]]] = {}
        self.windows_scored = 0
        self.windows_skipped = 0

    # ------------------------------------------------------------------------------------------- set-up

    def set_reference(self, reference: ModelReference) -> None:
        self._refs[reference.model] = PackedReference(reference)

    def has_reference(self, model: str) -> bool:
        return model in self._refs

    def observe_hello(self, device: str, hello: Mapping[str, Any]) -> None:
        """Remember the device's latency bin edges (µs) from its hello."""
        self._lat_edges[device] = np.asarray(hello["latency_edges_us"], dtype=np.float64)

    def devices(self, model: str) -> set[str]:
        """The devices with windows of ``model`` in the fleet's sums (their tracks kept or evicted); the engine's
        set: read it, do not change it."""
        return self._members.get(model, _NO_DEVICES)

    def needs_reload(self, device: str, model: str) -> bool:
        """Whether ``device``'s track of ``model`` was evicted: merge its last stored windows (up to the longest
        horizon, those scored before the ones in hand) with ``into_fleet=False`` before its new ones."""
        return (device, model) in self._evicted

    @property
    def tracks(self) -> int:
        """Tracks kept in memory (at most ``max_tracks``)."""
        return len(self._tracks)

    def counts_layout(self, model: str) -> tuple[tuple[str, ...], tuple[int, ...], int, str | None] | None:
        """How ``model``'s window counts are packed for ``observe_window(live=...)``: feature names in row order,
        counts per feature (edges + 2), row width (a row is ``c[:-1]``, zeros, the NaN count last), and the
        confidence feature whose moments it reads (or None). None without a reference."""
        p = self._refs.get(model)
        if p is None:
            return None
        return p.names, p.lengths, p.width, None if p.confidence is None else p.names[p.confidence]

    # --------------------------------------------------------------------------------------------- windows

    def observe_window(
        self,
        device: str,
        body: Mapping[str, Any],
        t_ns: int,
        *,
        score_fleet: bool = True,
        score: bool = True,
        live: np.ndarray | None = None,
        into_fleet: bool = True,
    ) -> list[Evaluation]:
        """Merge one validated window body into the device's and the fleet's horizons and score them: the device's
        primary horizon always; its longer horizons and the fleet unless ``score_fleet`` is False (the server
        scores those once per model and ingested batch, the alerts use the primary horizon). With ``score`` False
        the window is only merged (``[]``). ``[]`` (and ``windows_skipped`` + 1) when the window's model has no
        reference. :class:`ProtocolError` when the window does not match the reference's features and bins.
        ``live``: the window's feature counts already packed (float64 (F, B), :meth:`counts_layout`; the
        caller's), then ``body["features"]`` is read only for the confidence feature's moments. ``into_fleet``
        False: the device's track only (an evicted track rebuilt, :meth:`needs_reload`)."""
        packed = self._refs.get(body["model"])
        if packed is None:
            self.windows_skipped += 1
            return []
        if live is None:
            live = packed.pack(body["model"], body["features"])
        return self.observe_windows(
            device, [body], t_ns, live[None], score_fleet=score_fleet, score=score, into_fleet=into_fleet
        )

    def observe_windows(
        self,
        device: str,
        bodies: Sequence[Mapping[str, Any]],
        t_ns: int,
        live: np.ndarray,
        *,
        score_fleet: bool = True,
        score: bool = True,
        into_fleet: bool = True,
    ) -> list[Evaluation]:
        """Merge ``k`` validated windows of one device and one model at once (oldest first; ``bodies`` as
        :meth:`observe_window` reads them, their feature counts packed in ``live`` float64 (k, F, B), the
        caller's) and score the horizons once, at ``t_ns`` (the last window's end): exactly what ``k`` calls of
        :meth:`observe_window` with ``score`` True only for the last would leave (counts are integers, their sums
        exact; the confidence sums agree to rounding), in a constant number of NumPy calls per block. The scoring
        thread merges a backlog of a device's windows this way. ``[]`` (and ``windows_skipped`` + k) without a
        reference; :class:`ProtocolError` when ``live`` is not in the reference's layout."""
        count = len(bodies)
        model = bodies[0]["model"] if count else None
        packed = self._refs.get(model) if count else None
        if packed is None:
            self.windows_skipped += count
            return []
        if live.shape != (count, *packed.counts.shape):
            raise ProtocolError(f"{model!r} window counts: expected ({count}, {packed.counts.shape}), got {live.shape}")
        conf = None if packed.confidence is None else packed.names[packed.confidence]
        rows = []
        for body in bodies:  # the operational counters: a few values per window
            counters = body.get("counters", {})
            row = [counters.get("frames", 0), counters.get("deadline_misses", 0), counters.get("fallbacks", 0), 0, 0]
            if conf is not None:
                m = body["features"][conf]["m"]
                if m[0] > 0:
                    row[3], row[4] = m[0], m[0] * m[1]
            rows.append(row)
        ops = np.array(rows, dtype=np.float64)
        lat = preds = None
        first = [False, False]  # the first window has latency / prediction counts
        lat_edges = self._lat_edges.get(device)
        if lat_edges is not None:  # windows whose latency sketch fits the hello's edges (the others skip it)
            n_lat = lat_edges.size + 2
            fits = [st is not None and len(st["c"]) == n_lat for st in
                    (body.get("latency", {}).get(self.latency_stage) for body in bodies)]  # fmt: skip
            lat_rows = [body["latency"][self.latency_stage]["c"] for body, f in zip(bodies, fits, strict=True) if f]
            lat = np.array(lat_rows, dtype=np.float64).reshape(len(lat_rows), n_lat) if lat_rows else None
            first[0] = fits[0]
        if packed.ref.predictions is not None:
            n_pred = packed.ref.predictions.size
            pred_rows = [body["predictions"] for body in bodies if len(body.get("predictions", ())) == n_pred]
            preds = np.array(pred_rows, dtype=np.float64).reshape(len(pred_rows), n_pred) if pred_rows else None
            first[1] = len(bodies[0].get("predictions", ())) == n_pred
        return self._merge(device, packed, t_ns, live, ops, lat, preds, first, score_fleet, score, into_fleet)

    def digest_layout(self, device: str, model: str) -> tuple[Any, ...] | None:
        """What :func:`~edge.collector.frames.window_digest_block` needs to digest ``device``'s windows of
        ``model`` for :meth:`observe_digests`: ``(names, lengths, width, moments_row, stage, n_lat, n_pred)`` (the
        counts layout of :meth:`counts_layout`, the confidence feature's row or -1, the latency stage and its
        count (edges + 2 of the device's hello, -1 without one), the reference's class count (-1 without));
        None without a reference. Valid until the next hello of the device or reference of the model."""
        p = self._refs.get(model)
        if p is None:
            return None
        lat_edges = self._lat_edges.get(device)
        n_lat = -1 if lat_edges is None else lat_edges.size + 2
        n_pred = -1 if p.ref.predictions is None else p.ref.predictions.size
        moments_row = -1 if p.confidence is None else p.confidence
        return p.names, p.lengths, p.width, moments_row, self.latency_stage, n_lat, n_pred

    def observe_digests(
        self,
        device: str,
        model: str,
        t_ns: int,
        live: np.ndarray,
        extra: np.ndarray,
        *,
        score_fleet: bool = True,
        score: bool = True,
        into_fleet: bool = True,
    ) -> list[Evaluation]:
        """:meth:`observe_windows` for ``k`` windows digested by
        :func:`~edge.collector.frames.window_digest_block` with :meth:`digest_layout` (``live`` float64
        (k, F, B), ``extra`` float64 (k, X); the caller's): the same merge and scores, no body read."""
        packed = self._refs.get(model)
        count = live.shape[0]
        if packed is None:
            self.windows_skipped += count
            return []
        layout = self.digest_layout(device, model)
        assert layout is not None
        n_lat, n_pred = layout[5], layout[6]
        lat_at, pred_at = 5, 6 + max(n_lat, 0)
        if live.shape[1:] != packed.counts.shape or extra.shape != (count, pred_at + 1 + max(n_pred, 0)):
            raise ProtocolError(
                f"{model!r} digests: expected counts ({count}, {packed.counts.shape}) and extra ({count}, "
                f"{pred_at + 1 + max(n_pred, 0)}), got {live.shape} and {extra.shape}"
            )
        lat = preds = None
        if n_lat >= 0:
            rows = extra[:, lat_at] == 1.0
            if rows.any():
                lat = extra[rows, lat_at + 1 : lat_at + 1 + n_lat]
        if n_pred >= 0:
            rows = extra[:, pred_at] == 1.0
            if rows.any():
                preds = extra[rows, pred_at + 1 : pred_at + 1 + n_pred]
        first = [n_lat >= 0 and extra[0, lat_at] == 1.0, n_pred >= 0 and extra[0, pred_at] == 1.0]
        return self._merge(device, packed, t_ns, live, extra[:, :5], lat, preds, first, score_fleet, score, into_fleet)

    def _merge(
        self,
        device: str,
        packed: PackedReference,
        t_ns: int,
        live: np.ndarray,
        ops: np.ndarray,
        lat: np.ndarray | None,
        preds: np.ndarray | None,
        first: list[bool],
        score_fleet: bool,
        score: bool,
        into_fleet: bool = True,
    ) -> list[Evaluation]:
        """Push a block of windows' parts (each (k, ...), or (m, ...) for the windows that have it, or None).
        ``first``: whether the block's first window has latency / prediction counts: a device's track sums them
        only when its first window has them (as window by window). ``into_fleet`` False: the track only."""
        model = packed.ref.model
        count = live.shape[0]
        key = (device, model)
        track = self._tracks.get(key)
        if track is not None:
            self._tracks.move_to_end(key)
        else:
            while len(self._tracks) >= self.max_tracks:  # the least recently merged track goes; its windows stay
                old, _ = self._tracks.popitem(last=False)  # in the fleet's sums, its next window reloads it
                self._evicted.add(old)
                self.tracks_evicted += 1
            self._evicted.discard(key)
            self._members.setdefault(model, set()).add(device)
            track = self._tracks[key] = {
                "counts": RollingSums(self.horizons, live.shape[1:]),
                "ops": RollingSums(self.horizons, ops.shape[1:]),
                "lat": None if lat is None or not first[0] else RollingSums(self.horizons, lat.shape[1:]),
                "preds": None if preds is None or not first[1] else RollingSums(self.horizons, preds.shape[1:]),
            }
        fleet = self._fleet.setdefault(model, {})
        parts = {"counts": live, "ops": ops, "lat": lat, "preds": preds}
        for part, x in parts.items():
            roll = track[part]
            if roll is None or x is None or roll.ring.shape[1:] != x.shape[1:]:
                continue
            deltas = roll.push_block(x)
            if not into_fleet:
                continue
            sums = fleet.setdefault(part, {})
            for h, delta in deltas.items():
                total = sums.get(h)
                if total is None:
                    total = sums[h] = np.zeros_like(delta)
                if total.shape == delta.shape:
                    total += delta
        self.windows_scored += count
        out: list[Evaluation] = []
        if not score:
            return out
        n = track["counts"].n
        scopes = []
        for h in self.horizons:
            if not score_fleet and h != self.horizons[0]:
                continue  # the primary horizon is scored every window; the longer ones with the fleet
            scopes.append((device, h, {key: r.sums[h] for key, r in _live(track)}))
            if score_fleet:
                scopes.append((FLEET, h, {key: v[h] for key, v in fleet.items() if h in v}))
        scores = self._drift(packed, [sums["counts"] for _, _, sums in scopes])
        return [
            self._score(scope, packed, t_ns, h, min(n, h), sums, rows, lat_device=device)
            for (scope, h, sums), rows in zip(scopes, scores, strict=True)
        ]

    @staticmethod
    def _drift(packed: PackedReference, counts: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """:func:`~edge.drift.metrics.drift_rows` of several scopes' counts (each float64 (F, B)) in one call on
        their stack (the metrics are row-wise: the same values as one call each); each scope's rows are views."""
        m = len(counts)
        reference, positions, std = packed.tiled(m)
        rows = metrics.drift_rows(np.concatenate(counts), reference, positions, std)
        f = packed.counts.shape[0]
        return [{name: v[i * f : (i + 1) * f] for name, v in rows.items()} for i in range(m)]

    def _score(
        self,
        scope: str,
        packed: PackedReference,
        t_ns: int,
        h: int,
        windows: int,
        sums: dict[str, np.ndarray],
        scores: dict[str, np.ndarray],
        lat_device: str | None = None,
    ) -> Evaluation:
        counts = sums["counts"]
        ops_sum = sums.get("ops")
        ops: dict[str, float] = {}
        if ops_sum is not None:
            frames = ops_sum[0]
            ops["deadline_miss_rate"] = float(ops_sum[1] / frames) if frames > 0 else float("nan")
            ops["fallback_rate"] = float(ops_sum[2] / frames) if frames > 0 else float("nan")
            ops["confidence_mean"] = float(ops_sum[4] / ops_sum[3]) if ops_sum[3] > 0 else float("nan")
        lat = sums.get("lat")
        edges = self._lat_edges.get(lat_device or scope)
        if lat is not None and edges is not None and lat.size == edges.size + 2:
            p99 = metrics.histogram_quantile(lat, edges, 0.99)
            ops["p99_latency_us"] = p99
            budget = packed.ref.latency_budget_us
            if budget:
                ops["p99_latency_ratio"] = p99 / budget
        preds = sums.get("preds")
        if preds is not None and packed.ref.predictions is not None:
            ops["chi2_p"] = _chi2_p(preds, packed.ref.predictions)
        samples = counts.sum(axis=1).astype(np.int64)
        return Evaluation(scope, packed.ref.model, t_ns, h, windows, packed.names, samples, scores, ops)


def _chi2_p(live: np.ndarray, reference: np.ndarray) -> float:
    """The p-value of Pearson's chi-square test of homogeneity of the live and the reference top-1 class counts
    (the 2 × K contingency table, ``K - 1`` degrees of freedom, no continuity correction: what
    ``scipy.stats.chi2_contingency(table, correction=False)`` computes). A two-sample test, not a goodness-of-fit
    test against the reference proportions: the reference is itself a sample (the profile's held-out frames), and
    treating its proportions as exact inflates the statistic by about ``1 + n_live / n_ref`` under no drift (a
    500-frame horizon on a 1500-frame reference: 1.33, which turns a 1 % false-alarm level into about 4.5 % at 5
    degrees of freedom). K counts the classes that either side has seen: a class neither ever
    predicts carries no information (a 1000-class model whose frames use 12 classes is a 12-class test). 1.0 when
    either side is empty or only one class is seen."""
    seen = (reference > 0) | (live > 0)
    k = int(np.count_nonzero(seen))
    if k < 2 or live.sum() <= 0 or reference.sum() <= 0:
        return 1.0
    table = np.stack([live[seen], reference[seen].astype(np.float64)])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    from scipy.special import chdtrc  # scipy is the collector's dependency (as in edge.drift.metrics)

    return float(chdtrc(k - 1, stat))


def _live(track: dict[str, RollingSums | None]) -> list[tuple[str, RollingSums]]:
    return [(k, r) for k, r in track.items() if r is not None]
