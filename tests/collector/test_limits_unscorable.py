"""Windows that cannot be scored against their model's reference (a feature it lacks or does not have, another bin
count) are rejected at ingest with code ``unscorable`` (PROTOCOL.md §5), under their key, counted in total and per
device, over a real socket to a real collector; the good windows of the same message are acked and scored."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import collector_streams as streams
import numpy as np
import pytest
import zmq
from collector_devices import Device

from edge.collector.http import prometheus_text
from edge.collector.server import CollectorServer, CollectorSettings
from edge.kernels import implementation
from edge.telemetry.protocol import Record, encode_record


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CollectorServer]:
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "u.db", http=("127.0.0.1", 0), horizons=(2,))
    s = CollectorServer(settings)
    yield s
    s.close()


def _variants(rng: np.random.Generator) -> dict[str, dict]:
    good = streams.window_body(rng)
    f0 = next(iter(good["features"]))
    sk = good["features"][f0]
    n = len(sk["c"])
    c = sk["c"]
    fewer = {**sk, "c": [*c[:-3], c[-3] + c[-2], c[-1]]}  # one bin fewer: the overflow merged, the same totals
    more = {**sk, "c": [*c[:-1], 0, c[-1]]}
    return {
        f"{n - 1} counts": {**good, "features": {**good["features"], f0: fewer}},
        f"{n + 1} counts": {**good, "features": {**good["features"], f0: more}},
        "unknown feature": {**good, "features": {**good["features"], "not_in_reference": sk}},
        "missing feature": {**good, "features": {k: v for k, v in good["features"].items() if k != f0}},
    }


def test_unscorable_windows_are_rejected_at_ingest(server: CollectorServer, rng: np.random.Generator) -> None:
    server.engine.set_reference(streams.reference(rng))  # the model's reference, as an operator installs it
    ctx = zmq.Context()
    dev = Device(ctx, server.endpoint, "dev-u")
    try:
        bad = _variants(rng)
        good = [dev.record("window", streams.window_body(rng), t_ns=i) for i in range(2)]
        wrong = [dev.record("window", body, t_ns=9) for body in [*bad.values(), *bad.values()]]  # again: cached
        dev.send(encode_record(good[0]), *(encode_record(r) for r in wrong), encode_record(good[1]))
        rep = dev.reply()
        got = {r.seq: (r.code, r.message) for r in rep.rejected}
        assert sorted(got) == [r.seq for r in wrong]
        assert {code for code, _ in got.values()} == {"unscorable"}
        messages = [got[r.seq][1] for r in wrong]
        assert all("counts (the reference's bins), got" in m for m in messages[:2])
        assert "got ['not_in_reference']" in messages[2] and "missing" in messages[3]
        assert dev.acked == {good[0].seq, good[1].seq}
        assert server.store.record_count() == 2
        n_bad = len(wrong)
        assert server.counters["unscorable_rejects"] == n_bad and server.unscorable_by_device == {"dev-u": n_bad}
        assert server.drain(20.0) and server.engine.windows_scored == 2 and server.counters["engine_errors"] == 0
        assert f"edge_collector_unscorable_rejects_total {n_bad}\n" in prometheus_text(server.counters, {})
        with urllib.request.urlopen(f"{server.http.url}/api/summary", timeout=10) as r:  # the API lists them
            summary = json.loads(r.read())
        assert summary["unscorable_by_device"] == {"dev-u": n_bad}
        assert summary["counters"]["unscorable_rejects"] == n_bad
    finally:
        dev.close()
        ctx.term()


def test_without_a_reference_windows_are_stored_not_judged(server: CollectorServer, rng: np.random.Generator) -> None:
    ctx = zmq.Context()
    dev = Device(ctx, server.endpoint, "dev-n")
    try:
        recs = [dev.record("window", body, t_ns=1) for body in _variants(rng).values()]
        dev.send(*(encode_record(r) for r in recs))
        assert dev.reply().rejected == ()
        assert dev.acked == {r.seq for r in recs} and server.counters["unscorable_rejects"] == 0
    finally:
        dev.close()
        ctx.term()


def _accepts() -> list:
    out = [implementation("numpy")["window_accept"]]
    try:
        out.append(implementation("native")["window_accept"])
    except ImportError:  # native kernels not built: the twin alone
        pass
    return out


def test_layout_keys_equal_in_both_readers_and_name_the_layout(rng: np.random.Generator) -> None:
    """window_accept: the envelope plus a key equal for windows of the same model, feature names and count lengths
    (any order, any values), different otherwise; the native kernel and its twin agree."""
    base = streams.window_body(rng)
    names = list(base["features"])
    same = [base, streams.window_body(rng, shift=2.0), {**base, "features": dict(reversed(base["features"].items()))}]
    other = [{**base, "model": "other@1"}, *_variants(rng).values()]
    keys = []
    for body in same + other:
        frame = encode_record(Record("window", "dev-k", "boot-k", 3, 5, 7, body))
        got = [accept(frame) for accept in _accepts()]
        assert len(set(got)) == 1 and got[0][:5] == ("dev-k", "boot-k", 3, 5, 7)
        keys.append(got[0][5])
    assert len(set(keys[: len(same)])) == 1, "one layout, one key"
    assert len(set(keys)) == 1 + len(other), "each other layout its own key"
    assert names and all(0 <= k < 1 << 64 for k in keys)
    assert [a(b"not a window") for a in _accepts()] == [None] * len(_accepts())
