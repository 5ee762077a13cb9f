"""The fleet collector as the closed-loop harness runs it: in-process (server + drift engine + store in a folder of
the run), stopped and restarted for a ``collector_outage``, with every alert event recorded.

An external collector (``endpoint`` given) is only connected to: outages cannot be simulated there and alerts are
not seen (a scenario that asserts on alerts then fails with a message saying so).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DRIFT_METRICS", "AlertRecord", "SimCollector", "alert_kind"]

log = logging.getLogger("edge.sim.harness")

# the collector's drift metrics (everything else it alerts on is operational: deadline misses, fallbacks, latency)
DRIFT_METRICS = ("psi", "js", "ks", "chi2_p", "wasserstein", "mean_shift", "pca_error", "prediction_psi")


def alert_kind(metric: str) -> str:
    """The scenario's alert ``kind`` for a collector metric: ``"drift"`` for a distribution metric, else the
    metric's own name (``deadline_miss_rate``, ``fallback_rate``, ``p99_latency_ratio``)."""
    return "drift" if metric in DRIFT_METRICS or "psi" in metric else metric


@dataclass(frozen=True)
class AlertRecord:
    """An alert the collector opened: ``t_s`` is scenario time (s) of the window that opened it."""

    t_s: float
    kind: str
    metric: str
    feature: str
    scope: str
    value: float
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Recorder:
    """An alert sink (the collector's ingest thread calls :meth:`emit`)."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.opened: list[AlertRecord] = []

    def emit(self, event: Any) -> None:
        if event.state != "open":
            return
        self.opened.append(
            AlertRecord(
                round((event.t_ns - self.start_ns) * 1e-9, 6),
                alert_kind(event.metric),
                event.metric,
                event.feature,
                event.scope,
                float(event.value),
                float(event.threshold),
            )
        )


class SimCollector:
    """Start an in-process collector in ``folder`` (``endpoint`` None) or use ``endpoint``. ``profiles``: a folder
    of model packages whose reference profiles the collector loads; ``http``: ``(host, port)`` for the dashboard
    (port 0: any free port) or None; ``horizons``: rolling horizons in windows (the first drives alerts)."""

    def __init__(
        self,
        folder: Path,
        profiles: Path,
        *,
        endpoint: str | None = None,
        http: tuple[str, int] | None = None,
        horizons: tuple[int, ...] = (10,),
        start_ns: int = 0,
    ) -> None:
        self.recorder = _Recorder(start_ns)
        self.external = endpoint is not None
        self.server: Any = None
        self._settings: Any = None
        if endpoint is not None:
            self.endpoint = endpoint
            return
        from edge.collector.server import CollectorServer, CollectorSettings

        self._settings = CollectorSettings(
            bind="tcp://127.0.0.1:*",
            db=folder / "collector.db",
            http=http,
            profiles=profiles,
            horizons=horizons,
            extra_sinks=[self.recorder],
        )
        self.server = CollectorServer(self._settings)
        self.endpoint = self.server.endpoint
        self.outages = 0

    @property
    def alerts(self) -> list[AlertRecord]:
        return list(self.recorder.opened)

    @property
    def dashboard_url(self) -> str | None:
        http = getattr(self.server, "http", None)
        return None if http is None else f"{http.url}/"

    @property
    def windows_scored(self) -> int:
        return 0 if self.server is None else int(self.server.counters.get("windows_scored", 0))

    def stop(self) -> bool:
        """Stop the collector (an outage); False when it is external or already stopped."""
        if self.external or self.server is None:
            return False
        self.server.close()
        self.server = None
        self.outages += 1
        return True

    def restart(self) -> bool:
        """Start it again on the same endpoint and database; False when it is external or running."""
        if self.external or self.server is not None:
            return False
        from dataclasses import replace

        from edge.collector.server import CollectorServer

        deadline = time.monotonic() + 10.0
        while True:  # the port was just released; binding it again can race the kernel for a moment
            try:
                self.server = CollectorServer(replace(self._settings, bind=self.endpoint))
                return True
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def drift_series(self, device: str, metric: str = "psi") -> dict[str, Any]:
        """The collector's drift series of ``device`` (``t_ns``, ``features``, ``values``); empty when none."""
        if self.server is None:
            return {"t_ns": [], "features": [], "values": []}
        for scope, model in self.server.series.scopes():
            if scope == device:
                return self.server.series.series(scope, model, metric)
        return {"t_ns": [], "features": [], "values": []}

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
