"""``edge captures export DB --out X.mcap``: capture records in a real collector store (SQLite, written through the
store's own API as the collector's ingest does) come out as foxglove.RawImage frames and edge.Capture fields, per
device, in an MCAP file the mcap reader reads back; records that are not (H, W, 3) uint8 zlib images are skipped
and counted; a missing database is one line and exit 2."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np
from io_media import H, W, index_of, pattern
from mcap.reader import make_reader

from edge.cli import main
from edge.collector.store import RecordStore


def capture_body(i: int, **over) -> dict:
    frame = pattern(i)
    body = {
        "model": "cnn@1.0",
        "frame_seq": 100 + i,
        "capture_ns": 5_000_000_000 + i * 50_000_000,
        "reason": "low_confidence" if i % 2 else "sample",
        "shape": [H, W, 3],
        "dtype": "uint8",
        "codec": "zlib",
        "data": zlib.compress(frame.tobytes()),
        "confidence": 0.25 if i % 2 else float("nan"),
    }
    return {**body, **over}


def make_store(path: Path) -> None:
    store = RecordStore(path)
    try:
        for i in range(6):
            device = "robot-1" if i < 4 else "robot-2"
            store.add(device, "boot-a", i + 1, "capture", 1000 + i, 2000 + i, capture_body(i))
        store.add("robot-1", "boot-a", 7, "capture", 1007, 2007, capture_body(6, codec="png"))
        store.add("robot-1", "boot-a", 8, "capture", 1008, 2008, capture_body(7, shape=[3], data=zlib.compress(b"abc")))
        store.add("robot-1", "boot-a", 9, "window", 1009, 2009, {"not": "a capture"})
        store.commit()
    finally:
        store.close()


def test_captures_export_to_mcap_per_device(tmp_path: Path, capsys) -> None:
    db = tmp_path / "fleet.db"
    make_store(db)
    out = tmp_path / "captures.mcap"
    assert main(["captures", "export", str(db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "edge captures export: 6 captures to" in printed and "(robot-1: 4, robot-2: 2)" in printed
    assert "skipped 1: codec 'png', expected 'zlib'" in printed and "skipped 1: not an (H, W, 3) uint8 image" in printed
    got: dict[str, list] = {}
    with out.open("rb") as f:
        for schema, channel, m in make_reader(f).iter_messages():
            got.setdefault(channel.topic, []).append((schema.name, m.log_time, json.loads(m.data)))
    assert sorted(got) == [
        "/edge/captures/robot-1/image",
        "/edge/captures/robot-1/info",
        "/edge/captures/robot-2/image",
        "/edge/captures/robot-2/info",
    ]
    images = got["/edge/captures/robot-1/image"] + got["/edge/captures/robot-2/image"]
    indices = []
    for schema, log_time, m in images:
        raw = np.frombuffer(base64.b64decode(m["data"]), np.uint8).reshape(m["height"], m["width"], 3)
        assert schema == "foxglove.RawImage" and m["encoding"] == "rgb8"
        indices.append(index_of(raw))
        assert np.array_equal(raw, pattern(indices[-1])) and log_time == 5_000_000_000 + indices[-1] * 50_000_000
    assert indices == [0, 1, 2, 3, 4, 5]
    info = [m for _s, _t, m in got["/edge/captures/robot-1/info"]]
    assert info[1] == {
        "device": "robot-1",
        "boot": "boot-a",
        "seq": 2,
        "model": "cnn@1.0",
        "frame_seq": 101,
        "capture_ns": 5_050_000_000,
        "reason": "low_confidence",
        "confidence": 0.25,
        "drift_score": None,
    }
    assert info[0]["confidence"] is None  # NaN: no confidence
    only = tmp_path / "robot-2.mcap"
    assert main(["captures", "export", str(db), "--out", str(only), "--device", "robot-2"]) == 0
    assert "2 captures" in capsys.readouterr().out


def test_a_missing_database_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["captures", "export", str(tmp_path / "none.db"), "--out", str(tmp_path / "x.mcap")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"edge: ConfigError: captures export: expected a collector database, got {tmp_path}/none.db (not found)"
    ]
    assert not (tmp_path / "none.db").exists()
