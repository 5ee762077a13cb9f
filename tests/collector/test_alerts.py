"""AlertPolicy: persistence, hysteresis, minimum samples, cohort alerts, lifecycle, and the three sinks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_support import wait_for

from edge.collector.alerts import COHORT, AlertPolicy, Rule
from edge.collector.engine import DriftEngine, Evaluation
from edge.collector.sinks import LogSink, PubSink, WebhookSink
from edge.collector.store import RecordStore
from edge.errors import ConfigError


def ev(value: float, samples: int = 500, scope: str = "dev", t: int = 0) -> Evaluation:
    return Evaluation(scope, "m@1", t, 10, 10, ("f",), np.array([samples]), {"psi": np.array([value])})


def run(policy: AlertPolicy, values: list[tuple[float, int]]) -> list[tuple[int, str]]:
    out = []
    for k, (v, n) in enumerate(values):
        out += [(k, e.state) for e in policy.evaluate(ev(v, n, t=k))]
    return out


def test_persistence_hysteresis_and_min_samples_by_hand() -> None:
    policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=3, min_samples=100),))
    values = [
        (0.3, 500), (0.3, 500), (0.2, 500),  # 0-2: two breaches, then the streak breaks
        (0.3, 500), (0.3, 50), (0.3, 500),  # 3-5: window 4 has too few samples: it neither counts nor breaks
        (0.3, 500),  # 6: third counted breach in a row -> open
        (0.2, 500), (0.05, 500), (0.05, 500), (0.12, 500),  # 7-10: 0.12 is above the clear level: calm resets
        (0.05, 500), (0.05, 500), (0.09, 500),  # 11-13: three calm windows -> resolved at 13
        (0.26, 500), (0.26, 500),  # 14-15: not yet again
    ]  # fmt: skip
    assert run(policy, values) == [(6, "open"), (13, "resolved")]


def test_p_value_rules_breach_below() -> None:
    policy = AlertPolicy(rules=(Rule("psi", 0.05, 0.2, persistence=2, min_samples=0, above=False),))
    assert run(policy, [(0.5, 1), (0.01, 1), (0.01, 1), (0.1, 1), (0.3, 1), (0.3, 1)]) == [(2, "open"), (5, "resolved")]


def test_bad_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="clear on the safe side"):
        Rule("psi", 0.1, 0.25)


def golden_stream(rng: np.random.Generator) -> list[tuple[int, str, str, str]]:
    """Device "a" in distribution for 30 windows, shifted by 0.6 sd for 25, back for 40; device "b" always in."""
    engine = DriftEngine(horizons=(10,))
    engine.set_reference(streams.reference(rng))
    policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=3, min_samples=200),))
    out = []
    for k in range(95):
        for dev in ("a", "b"):
            shift = 0.6 if dev == "a" and 30 <= k < 55 else 0.0
            for e in engine.observe_window(dev, streams.window_body(rng, shift=shift), t_ns=k):
                out += [(k, a.scope, a.feature, a.state) for a in policy.evaluate(e, engine.devices(e.model))]
    return out


def test_golden_seeded_stream_alarm_indices(rng: np.random.Generator) -> None:
    events = golden_stream(rng)
    # pinned: a change at window 30 seen through a 10-window horizon plus 3 windows of persistence; the return at
    # window 55 cleared once the horizon has flushed below PSI 0.1 for 3 windows. Only device a, never b.
    assert events == GOLDEN
    assert all(scope == "a" for _, scope, _, _ in events)
    opens = [k for k, _, _, s in events if s == "open"]
    assert all(32 <= k <= 42 for k in opens)
    assert all(57 <= k <= 67 for k, _, _, s in events if s == "resolved")


GOLDEN: list[tuple[int, str, str, str]] = [
    (39, "a", "f00", "open"),
    (39, "a", "f02", "open"),
    (41, "a", "f01", "open"),
    (41, "a", "f03", "open"),
    (61, "a", "f01", "resolved"),
    (61, "a", "f03", "resolved"),
    (62, "a", "f00", "resolved"),
    (63, "a", "f02", "resolved"),
]


def test_cohort_alert_opens_once_enough_devices_drift(rng: np.random.Generator) -> None:
    policy = AlertPolicy(
        rules=(Rule("psi", 0.25, 0.1, persistence=1, min_samples=0),), cohort_fraction=0.3, cohort_min_devices=3
    )
    devices = [f"d{i}" for i in range(10)]
    events = []
    for k in range(6):  # step k: devices d0..d(k-1) drift
        for i, d in enumerate(devices):
            events += [(k, e.scope, e.state) for e in policy.evaluate(ev(0.5 if i < k else 0.0, scope=d, t=k), devices)]
    cohort = [(k, s) for k, scope, s in events if scope == COHORT]
    assert cohort == [(3, "open")]  # 3 of 10 drifting = 0.3
    assert sorted({scope for _, scope, s in events if s == "open" and scope != COHORT}) == devices[:5]


def test_lifecycle_open_acknowledged_resolved_in_the_store(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "a.db") as store:
        policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=1, min_samples=0),), store=store)
        (opened,) = policy.evaluate(ev(0.4, t=100))
        assert store.alert(opened.alert_id).state == "open"
        acked = policy.acknowledge(opened.alert_id, 150)
        assert acked.state == "acknowledged" and store.alert(opened.alert_id).acked_ns == 150
        (resolved,) = policy.evaluate(ev(0.01, t=200))
        row = store.alert(opened.alert_id)
        assert (resolved.state, row.state, row.opened_ns, row.acked_ns, row.resolved_ns) == (
            "resolved", "resolved", 100, 150, 200,
        )  # fmt: skip


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/json"
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict]]]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Hook.received
    server.shutdown()
    server.server_close()
    thread.join(10)
    assert not thread.is_alive()


def test_sinks_log_webhook_and_pub(webhook_server, caplog: pytest.LogCaptureFixture) -> None:
    url, received = webhook_server
    ctx = zmq.Context()
    pub = PubSink(ctx, "tcp://127.0.0.1:*")
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.subscribe(b"alert")
    sub.connect(pub.endpoint)
    hook = WebhookSink(url)
    policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=1, min_samples=0),), sinks=[LogSink(), hook, pub])
    try:
        # a PUB socket drops messages until the subscription arrives: probe with a marker until one gets through
        wait_for(lambda: pub.socket.send_multipart([b"alert", b"{}"]) or sub.poll(50), what="subscription")
        sub.recv_multipart()
        while sub.poll(0):
            sub.recv_multipart()
        with caplog.at_level(logging.INFO, logger="edge.collector.alerts"):
            policy.evaluate(ev(0.4, scope="dev-7", t=1))
            policy.evaluate(ev(0.0, scope="dev-7", t=2))
        assert sub.poll(5000)
        topic, doc = sub.recv_multipart()
        assert topic == b"alert" and json.loads(doc)["state"] == "open" and json.loads(doc)["scope"] == "dev-7"
        wait_for(lambda: len(received) == 2, what="two webhook posts")
        assert [r["state"] for r in received] == ["open", "resolved"] and received[0]["metric"] == "psi"
        assert "alert 1 open: dev-7 m@1 f: psi = 0.4" in caplog.text
    finally:
        hook.close()
        pub.close()
        sub.close()
        ctx.term()
    assert hook.sent == 2 and hook.failed == 0


@pytest.mark.parametrize("metric", ["js", "ks", "wasserstein"])
def test_every_distribution_metric_alerts_by_default_at_the_documented_threshold(metric: str) -> None:
    """README: JS distance, KS statistic and normalized Wasserstein alert at 0.1 (clear below 0.05), like PSI at 0.25;
    here only ``metric`` breaches while PSI stays calm."""
    from edge.collector.alerts import DEFAULT_RULES
    from edge.drift.metrics import DEFAULT_THRESHOLDS

    assert {r.metric: r.threshold for r in DEFAULT_RULES if r.metric in DEFAULT_THRESHOLDS} == DEFAULT_THRESHOLDS
    policy = AlertPolicy()
    events = []
    for k, value in enumerate([0.12, 0.12, 0.12, 0.07, 0.04, 0.04, 0.04]):
        scores = {"psi": np.array([0.05]), metric: np.array([value])}
        evaluation = Evaluation("dev", "m@1", k, 10, 10, ("f",), np.array([500]), scores)
        events += [(k, e.metric, e.state) for e in policy.evaluate(evaluation)]
    assert events == [(2, metric, "open"), (6, metric, "resolved")]
