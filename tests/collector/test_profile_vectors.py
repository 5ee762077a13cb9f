"""PROTOCOL.md §8's canonical JSON and its test vectors (docs/protocol/profiles/): a writer of the document's rules
written here without the json module or the collector's code gives each vector's canonical bytes and id, the
collector's own canonicalisation agrees, and a real collector takes each upload (as written and canonical) over a
real socket, under the vector's id."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from collector_devices import Device

from edge.collector.server import CollectorServer, CollectorSettings
from edge.drift.profile import profile_from_json

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "protocol" / "profiles"
LIST = json.loads((VECTORS / "vectors.json").read_text(encoding="utf-8"))["vectors"]
FLOAT_KEYS = {"edges", "moments", "mean", "basis"}


def doc_float(v: float) -> str:
    """§8 rule 3, from numpy's shortest round-trip digits (Dragon4), not Python's repr."""
    if v == 0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    sci = np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    exponent = int(sci.split("e")[1])
    if -4 <= exponent < 16:
        return np.format_float_positional(v, unique=True, trim="0")
    return sci


def doc_string(s: str) -> str:
    """§8 rule 4."""
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in s:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20 or 0x7F < ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        elif ord(ch) > 0xFFFF:
            u = ord(ch) - 0x10000
            out.append(f"\\u{0xD800 + (u >> 10):04x}\\u{0xDC00 + (u & 0x3FF):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def doc_value(v: Any, floats: bool) -> str:
    if v is None:
        return "null"
    if isinstance(v, list):
        return "[" + ",".join(doc_value(x, floats) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v)  # code point order
        return "{" + ",".join(f"{doc_string(k)}:{doc_value(v[k], k in FLOAT_KEYS)}" for k in keys) + "}"
    if isinstance(v, str):
        return doc_string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if floats:  # rule 2: these arrays hold floats whatever the input wrote; rule 2: non-finite moments are null
        return doc_float(float(v)) if math.isfinite(float(v)) else "null"
    return str(int(v))


def doc_canonical(doc: dict[str, Any]) -> bytes:
    """§8 rules 1-5 for the keys a profile has."""
    keep: dict[str, Any] = {"schema": doc["schema"]}
    keep["features"] = [{k: f[k] for k in ("name", "source", "edges", "counts", "moments")} for f in doc["features"]]
    if "pca" in doc:
        keep["pca"] = {k: doc["pca"][k] for k in ("output", "mean", "basis")}
    if "prediction" in doc:
        keep["prediction"] = {k: doc["prediction"][k] for k in ("output", "counts") if k in doc["prediction"]}
    return doc_value(keep, False).encode("ascii")


def test_the_float_rule_on_its_edges() -> None:
    assert [doc_float(x) for x in (1000, 0.0001, 1e-05, 1e16, 9999999999999998.0, -0.0, 0.1 + 0.2)] == [
        "1000.0", "0.0001", "1e-05", "1e+16", "9999999999999998.0", "-0.0", "0.30000000000000004",
    ]  # fmt: skip
    assert doc_string('é"\U0001f600') == '"\\u00e9\\"\\ud83d\\ude00"'


def test_the_document_lists_every_vector_with_its_id() -> None:
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"\| `([\w-]+\.json)` \| `([0-9a-f]{16})` \|", doc))
    assert listed == {v["profile"]: v["id"] for v in LIST} and len(LIST) == 3


@pytest.mark.parametrize("vec", LIST, ids=[v["name"] for v in LIST])
def test_vector_bytes_and_id_follow_the_rules(vec: dict[str, str]) -> None:
    written = json.loads((VECTORS / vec["profile"]).read_text(encoding="utf-8"))
    canonical = (VECTORS / vec["canonical"]).read_bytes()
    assert doc_canonical(written) == canonical
    assert hashlib.sha256(canonical).hexdigest()[:16] == vec["id"]
    # the collector's canonicalisation (edge.drift.profile) agrees, from the bytes as written and from its own
    assert profile_from_json(written).to_bytes() == canonical
    assert profile_from_json(json.loads(canonical)).profile_id == vec["id"]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "v.db", http=None))
    yield s
    s.close()


def _hello(pid: str, written: dict[str, Any], **extra: Any) -> dict[str, Any]:
    feats = [{"name": f["name"], "edges": f["edges"]} for f in written["features"]]
    return {"software": "vectors 1", "kernels": "numpy", "model": "vec@1", "profile": pid, "window_s": 1.0,
            "features": feats, "latency_edges_us": [1.0, 10.0], **extra}  # fmt: skip


@pytest.mark.parametrize("vec", LIST, ids=[v["name"] for v in LIST])
@pytest.mark.parametrize("as_sent", ["profile", "canonical"])
def test_a_real_collector_takes_each_vector_under_its_id(collector, vec: dict[str, str], as_sent: str) -> None:
    body = (VECTORS / vec[as_sent]).read_bytes()
    written = json.loads(body)
    ctx = zmq.Context()
    dev = Device(ctx, collector.endpoint, "vectors")
    try:
        dev.send_records(dev.record("hello", _hello(vec["id"], written)))
        assert dev.reply().need_profile == vec["id"]
        dev.send_records(dev.record("hello", _hello(vec["id"], written, profile_json=body)))
        rep = dev.reply()
        assert rep.rejected == () and rep.need_profile == ""
        assert collector.profiles.get(vec["id"]) is not None
        assert collector.store.profile(vec["id"]) == (VECTORS / vec["canonical"]).read_bytes()
    finally:
        dev.close()
        ctx.term()
