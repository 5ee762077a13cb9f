"""The disk spool: append, read, ack and delete; recovery after a restart; torn and corrupt tails detected by CRC and
dropped; the size cap evicts whole segments oldest first and counts the records lost."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.telemetry.protocol import Record, encode_record
from edge.telemetry.spool import Spool


def rec(seq: int, boot: str = "boot-a", pad: int = 0) -> bytes:
    body = {"name": "tick", "fields": {"i": seq, "pad": "x" * pad}}
    return encode_record(Record("event", "dev", boot, seq, seq, 1, body))


def fill(spool: Spool, seqs: range, boot: str = "boot-a", pad: int = 0) -> None:
    for s in seqs:
        spool.append((boot, s), rec(s, boot, pad))


def test_append_read_ack_and_segment_deletion(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=512, max_bytes=1 << 20, fsync="always")
    fill(spool, range(1, 21))
    assert spool.pending == 20
    assert spool.read(("boot-a", 7)) == rec(7)
    assert list(spool.pending_keys())[:3] == [("boot-a", 1), ("boot-a", 2), ("boot-a", 3)]
    segments = sorted(tmp_path.glob("seg-*.log"))
    assert len(segments) > 2  # rolled at 512 bytes
    for s in range(1, 21):
        assert spool.ack(("boot-a", s))
    assert not spool.ack(("boot-a", 3))  # a duplicate ack is harmless
    assert spool.pending == 0 and spool.read(("boot-a", 3)) is None
    assert len(list(tmp_path.glob("seg-*.log"))) == 1  # only the active segment is left
    spool.close()
    assert list(tmp_path.glob("seg-*")) == []  # nothing pending: the active segment goes too


@pytest.mark.parametrize("fsync", ["always", "every_n", "interval", "never"])
def test_restart_replays_pending_in_order_and_not_acked_ones(tmp_path: Path, fsync: str) -> None:
    spool = Spool(tmp_path, segment_bytes=1024, max_bytes=1 << 20, fsync=fsync, fsync_every=3)
    fill(spool, range(1, 31))
    for s in (1, 2, 3, 10, 11, 30):
        spool.ack(("boot-a", s))
    spool.close()
    again = Spool(tmp_path, segment_bytes=1024, max_bytes=1 << 20, fsync=fsync)
    expected = [("boot-a", s) for s in range(1, 31) if s not in (1, 2, 3, 10, 11, 30)]
    assert list(again.pending_keys()) == expected
    assert again.read(("boot-a", 20)) == rec(20)
    assert again.torn == 0
    fill(again, range(1, 4), boot="boot-b")  # a new boot appends to a new segment
    assert again.pending == len(expected) + 3
    again.close()


def _last_segment(d: Path) -> Path:
    return sorted(d.glob("seg-*.log"))[-1]


@pytest.mark.parametrize("tear", ["short_header", "short_payload", "bad_crc", "impossible_length"])
def test_torn_last_record_is_detected_and_dropped(tmp_path: Path, tear: str) -> None:
    spool = Spool(tmp_path, fsync="always")
    fill(spool, range(1, 6))
    spool.close()
    seg = _last_segment(tmp_path)
    good_size = seg.stat().st_size
    payload = rec(6)
    header = struct.pack("<II", len(payload), zlib.crc32(payload))
    tail = {
        "short_header": header[:5],
        "short_payload": header + payload[: len(payload) // 2],
        "bad_crc": struct.pack("<II", len(payload), zlib.crc32(payload) ^ 1) + payload,
        "impossible_length": struct.pack("<II", 1 << 30, 0) + payload,
    }[tear]
    with open(seg, "ab") as fh:
        fh.write(tail)
    again = Spool(tmp_path, fsync="always")
    assert again.torn == 1
    assert [k[1] for k in again.pending_keys()] == [1, 2, 3, 4, 5]
    assert seg.stat().st_size == good_size  # truncated back to the last good record
    again.close()


def test_size_cap_evicts_oldest_segments_and_counts_lost_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=2048, max_bytes=4096, fsync="never")
    fill(spool, range(1, 101), pad=50)
    assert spool.total_bytes <= 4096
    assert spool.evicted > 0
    assert spool.evicted + spool.pending == 100
    kept = [k[1] for k in spool.pending_keys()]
    assert kept == list(range(101 - len(kept), 101))  # the newest survive, oldest first
    spool.close()


def test_acks_survive_a_restart_of_a_partly_acked_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="always")
    fill(spool, range(1, 6))
    spool.ack(("boot-a", 2))
    spool.ack(("boot-a", 4))
    spool.close()
    again = Spool(tmp_path, fsync="always")
    again.ack(("boot-a", 1))  # an ack into a closed segment goes to its ack file
    again.close()
    third = Spool(tmp_path, fsync="always")
    assert [k[1] for k in third.pending_keys()] == [3, 5]
    third.close()


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"telemetry\.fsync: expected one of always, every_n, interval, never, got 'sometimes'"
    ):
        Spool(tmp_path, fsync="sometimes")
    with pytest.raises(ConfigError, match="spool_max_bytes: expected at least twice segment_bytes"):
        Spool(tmp_path, max_bytes=100, segment_bytes=100)
