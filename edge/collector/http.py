"""The collector's HTTP side: a JSON API, Prometheus ``/metrics`` and the dashboard page (stdlib http.server).

Routes (all GET unless noted; JSON bodies are UTF-8, NaN as null):

* ``/`` — the dashboard (:mod:`edge.collector.dashboard`: one self-contained page, nothing fetched elsewhere)
* ``/api/summary`` — counters (this process's), records stored (all time), device and open-alert counts, windows
  rejected as unscorable per device
* ``/api/devices`` — devices with model, profile, first/last seen (ns since the epoch) and open alerts
* ``/api/models`` — models and their profiles, with device counts
* ``/api/drift?scope=S&model=M&metric=psi&horizon=H`` — a drift series (scope: a device id or ``fleet``; horizon
  in windows, one the collector runs, default its first)
* ``/api/heatmap?scope=S&model=M&metric=psi&horizon=H`` — feature × time buckets of a series
* ``/api/alerts[?state=open|acknowledged|resolved]``
* ``POST /api/alerts/ID/ack`` — acknowledge an alert
* ``PUT /api/profiles/ID`` — upload a reference profile (its canonical JSON; ID must be its hash); ``/api/profiles``
  lists the known ids
* ``/metrics`` — Prometheus text exposition format 0.0.4

The server runs on its own threads; it reads the store and the series (both locked) and the counters mapping
(plain ints read under the GIL).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edge.collector.dashboard import DASHBOARD_HTML
from edge.collector.profiles import ProfileLibrary
from edge.collector.series import DriftSeries
from edge.collector.stores import Store
from edge.errors import ConfigError

__all__ = ["CollectorHttp", "prometheus_text"]

log = logging.getLogger("edge.collector")

MAX_PROFILE_BYTES = 8 << 20

# counter name -> help text; every one is exported as edge_collector_<name>_total
COUNTER_HELP = {
    "records": "records stored (new, not duplicates)",
    "duplicates": "records received again and acknowledged without storing",
    "rejects": "frames rejected by the decoder or validator",
    "messages": "messages received on the ingest socket",
    "alerts": "alert lifecycle events (open, acknowledged, resolved)",
    "windows_scored": "windows scored by the drift engine",
    "windows_from_store": "windows the scoring thread read back from the store (stored before a restart, or past "
    "its in-memory queue)",
    "engine_errors": "windows the drift engine could not score",
    "unknown_profile": "hellos naming a reference profile the collector does not know",
    "profile_uploads": "reference profiles uploaded in a device's hello and taken",
    "profile_rejects": "reference profiles uploaded in a device's hello and refused (invalid, or another hash)",
    "identity_rejects": "records refused because their device id is not one their connection's CURVE key is bound to",
    "unscorable_rejects": "windows refused because their features do not match their model's reference (code "
    "unscorable)",
    "tracks_evicted": "device tracks the drift engine evicted from memory (over max_tracks, least recently active)",
    "tracks_reloaded": "evicted device tracks rebuilt from the store when their device sent again",
    "cursor_conflicts": "scoring batches not kept because another scorer had moved the cursor (scoring stopped)",
    "messages_deferred": "messages answered without acks while scoring was behind: their connection already had 4 "
    "waiting",
}


def prometheus_text(counters: Mapping[str, int], gauges: Mapping[str, float]) -> str:
    """Counters as ``edge_collector_<name>_total`` and gauges as ``edge_collector_<name>``, with HELP and TYPE."""
    lines = []
    for name, value in counters.items():
        metric = f"edge_collector_{name}_total"
        lines += [f"# HELP {metric} {COUNTER_HELP.get(name, name)}", f"# TYPE {metric} counter", f"{metric} {value}"]
    for name, value in gauges.items():
        metric = f"edge_collector_{name}"
        lines += [f"# HELP {metric} {name.replace('_', ' ')}", f"# TYPE {metric} gauge", f"{metric} {value}"]
    return "\n".join(lines) + "\n"


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


class CollectorHttp:
    """Serves the API and dashboard on ``host:port`` (port 0: any free port, see :attr:`port`) until :meth:`close`.
    ``acknowledge(alert_id)`` is called for ``POST /api/alerts/ID/ack`` and returns the alert's JSON."""

    def __init__(
        self,
        store: Store,
        series: DriftSeries,
        counters: Mapping[str, int],
        acknowledge: Callable[[int], dict[str, Any]],
        host: str = "127.0.0.1",
        port: int = 8080,
        profiles: ProfileLibrary | None = None,
        unscorable_by_device: Mapping[str, int] | None = None,
    ) -> None:
        self.store, self.series, self.counters, self.acknowledge = store, series, counters, acknowledge
        self.profiles = profiles
        self.unscorable_by_device = {} if unscorable_by_device is None else unscorable_by_device
        self.health: dict[str, float] = {}  # gauges of the links the process depends on (the bus), set by its owner
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self.server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"collector --http: expected a free HOST:PORT, got {host}:{port} ({exc})") from exc
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, name="edge-collector-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self, timeout_s: float = 10.0) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------------------------------ resources

    def summary(self) -> dict[str, Any]:
        alerts = self.store.alerts()
        return {
            "counters": dict(self.counters),
            # device -> windows rejected as unscorable (PROTOCOL.md §5), this process's, the 4096 most recent devices
            "unscorable_by_device": dict(self.unscorable_by_device),
            "devices": len(self.store.devices()),
            "stored_records": self.store.stored_records(),  # all time (``counters``: this process's)
            "open_alerts": sum(1 for a in alerts if a.state != "resolved"),
            "scopes": [{"scope": s, "model": m} for s, m in self.series.scopes()],
            "now_ns": time.time_ns(),
        }

    def devices(self) -> list[dict[str, Any]]:
        open_by_scope: dict[str, int] = {}
        for a in self.store.alerts():
            if a.state != "resolved":
                open_by_scope[a.scope] = open_by_scope.get(a.scope, 0) + 1
        out = []
        for d in self.store.devices():
            latest = self.series.latest(d["device"], d["model"] or "")
            worst = max(latest.scores.get("psi", (0.0,)), default=0.0) if latest else None
            out.append({**d, "open_alerts": open_by_scope.get(d["device"], 0), "psi_max": worst})
        return out

    def gauges(self) -> dict[str, float]:
        """The store's gauges and ``health``; ``store_up`` 0 (and no store gauges) while the store cannot answer."""
        out = dict(self.health)
        try:
            alerts = self.store.alerts()
            devices = len(self.store.devices())
        except Exception as exc:  # a PostgreSQL outage: /metrics still answers, and says so
            log.warning("collector http: the store did not answer /metrics (%s)", exc)
            return {**out, "store_up": 0.0}
        return {
            **out,
            "store_up": 1.0,
            "devices": float(devices),
            "alerts_open": float(sum(1 for a in alerts if a.state == "open")),
            "alerts_acknowledged": float(sum(1 for a in alerts if a.state == "acknowledged")),
        }


