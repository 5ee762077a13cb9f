"""The disk spool: every spooled record is written here before it is sent, and deleted only when acknowledged.

Layout of the spool folder (owned by one publisher at a time):

* ``seg-NNNNNNNN.log`` — append-only segments. Each record is ``u32 length | u32 crc32(payload) | payload``
  (little-endian; the payload is the encoded record, PROTOCOL.md). A new segment starts at every open (so a
  segment never mixes boots) and when the active one would exceed ``segment_bytes``.
* ``seg-NNNNNNNN.ack`` — append-only: the byte offset (u64 little-endian) of every acknowledged record of that
  segment. A segment whose records are all acknowledged is deleted with its ack file.

On open, every segment is scanned: a record whose header is short, whose length is impossible or whose CRC does
not match is a torn write (the process died mid-append): the file is truncated there and ``torn`` counts it.
Over ``max_bytes``, whole segments are evicted oldest first and ``evicted`` counts the unacknowledged records lost.
Durability follows ``fsync``: ``"always"`` (every append), ``"every_n"`` (every ``fsync_every`` appends),
``"interval"`` (at most ``fsync_interval_s`` after an append, on :meth:`tick`) or ``"never"`` (the OS decides;
survives a process kill, not a power cut). Only the publisher thread calls a spool.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError, ProtocolError
from edge.telemetry.protocol import MAX_FRAME_BYTES, decode_frame

__all__ = ["FSYNC_POLICIES", "Spool", "SpoolEntry"]

FSYNC_POLICIES = ("always", "every_n", "interval", "never")
HEADER = struct.Struct("<II")
ACK = struct.Struct("<Q")

Key = tuple[str, int]  # (boot, seq); the device id is the spool's own


@dataclass(frozen=True)
class SpoolEntry:
    segment: int
    offset: int
    length: int


class _Segment:
    def __init__(self, number: int, path: Path) -> None:
        self.number = number
        self.path = path
        self.ack_path = path.with_suffix(".ack")
        self.size = 0
        self.pending = 0


def _seg_name(number: int) -> str:
    return f"seg-{number:08d}.log"


class Spool:
    """Append-only, CRC-checked, size-capped record store (see the module docstring). Sizes in bytes."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 64 << 20,
        segment_bytes: int = 1 << 20,
        fsync: str = "interval",
        fsync_every: int = 64,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"telemetry.fsync: expected one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        if max_bytes < 2 * segment_bytes:
            raise ConfigError(
                f"telemetry.spool_max_bytes: expected at least twice segment_bytes ({2 * segment_bytes}), "
                f"got {max_bytes}"
            )
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.segment_bytes = max_bytes, segment_bytes
        self.fsync, self.fsync_every, self.fsync_interval_s = fsync, fsync_every, fsync_interval_s
        self._clock = clock
        self.torn = 0  # records dropped at open: torn or corrupt (CRC) tails
        self.evicted = 0  # unacknowledged records lost to the size cap
        self.appended = 0
        self._entries: dict[Key, SpoolEntry] = {}  # pending records, oldest first
        self._segments: dict[int, _Segment] = {}
        self._fds: dict[int, int] = {}  # read fds of closed segments, opened lazily
        self._unsynced = 0
        self._dirty_since: float | None = None
        self._recover()
        number = max(self._segments, default=0) + 1
        self._active = self._open_segment(number)

    # ----------------------------------------------------------------------------------------- opening

    def _recover(self) -> None:
        for path in sorted(self.dir.glob("seg-*.log")):
            try:
                number = int(path.stem.split("-")[1])
            except (IndexError, ValueError):
                continue
            seg = _Segment(number, path)
            self._segments[number] = seg
            acked = self._read_acks(seg)
            data = path.read_bytes()
            pos = 0
            while pos < len(data):
                if len(data) - pos < HEADER.size:
                    break
                length, crc = HEADER.unpack_from(data, pos)
                end = pos + HEADER.size + length
                if length > MAX_FRAME_BYTES or end > len(data) or zlib.crc32(data[pos + HEADER.size : end]) != crc:
                    break
                payload = data[pos + HEADER.size : end]
                if pos not in acked:
                    try:
                        rec = decode_frame(payload)
                        self._entries[(rec.boot, rec.seq)] = SpoolEntry(number, pos, end - pos)
                        seg.pending += 1
                    except ProtocolError:
                        self.torn += 1
                pos = end
            if pos < len(data):
                self.torn += 1
                with open(path, "r+b") as fh:
                    fh.truncate(pos)
                    os.fsync(fh.fileno())
            seg.size = pos
            if seg.pending == 0:
                self._delete(seg)

    def _read_acks(self, seg: _Segment) -> set[int]:
        try:
            raw = seg.ack_path.read_bytes()
        except FileNotFoundError:
            return set()
        n = len(raw) // ACK.size  # a torn last ack entry is ignored (the record is simply sent again)
        return {ACK.unpack_from(raw, i * ACK.size)[0] for i in range(n)}

    def _open_segment(self, number: int) -> _Segment:
        seg = _Segment(number, self.dir / _seg_name(number))
        self._segments[number] = seg
        self._wfd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._afd = os.open(seg.ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync != "never":
            self._sync_dir()
        return seg

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ----------------------------------------------------------------------------------------- writing

    def append(self, key: Key, payload: bytes) -> None:
        """Store one encoded record under ``key`` = (boot, seq); durable according to the fsync policy."""
        need = HEADER.size + len(payload)
        if self._active.size and self._active.size + need > self.segment_bytes:
            self._roll()
        seg = self._active
        os.write(self._wfd, HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._entries[key] = SpoolEntry(seg.number, seg.size, need)
        seg.size += need
        seg.pending += 1
        self.appended += 1
        self._unsynced += 1
        if self._dirty_since is None:
            self._dirty_since = self._clock()
        if self.fsync == "always" or (self.fsync == "every_n" and self._unsynced >= self.fsync_every):
            self.sync()
        self._enforce_cap()

    def tick(self, now: float | None = None) -> None:
        """Apply the ``"interval"`` policy (called by the publisher every poll)."""
        if self.fsync == "interval" and self._dirty_since is not None:
            if (self._clock() if now is None else now) - self._dirty_since >= self.fsync_interval_s:
                self.sync()

    def sync(self) -> None:
        """fsync the active segment and its ack file."""
        if self._unsynced or self._dirty_since is not None:
            os.fsync(self._wfd)
            os.fsync(self._afd)
        self._unsynced = 0
        self._dirty_since = None

    def _roll(self) -> None:
        if self.fsync != "never":
            self.sync()
        os.close(self._wfd)
        os.close(self._afd)
        old = self._active
        self._active = self._open_segment(old.number + 1)
        if old.pending == 0:
            self._delete(old)

    def _enforce_cap(self) -> None:
        while self.total_bytes > self.max_bytes and len(self._segments) > 1:
            oldest = self._segments[min(self._segments)]
            if oldest is self._active:
                break
            lost = [k for k, e in self._entries.items() if e.segment == oldest.number]
            for k in lost:
                del self._entries[k]
            self.evicted += len(lost)
            self._delete(oldest)

    def _delete(self, seg: _Segment) -> None:
        fd = self._fds.pop(seg.number, None)
        if fd is not None:
            os.close(fd)
        seg.path.unlink(missing_ok=True)
        seg.ack_path.unlink(missing_ok=True)
        self._segments.pop(seg.number, None)

    # ----------------------------------------------------------------------------------------- acks and reads

    def ack(self, key: Key) -> bool:
        """The collector stored ``key``: forget it (True), or False when it was not pending (a duplicate ack)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        seg = self._segments[entry.segment]
        seg.pending -= 1
        if seg is self._active:
            os.write(self._afd, ACK.pack(entry.offset))
        elif seg.pending == 0:
            self._delete(seg)
        else:
            with open(seg.ack_path, "ab") as fh:
                fh.write(ACK.pack(entry.offset))
        return True

    def read(self, key: Key) -> bytes | None:
        """The stored payload of a pending record (None when it is no longer pending)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.segment == self._active.number:
            fd = os.open(self._active.path, os.O_RDONLY)
            try:
                raw = os.pread(fd, entry.length, entry.offset)
            finally:
                os.close(fd)
        else:
            fd = self._fds.get(entry.segment)
            if fd is None:
                fd = self._fds[entry.segment] = os.open(self._segments[entry.segment].path, os.O_RDONLY)
            raw = os.pread(fd, entry.length, entry.offset)
        return raw[HEADER.size :]

    def pending_keys(self) -> Iterator[Key]:
        """Pending keys, oldest first (a snapshot)."""
        return iter(list(self._entries))

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    @property
    def pending(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    def close(self) -> None:
        """Sync (unless the policy is ``"never"``) and close every file."""
        if self.fsync != "never":
            self.sync()
        os.close(self._wfd)
        os.close(self._afd)
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._active.pending == 0:
            self._delete(self._active)
