"""The examples of docs/PROTOCOL.md sent as a device written from the document would send them, to a real
CollectorServer on loopback: §8's reference profile (integers where the example has them, hashed the way a generic
JSON writer canonicalises it) is asked for, uploaded, stored and survives a restart; §10's window body names it and is
acknowledged and scored."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.drift.profile import load_profile

DOC = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()


def _block_after(marker: str) -> str:
    assert marker in DOC, f"PROTOCOL.md no longer says {marker!r}"
    return DOC.split(marker, 1)[1].split("```", 2)[1].removeprefix("json")


def profile_example() -> dict[str, Any]:
    return json.loads(_block_after("UTF-8 JSON (`edge.drift.profile`, `load_profile` / `save_profile`):"))


def window_example() -> dict[str, Any]:
    return json.loads(_block_after("in JSON notation (its"))


def canonical(doc: dict[str, Any]) -> bytes:
    """§8's canonical JSON as any JSON library writes it: integers stay integers."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def stated_profile_id() -> str:
    m = re.search(r"its profile id is `([0-9a-f]{16})`", DOC)
    assert m, "PROTOCOL.md §8 states its example's profile id"
    return m.group(1)


def test_profile_example_is_complete_json_with_integers_and_its_stated_id() -> None:
    doc = profile_example()
    assert doc["features"][0]["moments"][0] == 1000 and type(doc["features"][0]["moments"][0]) is int
    pid = hashlib.sha256(canonical(doc)).hexdigest()[:16]
    assert pid == stated_profile_id()
    profile = load_profile(canonical(doc))
    assert profile.names == ("pixel_mean_c0", "top1") and profile.prediction_counts.tolist() == [412, 97, 0, 491]
    # the reference device writes floats (1000.0): another id for the same values, which §8 says a collector accepts
    assert profile.profile_id != pid and load_profile(profile.to_bytes()).profile_id == profile.profile_id


def test_window_example_names_the_profile_example() -> None:
    body = window_example()
    assert body["profile"] == stated_profile_id()
    assert set(body["features"]) == {f["name"] for f in profile_example()["features"]}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None, horizons=(5,)))
    yield s
    s.close()


@pytest.fixture
def device(collector: CollectorServer) -> Iterator[Device]:
    ctx = zmq.Context()
    dev = Device(ctx, collector.endpoint, "doc-client")
    yield dev
    dev.close()
    ctx.term()


def _hello(pid: str, **extra: Any) -> dict[str, Any]:
    """A hello as §4.1 describes it, written by hand (window_s as the integer 1)."""
    feats = [{"name": f["name"], "edges": f["edges"]} for f in profile_example()["features"]]
    return {"software": "doc-client 1", "kernels": "numpy", "model": "det@2", "profile": pid, "window_s": 1,
            "features": feats, "latency_edges_us": [10 ** (i / 4) for i in range(25)], **extra}  # fmt: skip


def test_examples_go_through_a_real_collector_and_survive_a_restart(collector, device, tmp_path) -> None:
    body = canonical(profile_example())
    pid = stated_profile_id()
    device.send_records(device.record("hello", _hello(pid)))
    rep = device.reply()
    assert rep.need_profile == pid and rep.rejected == ()
    device.send_records(device.record("hello", _hello(pid, profile_json=body)))
    rep = device.reply()
    assert rep.rejected == () and rep.need_profile == ""
    assert collector.store.profile(pid) == body and collector.counters["profile_uploads"] == 1
    assert collector.engine.has_reference("det@2")
    device.send_records(device.record("window", window_example(), t_ns=6_000_000_000))
    rep = device.reply()
    assert rep.rejected == () and device.acked == {1}
    assert collector.drain(20.0)
    assert collector.engine.windows_scored == 1 and collector.engine.windows_skipped == 0
    collector.close()
    again = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "c.db", http=None))
    try:
        assert again.profiles.get(pid) is not None and again.store.profile(pid) == body
    finally:
        again.close()


def test_a_body_hashing_to_neither_id_is_still_refused(collector, device) -> None:
    body = canonical(profile_example())
    wrong = "0123456789abcdef"
    device.send_records(device.record("hello", _hello(wrong, profile_json=body)))
    rep = device.reply()
    assert len(rep.rejected) == 1 and rep.rejected[0].code == "malformed"
    assert f"expected a profile whose id is {wrong}" in rep.rejected[0].message
    assert collector.store.profile(wrong) is None and collector.counters["profile_rejects"] == 1


def test_minimal_python_device_of_the_document_runs_against_a_real_collector(collector) -> None:
    """§10's "minimal device in Python", run as written (only its endpoint points at this collector)."""
    code = _block_after("A minimal device in Python (pyzmq + msgpack), without spool or CURVE:").removeprefix("python")
    assert 'sock.connect("tcp://collector:7000")' in code
    scope: dict[str, Any] = {}
    exec(code.replace("tcp://collector:7000", collector.endpoint), scope)  # the document's own client
    try:
        assert scope["reply"] == {"v": 1, "kind": "ack", "acks": [["b0", 1, 1]], "rejected": []}
        assert collector.store.keys() == {("dev-7", "b0", 1)}
    finally:
        scope["sock"].close(linger=0)
