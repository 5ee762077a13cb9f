"""The scoring worker: drift scoring and alerting off the ingest (ack) path, reading the store through a cursor.

The store is the log between ingest and scoring, and a persistent cursor (:mod:`edge.collector.scoring_log`: the
rowid of the last window scored, and the count of windows scored) says how far scoring has read it. Each scoring
batch ends in one transaction that appends the batch's drift series points and moves the cursor, so a crash or a
restart resumes just after the last window whose results were kept: every stored window is scored exactly once.
On start the worker rebuilds the engine's rolling horizons from the stored windows up to the cursor (each device's
last ``max(horizons)`` windows: sketches are monoids, a horizon is the sum of its windows, so nothing but the
windows needs keeping), then scores what was stored after it.

The fast path stays in memory: the ingest thread commits and acks, then hands each commit's newly stored windows
``(rowid, device, t_ns, frame)`` to :meth:`ScoringWorker.submit` as one item of a bounded queue (``capacity``
windows waiting), and the worker scores them without reading the store. A commit that finds the queue full is not
queued: the worker reads the windows it missed from the store instead (counted in ``windows_from_store``, as are
those it catches up on at start); windows at or below the cursor are never scored again. The windows of a store
made before the cursor existed are scored once, batch by batch apart from live ones, without evaluating alerts
(their series come back; a webhook does not hear of them again). :meth:`drain` waits
until the cursor reaches the newest window submitted; :meth:`close` stops after the batch in hand (nothing needs
draining: the next start resumes from the cursor).

The worker owns the :class:`~edge.collector.engine.DriftEngine` (under ``lock``, which the ingest thread also takes
for a hello), the :class:`~edge.collector.alerts.AlertPolicy` and its sinks (the PUB sink's socket is made and used
on this thread only). It takes up to ``batch_windows`` windows at once and scores them in arrival order: the
windows of each device (and model) are merged into its horizons as one block (exact: counts add) and scored once,
after the last one, and that evaluation counts as that many windows for alert persistence
(``AlertPolicy.evaluate(windows=k)``); the longer horizons and the fleet are scored once per model per batch.

A window reaches the engine as a digest: a device's windows are read together by
:func:`~edge.collector.frames.window_digest_block`, which packs their feature counts straight into one block in the
engine's layout (float64 (k, F, B)) and the counters, confidence moments, latency and prediction counts into
another, building no Python object per window and, natively, without holding the GIL (the ingest and commit
threads run meanwhile); :meth:`~edge.collector.engine.DriftEngine.observe_digests` merges them. A device's first
window (and any window the digest declines: another model, a feature missing or of another length, a repeated key)
is decoded whole, and the engine says what is wrong with it.

The worker shares the interpreter with the ingest and commit threads, which hold the GIL only briefly between I/O
waits; ``edge collector`` shortens the interpreter's switch interval so that they get it back within half a
millisecond of asking rather than five (a process-wide setting, so the program sets it, not this library).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from edge.collector.alerts import AlertEvent, AlertPolicy, AlertSink
from edge.collector.engine import DriftEngine
from edge.collector.frames import window_digest_block
from edge.collector.scoring_log import CursorMoved, StoredWindow
from edge.collector.series import DriftSeries
from edge.collector.stores import ScoringCursorLog
from edge.errors import EdgeError

__all__ = ["ScoringWorker"]

log = logging.getLogger("edge.collector")

# a window for the engine: t_ns, its body decoded whole (or None), the (counts, extra) block holding its digest
# (or None), its row there
_Entry = tuple[int, "dict[str, Any] | None", "tuple[np.ndarray, np.ndarray] | None", int]


class _Stopped(Exception):
    """:meth:`ScoringWorker.close` was called while a batch was being scored: that batch is dropped unkept."""


class ScoringWorker:
    """A thread that scores stored windows from ``scoring_log``'s cursor on; ``counters`` (shared with the server)
    gets ``windows_scored``, ``windows_from_store``, ``engine_errors`` and ``alerts``. ``make_sinks`` runs on the
    worker thread at start and returns the sinks and those of them this thread closes when it stops (e.g. the PUB
    sink, whose socket it owns). The worker closes ``scoring_log`` when it stops."""

    def __init__(
        self,
        engine: DriftEngine,
        policy: AlertPolicy,
        series: DriftSeries,
        counters: dict[str, int],
        make_sinks: Callable[[], tuple[list[AlertSink], list[Any]]],
        scoring_log: ScoringCursorLog,
        capacity: int = 16384,
    ) -> None:
        self.engine, self.policy, self.series, self.counters = engine, policy, series, counters
        self.log = scoring_log
        self.lock = threading.Lock()
        self.capacity = capacity
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()  # lists of windows or of one alert event, in submission order
        self._waiting = 0  # windows and events queued, not yet taken by the worker
        self._events = 0  # alert events submitted, not yet published
        self.cursor, self.scored_total = scoring_log.cursor()  # the worker's (persisted after each batch)
        self._committed = self.cursor  # the cursor as this scorer last wrote it to the store
        self.overtaken = False  # another scorer moved the store's cursor: this one stopped (CursorMoved)
        self._target = max(self.cursor, scoring_log.last_window_id())  # the newest window drain() waits for
        self._quiet_until = scoring_log.quiet_until()  # history from before the cursor: scored, not alerted on
        self._behind = True  # read the store (at start: what was stored after the cursor)
        self._stopping = False
        self._idle = False  # the worker waits for work
        self._make_sinks = make_sinks
        self.batch_windows = 1024  # taken at once at most: bounds the block arrays (about 5 MB at 32 features)
        self._models: dict[str, Any] = {}  # device → the model of its last window decoded whole
        self._last_model: Any = None  # the model of the last window decoded whole, any device's
        self.on_read: Callable[[list[StoredWindow]], None] | None = None  # called with each batch read from the store
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge-collector-scoring", daemon=True)

    def start(self, timeout_s: float = 10.0) -> ScoringWorker:
        self._thread.start()
        self._ready.wait(timeout_s)
        return self

    # --------------------------------------------------------------------------------------------- producer

    def submit(self, windows: list[StoredWindow]) -> None:
        """Queue ``(rowid, device, t_ns, frame)`` windows (committed, in rowid order; ``frame``: the validated
        record frame, read again here) as one item; never blocks the ingest thread. When they do not fit in
        ``capacity`` waiting windows, none is queued and the worker reads them from the store."""
        if not windows:
            return
        with self._cond:
            self._target = max(self._target, max(w[0] for w in windows))
            if self._waiting + len(windows) <= self.capacity:
                self._items.append(windows)
                self._waiting += len(windows)
            else:
                self._behind = True
            self._cond.notify()

    def publish(self, event: AlertEvent) -> None:
        """Send an alert transition made elsewhere (an operator's acknowledgement) to the sinks, on this thread."""
        with self._cond:
            self._items.append([event])
            self._waiting += 1
            self._events += 1
            self._cond.notify()

    def poke(self) -> None:
        """Read the store after the cursor: other processes (fleet workers) stored windows this one was not handed."""
        with self._cond:
            self._behind = True
            self._cond.notify()

    @property
    def stopping(self) -> bool:
        """:meth:`close` was called: the worker ends after the batch in hand."""
        return self._stopping

    @property
    def queued(self) -> int:
        """Windows (and alert events) waiting for the scoring thread in memory."""
        return self._waiting

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until the worker is idle with nothing left: every window submitted (or stored before the start)
        scored and every event published; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._idle or self._items or self._behind or self.cursor < self._target or self._events:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop now: the batch in hand is abandoned between two devices, unkept (neither its series points nor the
        cursor move), and scored again from the cursor at the next start, like everything still queued. Nothing is
        drained. A thread that still does not stop in ``timeout_s`` (stuck in the store) is left to die with the
        process, logged: the cursor is the truth either way."""
        if self._thread.is_alive():
            with self._cond:
                self._stopping = True
                self._cond.notify()
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("collector: the scoring thread did not stop within %.1f s; leaving it (it resumes from "
                            "the cursor at the next start)", timeout_s)  # fmt: skip
        else:
            self.log.close()

    # --------------------------------------------------------------------------------------------- worker

    def _take(self) -> tuple[list[Any], bool]:
        """Wait for work; take up to ``batch_windows`` items in order (a long list is split), or, when behind,
        read them from the store. ``(items, stop)``."""
        batch: list[Any] = []
        with self._cond:
            self._idle = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._items or self._behind or self._stopping)
            self._idle = False
            if self._stopping:
                return batch, True
            behind, self._behind = self._behind, False
            while not behind and self._items and len(batch) < self.batch_windows:
                head = self._items[0]
                room = self.batch_windows - len(batch)
                if len(head) <= room:
                    batch += self._items.popleft()
                else:
                    batch += head[:room]
                    self._items[0] = head[room:]
            self._waiting -= len(batch)
        if behind:  # every window after the cursor, from the store; queued ones at or below it are skipped later
            batch = self.log.windows_after(self.cursor, self.batch_windows)
            full = len(batch) == self.batch_windows
            if batch and self.cursor < self._quiet_until < batch[-1][0]:  # a batch is history or live, not both
                batch, full = [w for w in batch if w[0] <= self._quiet_until], True
            self.counters["windows_from_store"] += len(batch)
            if batch and self.on_read is not None:
                self.on_read(batch)
            if full:
                with self._cond:
                    self._behind = True
        return batch, False

    def _run(self) -> None:
        try:
            sinks, owned = self._make_sinks()
        except BaseException as exc:  # reported to the server's constructor
            self.error = exc
            self._ready.set()
            self.log.close()
            return
        self.policy.sinks = sinks
        self._ready.set()
        try:
            self._restore()
            while True:
                try:
                    batch, stop = self._take()
                except Exception as exc:  # the store did not answer (a PostgreSQL restart): read it again shortly
                    log.warning("collector: scoring could not read the store (%s); retrying", exc)
                    with self._cond:
                        self._behind = True
                        self._cond.wait_for(lambda: self._stopping, 0.5)
                    continue
                if stop:
                    return
                try:
                    self._score_batch(batch)
                except CursorMoved as exc:  # another scorer took over: this one's horizons are behind the store
                    log.error("collector: scoring stops: %s", exc)
                    self.counters["cursor_conflicts"] += 1
                    self.overtaken = True
                    return
                except Exception:  # a bug must not stop scoring
                    log.exception("collector: scoring batch failed")
        finally:
            for sink in owned:
                sink.close()
            self.log.close()
            with self._cond:
                self._cond.notify_all()

    def _restore(self) -> None:
        """Rebuild the engine's rolling horizons from each device's last stored windows up to the cursor (merged,
        not scored: their scores were kept when they were scored)."""
        recent = self.log.recent_windows(self.cursor, max(self.engine.horizons))
        with self.lock:
            scored, skipped = self.engine.windows_scored, self.engine.windows_skipped
            # the most recently active devices last: beyond the engine's max_tracks the others are evicted (their
            # windows in the fleet's sums), and reloaded when they send again
            for device, rows in sorted(recent.items(), key=lambda item: item[1][-1][0]):
                if self._stopping:  # the next start rebuilds them again
                    return
                groups: dict[tuple[str, Any], list[_Entry]] = {}
                self._digest(device, [(t_ns, frame) for _, _, t_ns, frame in rows], groups)
                for (dev, model), group in groups.items():
                    self._score(dev, model, group, score_fleet=False, replay=True)
            self.engine.windows_scored, self.engine.windows_skipped = scored, skipped

    def _score_batch(self, batch: list[Any]) -> None:
        """Score ``batch``'s windows above the cursor and publish its events; then persist the series points it
        made and the cursor, in one transaction."""
        events = [item for item in batch if isinstance(item, AlertEvent)]
        for event in events:
            self.counters["alerts"] += 1
            self.policy.publish(event)
        windows = [w for w in batch if not isinstance(w, AlertEvent) and w[0] > self.cursor]
        points: list[Any] = []
        last = max((w[0] for w in windows), default=self.cursor)
        stopped = False
        try:
            if windows:
                self._score_windows(windows, points, alert=last > self._quiet_until)
        except _Stopped:  # nothing of this batch is kept: the next start scores it from the cursor
            stopped = True
        finally:  # also after a bug: these windows are consumed (merging them again would count them twice)
            moved = False
            try:
                if windows and not stopped:
                    self.scored_total += len(windows)
                    try:  # from where this scorer last wrote it (a failed commit leaves the store's cursor there)
                        self.log.commit(last, self.scored_total, points, after=self._committed)
                    except CursorMoved:
                        moved = True
                        raise
                    self._committed = last
            finally:
                with self._cond:
                    if windows and not stopped and not moved:
                        self.cursor = last
                    self._events -= len(events)
                    self._cond.notify_all()

    def _score_windows(self, windows: list[StoredWindow], points: list[Any], alert: bool = True) -> None:
        """Digest and score ``windows`` (device by device, the fleet once per model); their series points are
        appended to ``points``; alerts are evaluated unless ``alert`` is False (history)."""
        by_device: dict[str, list[tuple[int, bytes]]] = {}
        for _, device, t_ns, frame in windows:
            by_device.setdefault(device, []).append((t_ns, frame))
        with self.lock:
            groups: dict[tuple[str, Any], list[_Entry]] = {}
            for device, items in by_device.items():
                if self._stopping:
                    raise _Stopped
                self._digest(device, items, groups)
            last_of_model = {model: i for i, (_, model) in enumerate(groups)}
            for i, ((device, model), group) in enumerate(groups.items()):  # the fleet: once per model and batch
                if self._stopping:
                    raise _Stopped
                if self.engine.needs_reload(device, model):
                    self._reload(device, model)
                points += self._score(device, model, group, score_fleet=last_of_model[model] == i, alert=alert)
            self.counters["tracks_evicted"] = self.engine.tracks_evicted

    def _reload(self, device: str, model: Any) -> None:
        """Rebuild ``device``'s evicted track of ``model`` from its last stored windows scored so far (up to the
        cursor; its windows in hand are above it): merged into the track only, the fleet's sums have them."""
        want = limit = max(self.engine.horizons)
        while True:  # a device that sends several models: read further back until the horizon is full
            rows = self.log.device_windows(device, self.cursor, limit)
            groups: dict[tuple[str, Any], list[_Entry]] = {}
            self._digest(device, [(t_ns, frame) for _, _, t_ns, frame in rows], groups)
            group = groups.get((device, model), [])
            if len(group) >= want or len(rows) < limit:
                break
            limit *= 4
        group = group[-want:]
        scored, skipped = self.engine.windows_scored, self.engine.windows_skipped
        if group:
            self._score(device, model, group, score_fleet=False, replay=True, into_fleet=False)
        self.engine.windows_scored, self.engine.windows_skipped = scored, skipped
        self.counters["tracks_reloaded"] += 1

    def _digest(self, device: str, items: list[tuple[int, bytes]], groups: dict[tuple[str, Any], list[_Entry]]) -> None:
        """What the engine reads of a device's queued windows, appended to ``groups[(device, model)]`` in order:
        with the device's model known and referenced, all of them digested at once, without the GIL, by
        :func:`~edge.collector.frames.window_digest_block` (their counts into one block (k, F, B), the counters,
        latency and prediction counts into another; no Python objects per window); a window it declines (another
        model, or one the engine will refuse) is decoded whole. A device's first windows are tried as the model
        last decoded (a fleet runs few models: a flood of new devices is digested too)."""
        model = self._models.get(device, self._last_model)
        layout = None if model is None else self.engine.digest_layout(device, model)
        ok = None
        if layout is not None:
            names, _, width, _, _, n_lat, n_pred = layout
            k = len(items)
            live = np.empty((k, len(names), width))
            extra = np.empty((k, 7 + max(n_lat, 0) + max(n_pred, 0)))
            ok = np.empty(k, np.uint8)
            frames = [frame for _, frame in items]
            window_digest_block(frames, model, *layout, live, extra, ok)
            block = (live, extra)
        for i, (t_ns, frame) in enumerate(items):
            if ok is not None and ok[i]:
                groups.setdefault((device, model), []).append((t_ns, None, block, i))
                continue
            body = msgpack.unpackb(frame, raw=False)["body"]  # validated before it was stored
            self._models[device] = self._last_model = body.get("model")
            groups.setdefault((device, body.get("model")), []).append((t_ns, body, None, 0))

    def _score(
        self,
        device: str,
        model: Any,
        group: list[_Entry],
        score_fleet: bool,
        replay: bool = False,
        alert: bool = True,
        into_fleet: bool = True,
    ) -> list[tuple[str, str, int, int, dict[str, Any]]]:
        """Merge a device's queued windows of one model, score once after the last one: each run of digested
        windows (consecutive rows of one block) in one :meth:`~edge.collector.engine.DriftEngine.observe_digests`,
        a window decoded whole on its own. Returns the series points it appended, for the scoring log. With
        ``replay`` (a restart rebuilding the horizons) the windows are only merged: nothing scored, counted or
        appended; ``into_fleet`` False: merged into the device's track only (an evicted track reloaded)."""
        merged = 0
        evaluations: list[Any] = []
        start = 0
        referenced = self.engine.has_reference(model)
        while start < len(group):
            t_ns, body, block, row = group[start]
            stop = start + 1
            if block is not None:  # the run of rows that follow in the same block
                while stop < len(group) and group[stop][2] is block and group[stop][3] == row + stop - start:
                    stop += 1
            last = stop == len(group) and not replay
            t_ns = group[stop - 1][0]
            try:
                if block is None:
                    evaluations = self.engine.observe_window(
                        device, body, t_ns, score_fleet=score_fleet, score=last, into_fleet=into_fleet
                    )
                else:
                    live, extra = block[0][row : row + stop - start], block[1][row : row + stop - start]
                    evaluations = self.engine.observe_digests(
                        device, model, t_ns, live, extra, score_fleet=score_fleet, score=last, into_fleet=into_fleet
                    )
            except EdgeError as exc:
                if replay:
                    start = stop
                    continue
                self.counters["engine_errors"] += stop - start
                log.warning("collector: %d window(s) of %s not scored (%s)", stop - start, device, exc)
                evaluations = []
            else:
                merged += (stop - start) * referenced
            start = stop
        if replay:
            return []
        self.counters["windows_scored"] += merged
        points = []
        for ev in evaluations:  # those of the last window (none when it failed: the merged ones wait for the next)
            point = self.series.append(ev)
            if point is not None:
                points.append(point)
            if not alert:
                continue
            found = self.policy.evaluate(ev, self.engine.devices(ev.model), windows=max(merged, 1))
            self.counters["alerts"] += len(found)
        return points
