"""The HTTP side over a real socket: JSON API, Prometheus /metrics, acknowledging, and the dashboard rendered by
headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest

from edge.collector.alerts import AlertPolicy, Rule
from edge.collector.engine import DriftEngine
from edge.collector.http import CollectorHttp
from edge.collector.series import DriftSeries
from edge.collector.store import RecordStore

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def app(tmp_path: Path, rng: np.random.Generator) -> Iterator[CollectorHttp]:
    """Three devices, one drifting from window 10 on, fed through the real engine and policy."""
    store = RecordStore(tmp_path / "http.db")
    engine = DriftEngine(horizons=(5, 12))
    engine.set_reference(streams.reference(rng))
    series = DriftSeries(horizon=5, more=(12,))
    policy = AlertPolicy(rules=(Rule("psi", 0.25, 0.1, persistence=2, min_samples=100),), store=store)
    counters = {"records": 0, "rejects": 3, "duplicates": 1, "alerts": 0}
    for dev in ("bus-01", "bus-02", "van-07"):
        store.seen(dev, "boot-1", 1_000, {"model": streams.MODEL, "profile": "0123456789abcdef"})
        engine.observe_hello(dev, streams.HELLO)
    for k in range(30):
        for dev in ("bus-01", "bus-02", "van-07"):
            body = streams.window_body(rng, shift=1.0 if dev == "van-07" and k >= 10 else 0.0, misses=k % 3)
            counters["records"] += 1
            store.add(dev, "boot-1", k + 1, "window", k * 1_000_000_000, 0, body)
            for ev in engine.observe_window(dev, body, t_ns=k * 1_000_000_000):
                series.append(ev)
                counters["alerts"] += len(policy.evaluate(ev, engine.devices(ev.model)))

    store.commit()  # the dashboard's record count is the store's

    def ack(alert_id: int) -> dict:
        return policy.acknowledge(alert_id, 99).to_json()

    server = CollectorHttp(store, series, counters, ack, port=0)
    yield server
    server.close()
    store.close()


def get(app: CollectorHttp, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(app.url + path, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_json_api(app: CollectorHttp) -> None:
    status, ctype, body = get(app, "/api/devices")
    devices = {d["device"]: d for d in json.loads(body)}
    assert status == 200 and ctype == "application/json"
    assert sorted(devices) == ["bus-01", "bus-02", "van-07"]
    assert devices["van-07"]["open_alerts"] > 0 and devices["bus-01"]["open_alerts"] == 0
    assert devices["van-07"]["psi_max"] > 0.25 > devices["bus-01"]["psi_max"]
    models = json.loads(get(app, "/api/models")[2])
    assert models == [{"model": streams.MODEL, "profile": "0123456789abcdef", "devices": 3}]
    drift = json.loads(get(app, f"/api/drift?scope=van-07&model={streams.MODEL}&metric=psi")[2])
    assert drift["features"] == streams.names(4) and len(drift["t_ns"]) == 30 and len(drift["values"][0]) == 4
    ops = json.loads(get(app, f"/api/drift?scope=bus-01&model={streams.MODEL}&metric=deadline_miss_rate")[2])
    assert ops["features"] == ["-"] and ops["values"][-1][0] == pytest.approx(sum(k % 3 for k in range(25, 30)) / 500)
    heat = json.loads(get(app, f"/api/heatmap?scope=fleet&model={streams.MODEL}&metric=psi")[2])
    # 90 fleet evaluations (one per device window) in at most 60 buckets
    assert len(heat["cells"]) == 4 and len(heat["cells"][0]) == 60
    alerts = json.loads(get(app, "/api/alerts?state=open")[2])
    assert alerts and {a["scope"] for a in alerts} == {"van-07"}
    assert get(app, "/api/drift?scope=fleet")[0] == 400
    assert get(app, "/api/alerts?state=bogus")[0] == 400
    assert get(app, "/nope")[0] == 404


def test_acknowledge_over_http(app: CollectorHttp) -> None:
    alert = json.loads(get(app, "/api/alerts?state=open")[2])[0]
    req = urllib.request.Request(f"{app.url}/api/alerts/{alert['id']}/ack", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["state"] == "acknowledged"
    assert app.store.alert(alert["id"]).state == "acknowledged"
    req = urllib.request.Request(f"{app.url}/api/alerts/99999/ack", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 404


def test_drift_horizon_parameter_is_honoured(app: CollectorHttp) -> None:
    base = "/api/drift?scope=van-07&model=" + urllib.parse.quote(streams.MODEL)
    short = json.loads(get(app, base)[2])
    long = json.loads(get(app, base + "&horizon=12")[2])
    assert short["horizon"] == 5 and long["horizon"] == 12 and len(short["t_ns"]) == len(long["t_ns"]) == 30
    assert short["values"] != long["values"]  # the longer horizon still holds pre-drift windows
    assert json.loads(get(app, base + "&horizon=5")[2]) == short
    heat = json.loads(get(app, base.replace("drift", "heatmap") + "&horizon=12")[2])
    assert heat["horizon"] == 12 and heat["cells"]
    for query, said in (("&horizon=60", "expected one of [5, 12]"), ("&horizon=x", "horizon"),
                        ("&horizn=12", "unknown ['horizn']")):  # fmt: skip
        status, _, body = get(app, base + query)
        assert status == 400 and said in json.loads(body)["error"], (query, body)


def test_prometheus_metrics_text_format(app: CollectorHttp) -> None:
    status, ctype, body = get(app, "/metrics")
    text = body.decode()
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) edge_collector_\w+ .+", line), line
        else:
            name, value = line.split(" ")
            samples[name] = float(value)
    assert samples["edge_collector_records_total"] == 90
    assert samples["edge_collector_rejects_total"] == 3
    assert samples["edge_collector_duplicates_total"] == 1
    assert samples["edge_collector_alerts_total"] >= 1
    assert samples["edge_collector_devices"] == 3
    assert "# TYPE edge_collector_records_total counter" in text


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is needed for the dashboard test: run `sh tests/system-packages.sh` "
                    "(installs the Debian package `chromium`; the README's test line runs it first)")  # fmt: skip
    return path


def test_dashboard_renders_in_headless_chromium(app: CollectorHttp, tmp_path: Path) -> None:
    exe = chromium()
    common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000"]
    dom = subprocess.run([*common, "--dump-dom", app.url + "/"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "data-refreshed" in html, "the page's refresh() did not finish"
    # overview cards carry the counters; device table lists all three; the drifting one is highlighted
    assert re.search(r'id="card-records"><b>90</b>', html)
    assert re.search(r'id="card-devices"><b>3</b>', html)
    assert re.search(r'<tr class="open"><td>van-07</td>', html)
    assert re.search(r'<tr class=""><td>bus-01</td>', html)
    # heatmap: 4 features x 30 buckets of rects; drill-down: one polyline per feature (van-07 is the worst device)
    assert len(re.findall(r'class="heat"', html)) == 4 * 60
    assert len(re.findall(r'class="series"', html)) == 4
    assert '<option value="van-07">van-07</option>' in html
    assert "deadline_miss_rate:" in html
    assert re.search(r'<tr class="open"><td>\d+</td><td>open</td><td>van-07</td>', html)
    assert "Acknowledge</button>" in html
    shot = tmp_path / "dashboard.png"
    run = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,1400", app.url + "/"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0 and shot.stat().st_size > 10_000, run.stderr[-2000:]
    # what the screenshot shows: the pink rows of open alerts and of the drifting device, and green heatmap cells
    import cv2  # the dev extra's OpenCV decodes the PNG

    img = cv2.imread(str(shot))  # BGR
    assert img is not None and img.shape[:2] == (1400, 1280)
    pink = np.all(img == (0xE8, 0xE8, 0xFD), axis=2).sum()
    assert pink > 5 * 1000, f"expected the open-alert rows' background, found {pink} pixels"
    b, g, r = (img[..., i].astype(int) for i in range(3))
    calm = ((g > 150) & (r < 120) & (b < 100)).sum()
    assert calm > 20 * 100, f"expected green heatmap cells, found {calm} pixels"
