"""The scoring worker: drift scoring and alerting off the ingest (ack) path.

The ingest thread commits and acks, then hands each commit's newly stored windows to :class:`ScoringWorker` as one
item of a bounded queue (``capacity`` windows waiting). The worker owns the
:class:`~edge.collector.engine.DriftEngine` (under ``lock``, which the ingest thread also takes for a hello), the
:class:`~edge.collector.alerts.AlertPolicy` and its sinks (the PUB sink's socket is made and used on this thread
only). It takes everything queued (up to ``batch_windows`` windows) at once and scores it in arrival order: the
windows of each device (and model) are merged into its horizons as one block (exact: counts add) and scored once,
after the last one, and that evaluation counts as that many windows for alert persistence
(``AlertPolicy.evaluate(windows=k)``); the longer horizons and the fleet are scored once per model per batch. When
the worker keeps up, a batch holds one commit's windows. A window that finds the queue full is not scored; it is
counted (``windows_unscored``) and logged, never dropped silently. :meth:`drain` waits until everything queued is
scored.

A window reaches the engine as a digest: a device's queued windows are read together by
:func:`~edge.collector.frames.window_digest_block`, which packs their feature counts straight into one block in the
engine's layout (float64 (k, F, B)) and the counters, confidence moments, latency and prediction counts into
another, building no Python object per window and, natively, without holding the GIL (the ingest and commit
threads run meanwhile); :meth:`~edge.collector.engine.DriftEngine.observe_digests` merges them. A device's first
window (and any window the digest declines: another model, a feature missing or of another length, a repeated key)
is decoded whole, and the engine says what is wrong with it.

The worker shares the interpreter with the ingest and commit threads, which hold the GIL only briefly between I/O
waits; the server shortens the interpreter's switch interval (``CollectorSettings.gil_switch_interval_s``) so that
they get it back within half a millisecond of asking rather than five.
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
from edge.collector.series import DriftSeries
from edge.errors import EdgeError

__all__ = ["ScoringWorker"]

log = logging.getLogger("edge.collector")

_STOP = object()

# a window for the engine: t_ns, its body decoded whole (or None), the (counts, extra) block holding its digest
# (or None), its row there
_Entry = tuple[int, "dict[str, Any] | None", "tuple[np.ndarray, np.ndarray] | None", int]


class ScoringWorker:
    """A thread that scores committed windows; ``counters`` (shared with the server) gets ``windows_scored``,
    ``windows_unscored``, ``engine_errors`` and ``alerts``. ``make_sinks`` runs on the worker thread at start and
    returns the sinks and those of them this thread closes when it stops (e.g. the PUB sink, whose socket it owns)."""

    def __init__(
        self,
        engine: DriftEngine,
        policy: AlertPolicy,
        series: DriftSeries,
        counters: dict[str, int],
        make_sinks: Callable[[], tuple[list[AlertSink], list[Any]]],
        capacity: int = 16384,
    ) -> None:
        self.engine, self.policy, self.series, self.counters = engine, policy, series, counters
        self.lock = threading.Lock()
        self.capacity = capacity
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()  # lists of windows, alert events, _STOP; in submission order
        self._waiting = 0  # windows and events queued, not yet taken by the worker
        self._unfinished = 0  # windows and events submitted, not yet scored / published
        self._make_sinks = make_sinks
        self.batch_windows = 1024  # taken at once at most: bounds the block arrays (about 5 MB at 32 features)
        self._models: dict[str, Any] = {}  # device → the model of its last window decoded whole
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge-collector-scoring", daemon=True)

    def start(self, timeout_s: float = 10.0) -> ScoringWorker:
        self._thread.start()
        self._ready.wait(timeout_s)
        return self

    # --------------------------------------------------------------------------------------------- producer

    def submit(self, windows: list[tuple[str, int, bytes]]) -> None:
        """Queue ``(device, t_ns, frame)`` windows (committed; ``frame``: the validated record frame, read again
        here) as one item; never blocks the ingest thread. Those beyond ``capacity`` waiting windows are not
        scored: counted in ``windows_unscored`` and logged."""
        if not windows:
            return
        with self._cond:
            room = max(0, self.capacity - self._waiting)
            taken = windows if len(windows) <= room else windows[:room]
            if taken:
                self._items.append(taken)
                self._waiting += len(taken)
                self._unfinished += len(taken)
                self._cond.notify()
        for w in windows[len(taken) :]:
            self.counters["windows_unscored"] += 1
            log.warning("collector: scoring queue full; a window of %s is stored but not scored", w[0])

    def publish(self, event: AlertEvent) -> None:
        """Send an alert transition made elsewhere (an operator's acknowledgement) to the sinks, on this thread."""
        with self._cond:
            if self._waiting >= self.capacity:
                log.warning("collector: scoring queue full; alert event %s not published", event.alert_id)
                return
            self._items.append([event])
            self._waiting += 1
            self._unfinished += 1
            self._cond.notify()

    @property
    def queued(self) -> int:
        """Windows (and alert events) waiting for the scoring thread."""
        return self._waiting

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything submitted so far is scored; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._unfinished:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        if self._thread.is_alive():
            with self._cond:
                self._items.append(_STOP)
                self._cond.notify()
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"collector scoring thread did not stop within {timeout_s} s")

    # --------------------------------------------------------------------------------------------- worker

    def _take(self) -> tuple[list[Any], bool]:
        """Wait for work; take up to ``batch_windows`` items in order (a long list is split). ``(items, stop)``."""
        batch: list[Any] = []
        with self._cond:
            self._cond.wait_for(lambda: self._items)
            while self._items and len(batch) < self.batch_windows:
                head = self._items[0]
                if head is _STOP:
                    self._items.popleft()
                    return batch, True
                room = self.batch_windows - len(batch)
                if len(head) <= room:
                    batch += self._items.popleft()
                else:
                    batch += head[:room]
                    self._items[0] = head[room:]
            self._waiting -= len(batch)
        return batch, False

    def _run(self) -> None:
        try:
            sinks, owned = self._make_sinks()
        except BaseException as exc:  # reported to the server's constructor
            self.error = exc
            self._ready.set()
            return
        self.policy.sinks = sinks
        self._ready.set()
        try:
            while True:
                batch, stop = self._take()
                try:
                    if batch:
                        self._score_batch(batch)
                except Exception:  # a bug must not stop scoring
                    log.exception("collector: scoring batch failed")
                finally:
                    with self._cond:
                        self._unfinished -= len(batch)
                        self._cond.notify_all()
                if stop:
                    return
        finally:
            for sink in owned:
                sink.close()

    def _score_batch(self, batch: list[Any]) -> None:
        windows = [w for w in batch if not isinstance(w, AlertEvent)]
        for item in batch:
            if isinstance(item, AlertEvent):
                self.counters["alerts"] += 1
                self.policy.publish(item)
        by_device: dict[str, list[tuple[int, bytes]]] = {}
        for device, t_ns, frame in windows:
            by_device.setdefault(device, []).append((t_ns, frame))
        with self.lock:
            groups: dict[tuple[str, Any], list[_Entry]] = {}
            for device, items in by_device.items():
                self._digest(device, items, groups)
            last_of_model = {model: i for i, (_, model) in enumerate(groups)}
            for i, ((device, model), group) in enumerate(groups.items()):  # the fleet: once per model and batch
                self._score(device, model, group, score_fleet=last_of_model[model] == i)

    def _digest(self, device: str, items: list[tuple[int, bytes]], groups: dict[tuple[str, Any], list[_Entry]]) -> None:
        """What the engine reads of a device's queued windows, appended to ``groups[(device, model)]`` in order:
        with the device's model known and referenced, all of them digested at once, without the GIL, by
        :func:`~edge.collector.frames.window_digest_block` (their counts into one block (k, F, B), the counters,
        latency and prediction counts into another; no Python objects per window); a window it declines (the
        device's first, another model, or one the engine will refuse) is decoded whole."""
        model = self._models.get(device)
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
            self._models[device] = body.get("model")
            groups.setdefault((device, body.get("model")), []).append((t_ns, body, None, 0))

    def _score(self, device: str, model: Any, group: list[_Entry], score_fleet: bool) -> None:
        """Merge a device's queued windows of one model, score once after the last one: each run of digested
        windows (consecutive rows of one block) in one :meth:`~edge.collector.engine.DriftEngine.observe_digests`,
        a window decoded whole on its own."""
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
            last = stop == len(group)
            t_ns = group[stop - 1][0]
            try:
                if block is None:
                    evaluations = self.engine.observe_window(device, body, t_ns, score_fleet=score_fleet, score=last)
                else:
                    live, extra = block[0][row : row + stop - start], block[1][row : row + stop - start]
                    evaluations = self.engine.observe_digests(
                        device, model, t_ns, live, extra, score_fleet=score_fleet, score=last
                    )
            except EdgeError as exc:
                self.counters["engine_errors"] += stop - start
                log.warning("collector: %d window(s) of %s not scored (%s)", stop - start, device, exc)
                evaluations = []
            else:
                merged += (stop - start) * referenced
            start = stop
        self.counters["windows_scored"] += merged
        for ev in evaluations:  # those of the last window (none when it failed: the merged ones wait for the next)
            self.series.append(ev)
            found = self.policy.evaluate(ev, self.engine.devices(ev.model), windows=max(merged, 1))
            self.counters["alerts"] += len(found)
