"""The collector service: a ZeroMQ ROUTER that ingests telemetry (docs/PROTOCOL.md), stores it durably, acks,
and feeds the drift engine and alert policy; plus the HTTP side.

One ingest thread owns the ROUTER; a :class:`~edge.collector.committer.GroupCommitter` thread makes batches durable.
The ingest thread receives messages and checks every frame: a valid ``window`` record (the common one) is proven
valid by the native fast accept (:func:`edge.collector.frames.window_accept`, which reads the msgpack bytes in
place), anything else goes through the shared validator (:func:`edge.telemetry.protocol.decode_frame`), which
accepts it or rejects it and says why; the per-record checks (identity, scorability, rejections and their counters)
are :class:`~edge.collector.admission.Admission`'s. Spooled records (their frames as received) are buffered for the
next group commit. While the commit thread writes and fsyncs one batch (one transaction, one fsync; SQLite releases
the GIL), the ingest thread goes on receiving the next; when the commit is done it answers each message of that
batch with its acks (stored and duplicate keys, both durable) and its rejections — never before. Newly stored
windows then go to the :class:`~edge.collector.scoring.ScoringWorker` thread (drift engine, alert policy, sinks and
the alert PUB socket), so scoring never delays an ack; :meth:`CollectorServer.drain` waits for it. The store is the
source of truth for scoring (the worker's persistent cursor, :mod:`edge.collector.scoring_log`): a restarted server
loads the drift series and rebuilds the engine's references (from the stored hellos and profiles) and horizons, and
scores what was stored but not yet scored. When more than half of the scoring queue waits, the ingest thread stops
taking new messages until scoring catches up (backpressure: devices wait for their acks), so that the worker rarely
has to read windows back from the store. The worker gets the window's frame (bytes) and reads what the engine needs
from it (:func:`edge.collector.frames.window_digest_block`, a device's windows at once, without the GIL): decoded
bodies waiting in a queue would be thousands of live containers for the garbage collector to walk.

A frame that fails to decode is rejected (answered with ``code`` ``malformed``/``limit``), counted, and changes
nothing else; a frame larger than ``ZMQ_MAXMSGSIZE`` makes libzmq drop the connection before it reaches the
application.

With ``keys``, the ROUTER is a CURVE server and a :class:`~edge.telemetry.security.ZapAllowList` admits only
the listed device keys; a plaintext client fails the handshake.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import zmq

from edge.collector.admission import Admission, bound, decode, fit
from edge.collector.alerts import DEFAULT_RULES, AlertEvent, AlertPolicy, AlertSink, Rule
from edge.collector.committer import GroupCommitter
from edge.collector.engine import DEFAULT_MAX_TRACKS, DriftEngine, ModelReference
from edge.collector.fairness import Message, PeerQueues, PendingWindows
from edge.collector.frames import window_accept
from edge.collector.http import CollectorHttp
from edge.collector.profiles import ProfileLibrary
from edge.collector.scoring import ScoringWorker
from edge.collector.series import DriftSeries
from edge.collector.store import CommitResult
from edge.collector.stores import open_store
from edge.errors import ConfigError, EdgeError, ProtocolError
from edge.telemetry.protocol import (
    MAX_BATCH_RECORDS,
    MAX_FRAME_BYTES,
    SPOOLED_KINDS,
    RejectedRecord,
    Reply,
    ack_ranges,
    encode_reply,
)
from edge.telemetry.security import ZapAllowList, make_curve_server

__all__ = ["CollectorServer", "CollectorSettings", "load_server_keys"]

log = logging.getLogger("edge.collector")

# routing id, acked (boot, seq), rejections, the reply's need_profile ("" or a profile id)
_Message = tuple[bytes, list[tuple[str, int]], list[RejectedRecord], str]

_NOTHING_TAKEN = encode_reply(Reply((), (), ""))  # the reply to a message not taken (PROTOCOL.md §5)
COUNTERS = ("messages", "records", "duplicates", "rejects", "alerts", "windows_scored", "windows_from_store",
            "engine_errors", "unknown_profile", "profile_uploads", "profile_rejects",
            "identity_rejects", "unscorable_rejects", "tracks_evicted", "tracks_reloaded",
            "cursor_conflicts", "messages_deferred")  # fmt: skip


@dataclass(frozen=True)
class CollectorSettings:
    """``bind``: ZeroMQ endpoint; ``db``: the store, a SQLite file or a URL (:func:`~edge.collector.stores.open_store`:
    ``sqlite:///PATH``, ``postgresql://...``); ``http``: ``(host, port)`` or None; ``keys``: a directory
    with ``collector.key_secret`` and the allowed devices' ``*.key`` (in ``devices/`` when that folder exists);
    ``profiles``: a directory of model packages / profile JSON files; ``horizons`` in windows (the first drives
    alerts); ``max_tracks``: (device, model) rolling-horizon tracks the drift engine keeps in memory (the least
    recently active beyond it are evicted and rebuilt from the store when their device sends again);
    ``max_frame_bytes``: ``ZMQ_MAXMSGSIZE`` (bytes, per frame). The server takes no process-wide action:
    a program that runs it as its main work may shorten the interpreter's switch interval, as ``edge collector``
    does (:mod:`edge.collector.cli`). ``role``: ``"all"`` (one process: ingest, store, scoring), ``"gateway"``
    (ingest that publishes to the record bus at ``bus``, :mod:`edge.collector.gateway`; no scoring) or ``"scoring"``
    (scoring and HTTP over a shared store, no ingest socket: what a fleet worker holding the scoring lease runs,
    :mod:`edge.collector.worker`)."""

    bind: str = "tcp://127.0.0.1:7450"
    db: Path | str = Path("collector.db")
    http: tuple[str, int] | None = ("127.0.0.1", 8080)
    keys: Path | None = None
    profiles: Path | None = None
    horizons: tuple[int, ...] = (10, 60)
    rules: Sequence[Rule] = DEFAULT_RULES
    latency_budget_us: float | None = None
    webhook: str | None = None
    pub: str | None = None
    max_frame_bytes: int = MAX_FRAME_BYTES + 1024
    batch_messages: int = 256
    poll_ms: int = 50
    scoring_queue: int = 16384
    max_tracks: int = DEFAULT_MAX_TRACKS
    extra_sinks: list[AlertSink] = field(default_factory=list)
    role: str = "all"
    bus: str | None = None


def load_server_keys(directory: Path) -> tuple[bytes, bytes, dict[bytes, str]]:
    """``(public, secret, {allowed device public key: the device id or pattern it is bound to})`` from a keys
    directory (see :class:`CollectorSettings`; bindings as :func:`~edge.telemetry.security.device_binding`)."""
    from edge.telemetry.security import device_binding, load_keypair, load_public_key

    secret_file = directory / "collector.key_secret"
    if not secret_file.is_file():
        raise ConfigError(f"collector --keys: expected {secret_file} (make it with `edge keys gen --name collector`)")
    public, secret = load_keypair(secret_file, key="collector keys")
    device_dir = directory / "devices" if (directory / "devices").is_dir() else directory
    files = [p for p in sorted(device_dir.glob("*.key")) if p.name != "collector.key"]
    return public, secret, {load_public_key(p): device_binding(p) for p in files}


@dataclass
class _Batch:
    """The messages of one group commit (replied to after it) and their spooled windows ``(key, t_ns, frame)``."""

    messages: list[_Message] = field(default_factory=list)
    windows: list[tuple[tuple[str, str, int], int, bytes]] = field(default_factory=list)
    admitted: list[tuple[bytes, int]] = field(default_factory=list)  # (routing id, its windows) per message


class CollectorServer:
    """Starts the ingest thread (and the HTTP server) on construction; :meth:`close` stops both."""

    def __init__(self, settings: CollectorSettings) -> None:
        if settings.role not in ("all", "gateway", "scoring"):
            raise ConfigError(f"collector role: expected all, gateway or scoring, got {settings.role!r}")
        if (settings.role == "gateway") != (settings.bus is not None):
            raise ConfigError(f"collector --bus: expected with --role gateway only, got role {settings.role!r}")
        self.settings = settings
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._hello_seen = set()
        self.health: dict[str, float] = {}  # gauges of the links this process depends on (/metrics)
        self._waiting = PeerQueues()  # messages waiting for room in scoring, per connection (fairness.py)
        # each connection's stored windows not yet scored, and its share of the queue above the high-water mark
        self._pending = PendingWindows(headroom=settings.scoring_queue - max(1, settings.scoring_queue // 2))
        self.store = open_store(settings.db)
        self.profiles = ProfileLibrary(self.store)
        if settings.profiles is not None:
            self.profiles.load_dir(settings.profiles)
        self.engine = DriftEngine(horizons=settings.horizons, max_tracks=settings.max_tracks)
        self.admission = Admission(self.engine, self.counters)  # the per-record checks of ingest
        self.unscorable_by_device = self.admission.unscorable_by_device  # /api/summary, per device
        self.series = DriftSeries(horizon=settings.horizons[0], more=settings.horizons[1:],
                                  max_rings=settings.max_tracks * len(settings.horizons))  # fmt: skip
        self.series.reader = self.store.series_of  # evicted rings: their points are in the store
        self.policy = AlertPolicy(rules=settings.rules, store=self.store, horizon=settings.horizons[0])
        self.policy.restore()
        scoring_log = None if settings.role == "gateway" else self.store.scoring_log(capacity=self.series.capacity)
        if scoring_log is not None:
            self.series.load(scoring_log.series_points())
            self._restore_references()
        self._spool: Any = self.store  # where accepted records go: the store, or the record bus (gateway)
        if settings.role == "gateway":
            from edge.collector.gateway import BusSpool

            self._spool = BusSpool(settings.bus or "", self.health)
        self._ctx = zmq.Context()
        self.zap: ZapAllowList | None = None
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.linger = 0
        self._sock.maxmsgsize = settings.max_frame_bytes
        self._sock.router_mandatory = False
        try:
            if settings.keys is not None:
                public, secret, allowed = load_server_keys(Path(settings.keys))
                self.zap = ZapAllowList(self._ctx, allowed).start()
                make_curve_server(self._sock, public, secret)
            else:
                level = logging.INFO if _loopback(settings.bind) else logging.WARNING
                log.log(level, "collector: no CURVE keys (--keys): the link is plaintext and device identities are "
                        "unauthenticated (any peer can send records as any device id)")  # fmt: skip
            if settings.role != "scoring":
                self._sock.bind(settings.bind)
        except (zmq.ZMQError, EdgeError) as exc:
            self._teardown()
            if isinstance(exc, EdgeError):
                raise
            raise ConfigError(f"collector --bind: expected a bindable endpoint, got {settings.bind!r} ({exc})") from exc
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT) if settings.role != "scoring" else ""
        self._sinks: list[AlertSink] = list(settings.extra_sinks)
        if settings.webhook:
            from edge.collector.sinks import WebhookSink

            self._sinks.append(WebhookSink(settings.webhook))
        self.http: CollectorHttp | None = None
        if settings.http is not None:
            self.http = CollectorHttp(
                self.store, self.series, self.counters, self._http_ack, *settings.http, profiles=self.profiles,
                unscorable_by_device=self.unscorable_by_device,
            )  # fmt: skip
            self.http.health = self.health
        self._stop = threading.Event()
        self._closed = False
        self.scoring: ScoringWorker | None = None
        self._engine_lock = threading.Lock()  # the engine's (the scoring thread's when there is one)
        if scoring_log is not None:
            self.scoring = ScoringWorker(self.engine, self.policy, self.series, self.counters, self._make_sinks,
                                         scoring_log, capacity=settings.scoring_queue)  # fmt: skip
            self._engine_lock = self.scoring.lock
            if settings.role == "scoring":  # other processes write the store: read it, with the hellos they stored
                self.scoring.on_read = self._sync_hellos
            self.scoring.start()
        self._committer = GroupCommitter(self._spool)
        self._thread = threading.Thread(target=self._run, name="edge-collector-ingest", daemon=True)
        if self.scoring is not None and self.scoring.error is not None:
            self.close()
            raise ConfigError(f"collector: the scoring thread failed to start ({self.scoring.error})")
        if settings.role != "scoring":
            self._thread.start()

    # ------------------------------------------------------------------------------------------- threads

    _hello_seen: set[str]

    def _restore_references(self) -> None:
        """After a restart: the references and latency edges the stored hellos name (as :meth:`_hello` set them),
        so the windows stored before the restart are scored as they would have been."""
        for device, hello in self.store.hellos():
            self._hello_seen.add(device)
            try:
                self.engine.observe_hello(device, hello)
                model, pid = hello["model"], hello["profile"]
                if self.engine.has_reference(model):
                    continue
                profile = self.profiles.get(pid)
                if profile is not None:
                    ref = ModelReference.from_profile(model, profile, self.settings.latency_budget_us)
                    self.engine.set_reference(ref)
            except (EdgeError, KeyError, TypeError, ValueError) as exc:
                log.warning("collector: the stored hello of %s restores no reference (%s)", device, exc)

    def _sync_hellos(self, windows: list[Any]) -> None:
        """Runs on the scoring thread before it scores ``windows`` read from a store that other processes write
        (role ``scoring``): the hellos of devices it has not seen yet, stored before their windows were."""
        if any(w[1] not in self._hello_seen for w in windows):
            self._restore_references()

    def _make_sinks(self) -> tuple[list[AlertSink], list[Any]]:
        """Runs on the scoring thread: the alert sinks, and the PUB sink it owns (and closes)."""
        from edge.collector.sinks import LogSink, PubSink

        sinks: list[AlertSink] = [LogSink(), *self._sinks]
        if not self.settings.pub:
            return sinks, []
        pub = PubSink(self._ctx, self.settings.pub)
        return [*sinks, pub], [pub]

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._committer.fileno(), zmq.POLLIN)
        held = zmq.Poller()  # with PeerQueues full: wait for commits only, leave new messages in ZeroMQ's queue
        held.register(self._committer.fileno(), zmq.POLLIN)
        capacity = self.settings.scoring_queue
        high_water = max(1, capacity // 2)
        waiting = self._waiting
        batch = _Batch()
        while not self._stop.is_set():
            try:
                # room: windows the scoring queue takes before its high-water mark; at it, new messages wait
                # per connection and are taken in turn as room comes (backpressure that one flood cannot hog)
                room = high_water if self.scoring is None else high_water - self.scoring.queued
                if room > 0 and not waiting:
                    ready = dict(poller.poll(self.settings.poll_ms))
                else:
                    ready = dict((held if waiting.full else poller).poll(0 if room > 0 else 1))
                if self._sock in ready:
                    if room > 0 and not waiting:
                        self._receive(batch, room, self._read)
                    else:
                        self._park()
                if room > 0 and waiting:
                    self._receive(batch, room, waiting.take)
                elif waiting and self.scoring is not None and capacity - self.scoring.queued > MAX_BATCH_RECORDS:
                    admit = self._pending.within_share(self.scoring.cursor)  # above the high-water mark
                    self._receive(batch, capacity - self.scoring.queued, partial(waiting.take_if, admit))
                self.health["messages_waiting"] = float(len(waiting))
                if self._committer.done:
                    self._acknowledge(*self._committer.result())
                if not self._committer.busy and batch.messages:
                    self._committer.submit(self._spool.take_pending(), batch)
                    batch = _Batch()
            except Exception:  # a bug must not stop ingest: log it; unacked records are resent
                log.exception("collector: ingest turn failed")
        if self._committer.wait(10.0) and self._committer.done:  # the batch in flight is durable: ack it
            self._acknowledge(*self._committer.result())

    def _read(self) -> Message | None:
        """The next message on the socket (routing id, its key's device binding, frames), or None."""
        try:
            if self.zap is None:
                ident, *frames = self._sock.recv_multipart(zmq.NOBLOCK)
                return ident, None, frames
            return self._recv_curve()
        except zmq.Again:
            return None

    def _park(self) -> None:
        """Read the messages that arrived into their connections' queues; a message beyond its connection's
        share is answered at once, acknowledging nothing (its records stay in the device's spool)."""
        for _ in range(self.settings.batch_messages):
            if self._waiting.full:
                return
            message = self._read()
            if message is None:
                return
            if not self._waiting.park(message):
                self.counters["messages_deferred"] += 1
                try:
                    self._sock.send_multipart([message[0], _NOTHING_TAKEN], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # the peer is gone

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every window acknowledged so far has been scored (tests, shutdown); False on timeout."""
        return self.scoring is None or self.scoring.drain(timeout_s)

    def _receive(self, batch: _Batch, room: int, pull: Callable[[], Message | None]) -> None:
        """Take up to ``batch_messages`` messages from ``pull`` (fewer when the commit in flight finishes: its acks
        go first, or once their records reach ``room``), decode them and buffer their spooled records in the store
        for the next group commit."""
        now = time.time_ns()
        add = self._spool.add_frame
        fast = window_accept
        counters, admission = self.counters, self.admission
        for _ in range(self.settings.batch_messages):
            message = pull()
            if message is None:
                break
            # binding: the device id or pattern this message's key may send as; None: no check
            ident, binding, frames = message
            room -= len(frames)
            counters["messages"] += 1
            windows_before = len(batch.windows)
            keys: list[tuple[str, int]] = []
            rejected: list[RejectedRecord] = []
            need = ""  # a hello's profile id the collector asks the device to upload
            if len(frames) > MAX_BATCH_RECORDS:  # every frame rejected under its own key, so the device can match it
                batch.messages.append((ident, keys, admission.reject_oversized(frames), need))
                continue
            for data in frames:
                env = fast(data)
                if env is not None:  # a valid window (the common record)
                    device, boot, seq, t_ns, wall_ns, layout = env
                    if binding is not None and not bound(binding, device):
                        rejected.append(admission.reject_identity(binding, device, boot, seq))
                        continue
                    why = admission.window_verdict(layout, data)
                    if why:
                        rejected.append(admission.reject_unscorable(device, boot, seq, why))
                        continue
                    add(device, boot, seq, "window", t_ns, wall_ns, data, now)
                    keys.append((boot, seq))
                    batch.windows.append(((device, boot, seq), t_ns, data))
                    continue
                try:
                    rec = decode(data)
                except ProtocolError as exc:
                    rejected.append(admission.reject_malformed(data, exc))
                    continue
                if binding is not None and not bound(binding, rec.device):
                    rejected.append(admission.reject_identity(binding, rec.device, rec.boot, rec.seq))
                    continue
                why = admission.unscorable(rec.body) if rec.kind == "window" else ""
                if why:
                    rejected.append(admission.reject_unscorable(rec.device, rec.boot, rec.seq, why))
                    continue
                if rec.kind in SPOOLED_KINDS:
                    add(rec.device, rec.boot, rec.seq, rec.kind, rec.t_ns, rec.wall_ns, data, now)
                    keys.append((rec.boot, rec.seq))
                    if rec.kind == "window":
                        batch.windows.append((rec.key, rec.t_ns, data))
                elif rec.kind == "hello":
                    need = self._hello(rec.device, rec.boot, rec.body, now, rejected)
                else:
                    self.store.seen(rec.device, rec.boot, now)
            batch.messages.append((ident, keys, rejected, need))
            if len(batch.windows) > windows_before:
                batch.admitted.append((ident, len(batch.windows) - windows_before))
            if self._committer.done or room <= 0:
                break

    def _recv_curve(self) -> tuple[bytes, str | None, list[bytes]]:
        """One message of a CURVE link: its routing id, the device binding of its key (None when the key is bound to
        ``"*"``; "" when it is no longer allowed, which matches no device) and its frames."""
        parts = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
        binding = self.zap.binding(parts[0].get("User-Id"))  # type: ignore[union-attr]
        binding = None if binding == "*" else (binding or "")
        return parts[0].bytes, binding, [p.bytes for p in parts[1:]]

    def _acknowledge(self, batch: _Batch, outcome: CommitResult | Exception) -> None:
        """After ``batch``'s group commit: count, hand its new windows to the scoring thread, reply to each message."""
        if isinstance(outcome, Exception):
            log.error("collector: commit failed; nothing of this batch is acknowledged (%s)", outcome)
            return
        result = outcome
        self.counters["records"] += len(result.stored)
        self.counters["duplicates"] += len(result.duplicates)
        self.counters["rejects"] += len(result.failed)
        if self.scoring is not None:
            stored = dict(zip(result.stored, result.ids, strict=True))  # a resent window is acked again, scored once
            fresh = []
            for key, t_ns, frame in batch.windows:
                rowid = stored.pop(key, None)
                if rowid is not None:
                    fresh.append((rowid, key[0], t_ns, frame))
            self.scoring.submit(fresh)  # before the acks: a drain() after an ack covers its windows (never blocks)
            if fresh:  # what each connection has waiting for scoring (fair backpressure, fairness.py)
                top = fresh[-1][0]
                for ident, n in batch.admitted:
                    self._pending.add(ident, top, n)
        failed = {(b, s) for _, b, s in result.failed}
        send = self._sock.send_multipart
        for ident, keys, rejected, need in batch.messages:
            if failed and any(k in failed for k in keys):
                rejected = rejected + [RejectedRecord(b, s, "malformed", "record: the store could not take it")
                                       for b, s in keys if (b, s) in failed]  # fmt: skip
                keys = [k for k in keys if k not in failed]
            reply = encode_reply(Reply(tuple(ack_ranges(keys)), tuple(rejected), need))
            try:
                send([ident, reply], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the peer is gone; it resends and gets the acks of the duplicates

    def _hello(self, device: str, boot: str, body: dict[str, Any], now: int, rejected: list[RejectedRecord]) -> str:
        """A hello takes effect before its ack: windows sent after it are scored against its reference. Returns
        the hello's profile id when the collector does not have it (the reply's ``need_profile``: the device then
        uploads it in ``profile_json``), else "". An uploaded profile that is invalid or does not hash to the
        hello's id is rejected (counted in ``rejects`` and ``profile_rejects``) and the hello otherwise taken; a profile
        taken is counted in ``profile_uploads`` (one the collector already has is not read again, nor counted)."""
        upload = body.pop("profile_json", None)
        self.store.seen(device, boot, now, body)
        model, pid = body["model"], body["profile"]
        if upload is not None and self.profiles.get(pid) is None:
            try:
                self.profiles.upload(pid, upload)
            except ConfigError as exc:
                self.counters["rejects"] += 1
                self.counters["profile_rejects"] += 1
                rejected.append(RejectedRecord(boot, 0, "malformed", fit(f"hello.profile_json: {exc}")))
                log.warning("collector: %s uploaded a bad profile for %s: %s", device, pid, exc)
            else:
                self.counters["profile_uploads"] += 1
        with self._engine_lock:  # the engine belongs to the scoring thread; a hello is rare
            self.engine.observe_hello(device, body)
            if self.engine.has_reference(model):
                return ""
            profile = self.profiles.get(pid)
            if profile is None:
                self.counters["unknown_profile"] += 1
                log.warning("collector: %s runs %s with unknown profile %s (asking for it; or PUT /api/profiles/%s)",
                            device, model, pid, pid)  # fmt: skip
                return pid if upload is None else ""
            self.engine.set_reference(ModelReference.from_profile(model, profile, self.settings.latency_budget_us))
            return ""

    def _http_ack(self, alert_id: int) -> dict[str, Any]:
        row = self.store.set_alert_state(alert_id, "acknowledged", time.time_ns())
        event = AlertEvent(row.id, row.state, row.scope, row.model, row.feature, row.metric, row.value,
                           row.threshold, row.acked_ns or 0, row.message)  # fmt: skip
        if self.scoring is not None:
            self.scoring.publish(event)
        return row.to_json()

    # ------------------------------------------------------------------------------------------- lifecycle

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop ingest and commit what was received, stop scoring after its batch in hand (the rest waits in the
        store, past the scoring cursor, for the next start), close the store; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"collector ingest thread did not stop within {timeout_s} s")
        self._committer.close(timeout_s)
        if self.scoring is not None:
            self.scoring.close(timeout_s)
        if self.http is not None:
            self.http.close(timeout_s)
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
        self._teardown()
        close_spool = getattr(self._spool, "close", None) if self._spool is not self.store else None
        if close_spool is not None:
            close_spool()
        self.store.close()

    def _teardown(self) -> None:
        self._sock.close(linger=0)
        if self.zap is not None:
            self.zap.stop()
        self._ctx.term()

    def __enter__(self) -> CollectorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint is reachable from this machine only (ipc, inproc, tcp on a loopback address)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")
