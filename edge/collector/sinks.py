"""Where alert lifecycle events go: the log, a webhook (HTTP POST of JSON), a ZeroMQ PUB socket.

A sink's ``emit`` is called on the thread that runs the alert policy (the ingest thread), so it must not block on
the network: the webhook sink hands events to its own thread through a bounded queue (a full queue drops the event
and counts it); the PUB socket never blocks (ZeroMQ drops for slow subscribers).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request

import zmq

from edge.collector.alerts import AlertEvent
from edge.errors import ConfigError

__all__ = ["LogSink", "PubSink", "WebhookSink", "event_json"]

log = logging.getLogger("edge.collector.alerts")


class LogSink:
    """Alerts as log lines on the ``edge.collector.alerts`` logger (WARNING when opened, INFO otherwise)."""

    def emit(self, event: AlertEvent) -> None:
        level = logging.WARNING if event.state == "open" else logging.INFO
        log.log(level, "alert %d %s: %s", event.alert_id, event.state, event.message)


class WebhookSink:
    """POSTs each event as a JSON object (``Content-Type: application/json``) to ``url`` from its own thread.
    ``sent``, ``failed`` (HTTP or network errors, not retried) and ``dropped`` (queue full) count events."""

    def __init__(self, url: str, timeout_s: float = 5.0, queue_size: int = 1000) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url: expected http:// or https://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self._queue: queue.Queue[AlertEvent | None] = queue.Queue(queue_size)
        self.sent = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="edge-alert-webhook", daemon=True)
        self._thread.start()

    def emit(self, event: AlertEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            req = urllib.request.Request(self.url, data=event_json(event), headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read()
                self.sent += 1
            except (urllib.error.URLError, OSError, ValueError):
                self.failed += 1
                log.warning("alert webhook %s failed for alert %d", self.url, event.alert_id)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)


def event_json(event: AlertEvent) -> bytes:
    """The event as UTF-8 JSON (NaN values as null)."""
    doc = {k: (None if isinstance(v, float) and v != v else v) for k, v in event.to_json().items()}
    return json.dumps(doc, allow_nan=False).encode("utf-8")


class PubSink:
    """Publishes ``[b"alert", JSON]`` on a ZeroMQ PUB socket bound to ``endpoint``. The socket belongs to the
    thread that calls :meth:`emit` and :meth:`close` (create the sink there)."""

    def __init__(self, context: zmq.Context, endpoint: str) -> None:
        self.socket = context.socket(zmq.PUB)
        self.socket.linger = 0
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise ConfigError(
                f"alert PUB endpoint: expected a bindable ZeroMQ endpoint, got {endpoint!r} ({exc})"
            ) from exc
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def emit(self, event: AlertEvent) -> None:
        try:
            self.socket.send_multipart([b"alert", event_json(event)], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self) -> None:
        self.socket.close(linger=0)
