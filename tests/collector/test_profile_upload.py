"""Reference profiles uploaded over the wire, once, by hash (PROTOCOL.md §4.1, §5, §8), against a real
CollectorServer on loopback: raw DEALER devices for the collector's answers (unknown → asked for, uploaded → scored,
forged → rejected and counted while good traffic flows, oversized → refused), and real telemetry taps for the
device's side (it uploads when asked, a second device and a restarted collector do not need it again)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from collector_devices import Device
from collector_support import wait_for

from edge.collector.http import prometheus_text
from edge.collector.server import CollectorServer, CollectorSettings
from edge.contracts import FrameContext
from edge.drift.profile import FeatureSpec, ReferenceProfile
from edge.loop.clock import LockstepClock
from edge.telemetry import TelemetryTap, parse_telemetry
from edge.telemetry.protocol import MAX_PROFILE_BYTES
from edge.telemetry.records import hello_body
from edge.telemetry.window import WindowRing

MODEL = "clf@1.0.0"
CLASSES = 4


def _profile(bins: int = 8, shift: float = 0.0) -> ReferenceProfile:
    """Pixel mean/std features with reference counts and a 4-class prediction reference."""
    feats = []
    for stat, hi in (("mean", 255.0), ("std", 100.0)):
        for c in range(3):
            edges = np.linspace(0.0, hi, bins + 1) + shift
            counts = np.r_[0, np.full(bins, 100), 0, 0].astype(np.int64)
            moments = np.array([100.0 * bins, hi / 2, (hi**2 / 12) * 100 * bins, 0.0, hi])
            src = {"kind": "stats", "stat": stat, "channel": c}
            feats.append(FeatureSpec(f"pixel_{stat}_c{c}", src, edges, counts, moments))
    return ReferenceProfile(tuple(feats), prediction_output=0, prediction_counts=np.array([250, 250, 250, 250]))


def _hello(profile: ReferenceProfile, **extra: Any) -> dict[str, Any]:
    names = tuple(f.name for f in profile.features)
    return {**hello_body(WindowRing(profile, names, MODEL, CLASSES, 2), 1.0), **extra}


def _window(profile: ReferenceProfile, i: int, rng: np.random.Generator) -> dict[str, Any]:
    feats = {}
    for f in profile.features:
        c = np.r_[0, rng.multinomial(30, np.full(len(f.edges) - 1, 1 / (len(f.edges) - 1))), 0, 0]
        feats[f.name] = {"c": c.tolist(), "m": [30.0, 1.0, 2.0, 0.0, 3.0]}
    return {"model": MODEL, "profile": profile.profile_id, "start_ns": i * 10**9, "end_ns": (i + 1) * 10**9,
            "features": feats, "latency": {}, "predictions": rng.multinomial(30, [0.25] * 4).tolist(),
            "counters": {"frames": 30}}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CollectorServer]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None, horizons=(5,)))
    yield s
    s.close()


@pytest.fixture
def devices(server: CollectorServer) -> Iterator[Callable[[str], Device]]:
    ctx = zmq.Context()
    made: list[Device] = []

    def make(name: str) -> Device:
        made.append(Device(ctx, server.endpoint, name))
        return made[-1]

    yield make
    for d in made:
        d.close()
    ctx.term()


def test_unknown_profile_is_asked_for_uploaded_once_and_windows_are_scored(server, devices, rng) -> None:
    profile = _profile()
    pid = profile.profile_id
    dev = devices("dev-a")
    dev.send_records(dev.record("hello", _hello(profile)))
    rep = dev.reply()
    assert rep.need_profile == pid and rep.rejected == ()
    assert server.counters["unknown_profile"] == 1 and not server.engine.has_reference(MODEL)
    dev.send_records(dev.record("hello", _hello(profile, profile_json=profile.to_bytes())))
    rep = dev.reply()
    assert rep.need_profile == "" and rep.rejected == ()
    assert server.store.profile(pid) == profile.to_bytes() and server.profiles.uploaded == 1
    assert server.engine.has_reference(MODEL)
    dev.send_records(*(dev.record("window", _window(profile, i, rng), t_ns=(i + 1) * 10**9) for i in range(6)))
    assert dev.reply().acks and dev.acked == set(range(1, 7))
    assert server.drain(20.0)
    assert server.engine.windows_scored == 6 and server.engine.windows_skipped == 0
    # a second device with the same profile is not asked for it
    other = devices("dev-b")
    other.send_records(other.record("hello", _hello(profile)))
    assert other.reply().need_profile == ""
    assert server.profiles.uploaded == 1 and server.counters["unknown_profile"] == 1
    assert server.counters["profile_uploads"] == 1 and server.counters["profile_rejects"] == 0
    text = prometheus_text(server.counters, {})  # what /metrics serves
    assert "edge_collector_profile_uploads_total 1\n" in text and "edge_collector_profile_rejects_total 0\n" in text
    assert "# HELP edge_collector_profile_uploads_total reference profiles uploaded in a device's hello" in text


def test_forged_profile_is_rejected_and_counted_while_good_traffic_flows(server, devices, rng) -> None:
    good_profile, other = _profile(), _profile(shift=1.0)
    pid = good_profile.profile_id
    server.profiles.upload(pid, good_profile.to_bytes())
    good, bad = devices("dev-good"), devices("dev-bad")
    good.send_records(good.record("hello", _hello(good_profile)))
    assert good.reply().need_profile == ""
    forged_id = _profile(bins=6).profile_id  # an id the collector does not know, with another profile's content
    forged = bad.record("hello", {**_hello(_profile(bins=6)), "profile_json": other.to_bytes()})
    rejects = server.counters["rejects"]
    for i in range(3):
        bad.send_records(forged)
        good.send_records(good.record("window", _window(good_profile, i, rng), t_ns=(i + 1) * 10**9))
        rep = bad.reply()
        assert rep.need_profile == "" and len(rep.rejected) == 1
        r = rep.rejected[0]
        assert (r.boot, r.seq, r.code) == ("dev-bad-boot", 0, "malformed")
        assert f"expected a profile whose id is {forged_id}, got {other.profile_id}" in r.message
        assert good.reply().acks
    assert good.acked == {1, 2, 3}
    assert server.counters["rejects"] == rejects + 3 and server.profiles.rejected == 3
    assert server.counters["profile_rejects"] == 3 and server.counters["profile_uploads"] == 0
    assert server.store.profile(forged_id) is None and server.store.profile(other.profile_id) is None
    assert server.profiles.ids() == [pid]


def test_garbage_profile_is_rejected(server, devices) -> None:
    bad = devices("dev-x")
    bad.send_records(bad.record("hello", _hello(_profile(), profile_json=b"\xff not json")))
    rep = bad.reply()
    assert rep.rejected[0].code == "malformed" and "expected UTF-8 JSON" in rep.rejected[0].message
    assert server.profiles.ids() == [] and server.profiles.rejected == 1


def test_oversized_profile_is_refused_by_the_decoder(server, devices) -> None:
    import msgpack

    profile = _profile()
    bad = devices("dev-big")
    rec = bad.record("hello", _hello(profile, profile_json=b" " * (MAX_PROFILE_BYTES + 1)))
    bad.send(msgpack.packb(rec.to_map(), use_bin_type=True))  # encode_record would refuse to send it
    rep = bad.reply()
    assert [(r.seq, r.code) for r in rep.rejected] == [(0, "limit")]
    assert "hello.profile_json" in rep.rejected[0].message and "524289 bytes" in rep.rejected[0].message
    assert server.profiles.ids() == [] and server.counters["rejects"] == 1
    bad.send_records(bad.record("hello", _hello(profile)))  # the collector goes on
    assert bad.reply().need_profile == profile.profile_id


# ---------------------------------------------------------------------------------------- the device's side


class TapDevice:
    """A telemetry tap fed like the loop feeds it, on a LockstepClock (10 ms per frame, 0.1 s windows)."""

    def __init__(self, endpoint: str, name: str, profile: ReferenceProfile, tmp_path: Path, classes: int) -> None:
        table = {"spool_dir": f"spool-{name}", "endpoint": endpoint, "window_s": 0.1, "fsync": "never"}
        self.tap = TelemetryTap(parse_telemetry(table, tmp_path), device_id=name, profile=profile)
        self.clock = LockstepClock()
        self.ctx = FrameContext(3)
        self.ctx.outputs = (np.zeros((1, classes), np.float32),)
        self.ctx.model_version = MODEL
        self.tap.bind(self.ctx, None)

    def run(self, frames: int, rng: np.random.Generator) -> None:
        ctx = self.ctx
        for _ in range(frames):
            ctx.tick_ns = ctx.capture_ns = self.clock.now_ns()
            ctx.stats[0] = rng.uniform(0, 255, 3)
            ctx.stats[1] = rng.uniform(0, 100, 3)
            ctx.stage_us[:] = rng.uniform(1, 5000, ctx.stage_us.shape[0])
            ctx.outputs[0][...] = rng.random(ctx.outputs[0].shape)
            self.tap.on_frame(ctx)
            ring = self.tap._ring
            wait_for(lambda r=ring: all(s != 2 for s in r.state), what="the publisher to take closed windows")
            ctx.seq += 1
            self.clock.advance(10_000_000)

    def close(self) -> None:
        self.tap.close(timeout_s=0.5)
        self.tap.publisher._thread.join(5.0)
        assert not self.tap.publisher.alive


@pytest.fixture
def tap_devices(tmp_path: Path) -> Iterator[Callable[..., TapDevice]]:
    made: list[TapDevice] = []

    def make(endpoint: str, name: str, profile: ReferenceProfile, classes: int = CLASSES) -> TapDevice:
        made.append(TapDevice(endpoint, name, profile, tmp_path, classes))
        return made[-1]

    yield make
    for d in made:
        d.close()


def test_devices_upload_once_and_a_restarted_collector_still_has_it(tmp_path, tap_devices, rng) -> None:
    profile = _profile()
    pid = profile.profile_id
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None, horizons=(5,))
    with CollectorServer(settings) as server:
        first = tap_devices(server.endpoint, "dev-1", profile)
        wait_for(lambda: server.engine.has_reference(MODEL), what="the profile uploaded")
        assert first.tap.publisher.profile_uploads == 1 and server.store.profile(pid) == profile.to_bytes()
        first.run(51, rng)  # 5 windows
        wait_for(lambda: first.tap.publisher.acked == 5, what="5 windows acked")
        assert server.drain(20.0)
        assert server.engine.windows_scored == 5 and server.engine.windows_skipped == 0
        second = tap_devices(server.endpoint, "dev-2", profile)
        second.run(21, rng)
        wait_for(lambda: second.tap.publisher.acked == 2, what="the second device's windows acked")
        assert second.tap.publisher.profile_uploads == 0 and server.profiles.uploaded == 1
    with CollectorServer(settings) as restarted:  # the same database
        assert restarted.profiles.ids() == [pid]
        third = tap_devices(restarted.endpoint, "dev-3", profile)
        third.run(21, rng)
        wait_for(lambda: third.tap.publisher.acked == 2, what="windows acked by the restarted collector")
        assert restarted.drain(20.0)
        assert third.tap.publisher.profile_uploads == 0 and restarted.profiles.uploaded == 0
        assert restarted.counters["unknown_profile"] == 0 and restarted.engine.windows_scored == 2


def test_a_profile_too_large_for_a_hello_is_not_sent(server, tap_devices, rng) -> None:
    # 180 output features on 256 edges each: a profile of about 1 MB of JSON
    edges = np.cumsum(np.random.default_rng(1).uniform(0.001, 0.01, 256))
    empty = np.array([0.0, 0.0, 0.0, np.nan, np.nan])
    source = [{"kind": "output", "output": 0, "index": j} for j in range(180)]
    feats = tuple(FeatureSpec(f"out_{j}", s, edges, np.zeros(258, np.int64), empty) for j, s in enumerate(source))
    big = ReferenceProfile(feats)
    assert len(big.to_bytes()) > MAX_PROFILE_BYTES
    dev = tap_devices(server.endpoint, "dev-big", big, classes=200)
    wait_for(lambda: dev.tap.publisher.profile_too_large == 1, what="the device to refuse sending its profile")
    dev.run(11, rng)
    wait_for(lambda: dev.tap.publisher.acked == 1, what="its window acked all the same")
    assert dev.tap.publisher.profile_uploads == 0 and server.profiles.ids() == []
    assert server.counters["rejects"] == 0 and server.counters["unknown_profile"] >= 1
