"""docs/PROTOCOL.md §6, row by row, over a real ZeroMQ socket to a real collector: each row names one code
(``docs/protocol/limits.json`` holds the same table as data) and the collector answers exactly it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from edge.collector import conformance
from edge.collector.server import CollectorServer, CollectorSettings
from edge.errors import ProtocolError
from edge.telemetry.protocol import decode_frame

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ROOT / "docs" / "protocol" / "limits.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    db = tmp_path_factory.mktemp("limits") / "l.db"
    s = CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=db, http=None))
    yield s
    s.close()


@pytest.fixture(scope="module")
def outcomes(server: CollectorServer) -> list[conformance.Outcome]:
    return conformance.run(server.endpoint, LIMITS, timeout_s=20.0)


def doc_table() -> dict[str, str]:
    """row → code as PROTOCOL.md §6's table writes it (the code in backquotes, or "no reply")."""
    text = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    section = text[text.index("## 6. Limits") : text.index("## 7. Versioning")]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \|.*\| ([^|]+) \|$", line)
        if m:
            code = re.match(r"`(\w+)`", m[2].strip())
            rows[m[1]] = code[1] if code else "drop" if m[2].strip().startswith("no reply") else m[2]
    return rows


def test_the_document_and_the_data_file_hold_the_same_table() -> None:
    data = json.loads(LIMITS.read_text(encoding="utf-8"))["rows"]
    assert {r["row"]: r["code"] for r in data} == doc_table()
    assert len(data) == 17


def test_every_row_is_walked(outcomes: list[conformance.Outcome]) -> None:
    assert {o.row for o in outcomes} == set(doc_table())
    # both sides where the row has one: some record of the row acked, some rejected
    assert {o.row for o in outcomes if o.expected == "ack"} >= {"frame", "records_per_message", "event_depth", "names"}


@pytest.mark.parametrize("row", sorted(doc_table()))
def test_row_answers_exactly_its_code(outcomes: list[conformance.Outcome], row: str) -> None:
    mine = [o for o in outcomes if o.row == row]
    assert mine and all(o.ok for o in mine), [o for o in mine if not o.ok]
    assert {o.got for o in mine if o.expected != "ack"} <= {doc_table()[row]}


def test_the_collector_still_serves_after_the_walk(
    server: CollectorServer, outcomes: list[conformance.Outcome]
) -> None:
    rerun = conformance.run(server.endpoint, LIMITS, timeout_s=20.0)  # a new boot id: nothing collides
    assert [o.ok for o in rerun] == [True] * len(outcomes)


def test_the_runner_reports_a_code_the_table_does_not_give(server: CollectorServer, tmp_path: Path) -> None:
    data = json.loads(LIMITS.read_text(encoding="utf-8"))
    for r in data["rows"]:
        if r["row"] == "seq":
            r["code"] = "malformed"
    wrong = tmp_path / "limits.json"
    wrong.write_text(json.dumps(data), encoding="utf-8")
    failed = [o for o in conformance.run(server.endpoint, wrong, timeout_s=20.0) if not o.ok]
    assert [(o.row, o.expected, o.got) for o in failed] == [("seq", "malformed", "limit")]


def test_the_runner_exits_nonzero_and_writes_json(server: CollectorServer, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    assert conformance.main([server.endpoint, "--json", str(out), "--timeout", "20"]) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["outcomes"]
    assert rows and all(r["ok"] for r in rows)


@pytest.mark.parametrize(
    ("body_over", "code"),
    [
        ({"counters": {}}, "malformed"),  # the required counter missing
        ({"start_ns": 5, "end_ns": 5}, "malformed"),  # a value out of its domain
        ({"predictions": [-1]}, "malformed"),
        ({"predictions": [0] * 4097}, "limit"),
        ({"model": "m" * 257}, "limit"),
        ({"model": ""}, None),
    ],
)
def test_decoder_codes(body_over: dict, code: str | None) -> None:
    """The decoder's ``ProtocolError.code`` is what the collector replies with (the rule of §6)."""
    body = {"model": "m@1", "profile": "", "start_ns": 0, "end_ns": 1, "features": {}, "latency": {},
            "predictions": [], "counters": {"frames": 1}}  # fmt: skip
    rec = {"v": 1, "kind": "window", "device": "d", "boot": "b", "seq": 1, "t_ns": 0, "wall_ns": 0}
    frame = msgpack.packb({**rec, "body": {**body, **body_over}}, use_bin_type=True)
    if code is None:
        assert decode_frame(frame).seq == 1
        return
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame)
    assert info.value.code == code