class _Handler(BaseHTTPRequestHandler):
    app: CollectorHttp
    server_version = "edge-collector"

    def log_message(self, *args: object) -> None:  # the collector logs its own events
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, doc: Any, status: int = 200) -> None:
        self._send(status, json.dumps(_json_safe(doc), allow_nan=False).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        app = self.app
        path = url.path.rstrip("/") or "/"
        if path == "/":
            self._send(200, DASHBOARD_HTML.encode("utf-8"), "text/html; charset=utf-8")
        elif path == "/metrics":
            text = prometheus_text(app.counters, app.gauges())
            self._send(200, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/api/summary":
            self._json(app.summary())
        elif path == "/api/devices":
            self._json(app.devices())
        elif path == "/api/profiles":
            self._json(app.profiles.ids() if app.profiles is not None else [])
        elif path == "/api/models":
            self._json(app.store.models())
        elif path in ("/api/drift", "/api/heatmap"):
            missing = [k for k in ("scope", "model") if k not in q]
            unknown = sorted(set(q) - {"scope", "model", "metric", "horizon"})
            if missing or unknown:
                got = f"missing {missing}" if missing else f"unknown {unknown}"
                self._error(400, f"{path}: expected query parameters scope, model[, metric, horizon], {got}")
                return
            fn = app.series.series if path == "/api/drift" else app.series.heatmap
            horizon = q.get("horizon")
            if horizon is not None and not horizon.isdigit():
                self._error(400, f"{path}: horizon: expected a number of windows, got {horizon!r}")
                return
            try:
                self._json(fn(q["scope"], q["model"], q.get("metric", "psi"), horizon and int(horizon)))
            except ConfigError as exc:
                self._error(400, f"{path}: {exc}")
        elif path == "/api/alerts":
            state = q.get("state")
            if state not in (None, "open", "acknowledged", "resolved"):
                self._error(400, f"/api/alerts: expected state open, acknowledged or resolved, got {state!r}")
                return
            self._json([a.to_json() for a in app.store.alerts(state)])
        else:
            self._error(404, f"expected one of /, /metrics, /api/..., got {url.path!r}")

    def do_PUT(self) -> None:
        m = re.fullmatch(r"/api/profiles/([0-9a-f]{16})", urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        if m is None or self.app.profiles is None or not 0 < length <= MAX_PROFILE_BYTES:
            self.rfile.read(min(length, MAX_PROFILE_BYTES))
            self._error(400, f"expected PUT /api/profiles/<16 hex digits> with 1..{MAX_PROFILE_BYTES} bytes")
            return
        try:
            new = self.app.profiles.upload(m.group(1), self.rfile.read(length))
        except ConfigError as exc:
            self._error(400, str(exc))
            return
        self._json({"profile": m.group(1), "stored": new}, 201 if new else 200)

    def do_POST(self) -> None:
        m = re.fullmatch(r"/api/alerts/(\d+)/ack", urlsplit(self.path).path)
        if m is None:
            self._error(404, f"expected POST /api/alerts/ID/ack, got {self.path!r}")
            return
        try:
            self._json(self.app.acknowledge(int(m.group(1))))
        except ConfigError as exc:
            self._error(404, str(exc))
