"""SIGKILL of a real device process mid-run, a torn last record, and a restart: the new process replays the spool,
the torn record is detected by its CRC and dropped (the only loss), and the collector ends up with every record of
the first boot exactly once after deduplication on (device, boot, seq)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from fake_collector import CollectorPeer, wait_for

from edge.telemetry.protocol import Record, encode_record

DRIVER = Path(__file__).with_name("device_driver.py")


def read_spool(d: Path) -> tuple[set[int], set[int]]:
    """(seqs stored, seqs acknowledged) in the first boot's segments, parsed straight from the documented format."""
    stored, acked = set(), set()
    for seg in sorted(d.glob("seg-*.log")):
        data = seg.read_bytes()
        offsets = {}
        pos = 0
        while pos + 8 <= len(data):
            length, crc = struct.unpack_from("<II", data, pos)
            payload = data[pos + 8 : pos + 8 + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            offsets[pos] = msgpack.unpackb(payload)["seq"]
            pos += 8 + length
        stored |= set(offsets.values())
        ack_file = seg.with_suffix(".ack")
        if ack_file.exists():
            raw = ack_file.read_bytes()
            acked |= {offsets[struct.unpack_from("<Q", raw, i)[0]] for i in range(0, len(raw) - 7, 8)}
    return stored, acked


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        if p.stdout:
            p.stdout.close()


def start(procs: list, base: Path, endpoint: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(
        [sys.executable, str(DRIVER), str(base), endpoint, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    procs.append(p)
    return p


def test_sigkill_mid_run_then_restart_replays_once(tmp_path: Path, processes) -> None:
    endpoint = f"ipc://{tmp_path}/c.sock"
    peer = CollectorPeer(endpoint)
    try:
        first = start(processes, tmp_path, endpoint)
        boot1 = first.stdout.readline().split()[1]
        wait_for(lambda: len(peer.of_kind("window")) >= 4, 30.0, "4 windows from the first process")
        peer.ack = False  # the collector keeps receiving but stops acking: records pile up unacked in the spool
        received_before = {r.seq for r in peer.of_kind("window")}
        wait_for(lambda: len(peer.of_kind("window")) >= len(received_before) + 3, 30.0, "unacked windows in flight")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        received_at_kill = {r.seq for r in peer.of_kind("window") if r.boot == boot1}

        stored, acked = read_spool(tmp_path / "spool")
        pending = stored - acked
        top = max(stored | received_at_kill)
        assert pending, "the kill left nothing unacknowledged; the test did not exercise replay"
        assert set(range(1, top + 1)) <= acked | pending | received_at_kill  # nothing missing up to the kill

        # the process died in the middle of an append: a torn record of seq top + 1
        torn = encode_record(Record("event", "dev-kill", boot1, top + 1, 0, 1, {"name": "torn", "fields": {}}))
        last = sorted((tmp_path / "spool").glob("seg-*.log"))[-1]
        with open(last, "ab") as fh:
            fh.write(struct.pack("<II", len(torn), zlib.crc32(torn)) + torn[: len(torn) // 2])

        peer.ack = True
        second = start(processes, tmp_path, endpoint, "--frames", "25", "--start-ns", "0")
        boot2 = second.stdout.readline().split()[1]
        assert boot2 != boot1
        assert second.wait(60) == 0, "the restarted device did not get everything acknowledged"

        mine = {r.seq for r in peer.records.values() if r.boot == boot1}
        assert mine == set(range(1, top + 1))  # every record of the first boot, once, and not the torn one
        assert all(r.kind == "window" for r in peer.records.values() if r.boot == boot1)
        assert peer.received - len(peer.records) == peer.duplicates
        # duplicates arrive only for records the device had no ack for (re-sent after a timeout or the restart)
        assert {seq for _, boot, seq in peer.duplicate_keys if boot == boot1} <= pending
        assert peer.duplicates > 0  # the replay did happen, and dedup on (device, boot, seq) resolved it
        second_windows = [r for r in peer.of_kind("window") if r.boot == boot2]
        assert [r.seq for r in second_windows][:2] == [1, 2]
        assert second_windows[0].body["counters"]["spool_torn"] == 1
    finally:
        peer.close()
