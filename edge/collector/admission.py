"""Which records of a message the collector takes, one record at a time (docs/PROTOCOL.md §5 and §6).

These are the ingest checks apart from the socket, the group commit and scoring; :mod:`edge.collector.server`'s
ingest thread calls them for every frame. :class:`Admission` keeps what the checks remember between messages: the
verdict for each window layout (a window whose layout was checked against the reference its model has now is not
decoded again) and, per device, the windows refused as unscorable. Each rejection it makes is counted in the
server's counters. The module's functions read untrusted bytes: :func:`decode` (the shared validator, with any
foreign error mapped to :class:`~edge.errors.ProtocolError`), :func:`best_effort_key` (the key of a record that
did not decode, so that the device can drop that one record), :func:`bound` (whether a key bound to a device id or
pattern may send as a device) and :func:`fit` (a reply string cut to its byte limit).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import msgpack

from edge.collector.engine import DriftEngine
from edge.errors import ProtocolError
from edge.telemetry.protocol import MAX_BATCH_RECORDS, MAX_FRAME_BYTES, Record, RejectedRecord, decode_frame

__all__ = ["MAX_LAYOUTS", "MAX_REJECTING_DEVICES", "Admission", "best_effort_key", "bound", "decode", "fit"]

MAX_REJECTING_DEVICES = 4096  # devices whose unscorable rejections are counted one by one
MAX_LAYOUTS = 1024  # window layouts whose verdict is cached (cleared when full)


class Admission:
    """The record checks that need the collector's state: the drift engine's references (``unscorable``) and the
    counters the rejections go to. Used by the ingest thread only."""

    def __init__(self, engine: DriftEngine, counters: dict[str, int]) -> None:
        self.engine = engine
        self.counters = counters
        # device id -> windows rejected as unscorable (at most MAX_REJECTING_DEVICES, least recent dropped first)
        self.unscorable_by_device: dict[str, int] = {}
        # window layout key -> (model, the reference layout it was checked against, verdict): see window_verdict
        self._layouts: dict[int, tuple[str, object, str]] = {}

    def window_verdict(self, layout: int, data: bytes) -> str:
        """:meth:`unscorable` of a fast-accepted window, from the cache of layout keys when its layout was checked
        against the reference its model has now (a reference replaced or added invalidates the entry)."""
        hit = self._layouts.get(layout)
        if hit is not None and self.engine.counts_layout(hit[0]) == hit[1]:
            return hit[2]
        body = msgpack.unpackb(data, raw=False)["body"]
        ref = self.engine.counts_layout(body["model"])
        why = self.unscorable(body)
        if ref is not None:  # no reference yet: not cached, so the first windows after an upload are checked
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[layout] = (body["model"], ref, why)
        return why

    def unscorable(self, body: dict[str, Any]) -> str:
        """Why a valid window cannot be scored against the reference the collector holds for its model (PROTOCOL.md
        §5, code ``unscorable``): a feature the reference does not have, one it lacks, or another bin count. ""
        when it can be, or when the collector has no reference for the model yet (stored; scored from the next
        windows once the profile is known, §4.1)."""
        layout = self.engine.counts_layout(body["model"])
        if layout is None:
            return ""
        names, lengths = layout[0], layout[1]
        feats = body["features"]
        if len(feats) == len(names) and all(
            len(feats.get(n, {"c": ()})["c"]) == k for n, k in zip(names, lengths, strict=True)
        ):
            return ""
        if unknown := sorted(set(feats) - set(names)):
            return (
                f"window.features: expected the features of {body['model']!r}'s reference {list(names)}, got {unknown}"
            )
        for name, k in zip(names, lengths, strict=True):
            if name not in feats:
                return f"window.features: expected feature {name!r} of {body['model']!r}'s reference, missing"
            if len(feats[name]["c"]) != k:
                return (
                    f"window.features.{name}.c: expected {k} counts (the reference's bins), got {len(feats[name]['c'])}"
                )
        return ""

    def reject_unscorable(self, device: str, boot: str, seq: int, why: str) -> RejectedRecord:
        self.counters["rejects"] += 1
        self.counters["unscorable_rejects"] += 1
        by = self.unscorable_by_device
        by[device] = by.pop(device, 0) + 1  # most recent last; bounded: the least recently rejected device goes
        if len(by) > MAX_REJECTING_DEVICES:
            del by[next(iter(by))]
        return RejectedRecord(boot, seq, "unscorable", fit(why))

    def reject_identity(self, binding: str, device: str, boot: str, seq: int) -> RejectedRecord:
        self.counters["rejects"] += 1
        self.counters["identity_rejects"] += 1
        msg = f"record.device: expected a device id this connection's key is bound to ({binding!r}), got {device!r}"
        return RejectedRecord(boot, seq, "identity", fit(msg))

    def reject_malformed(self, data: bytes, exc: ProtocolError) -> RejectedRecord:
        """A frame the validator refused: its code (``malformed`` or ``limit``), under its key when readable."""
        self.counters["rejects"] += 1
        boot, seq = best_effort_key(data)
        return RejectedRecord(boot, seq, exc.code, fit(str(exc)))

    def reject_oversized(self, frames: list[bytes]) -> list[RejectedRecord]:
        """A message of more than MAX_BATCH_RECORDS records: every frame refused under its own key (``limit``)."""
        self.counters["rejects"] += len(frames)
        msg = f"message: expected at most {MAX_BATCH_RECORDS} records, got {len(frames)}"
        return [RejectedRecord(*best_effort_key(data), "limit", msg) for data in frames]


def decode(data: bytes) -> Record:
    """The shared validator, with any foreign error it lets through mapped to :class:`ProtocolError` (seen: a
    ``RecursionError`` from building the message about a ~1000-deep nested array), so no frame stops the server."""
    try:
        return decode_frame(data)
    except ProtocolError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ProtocolError(
            f"frame: expected a valid record, got one the validator failed on ({type(exc).__name__})"
        ) from exc


def bound(binding: str, device: str) -> bool:
    """Whether a key bound to ``binding`` (a device id or an fnmatch pattern) may send as ``device``."""
    return device == binding or (binding != "" and fnmatchcase(device, binding))


def fit(message: str, limit: int = 256) -> str:
    """``message`` cut to at most ``limit`` UTF-8 bytes (a reply's strings are limited in bytes)."""
    return message.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def best_effort_key(data: bytes) -> tuple[str, int]:
    """(boot, seq) of an undecodable record when its envelope is readable (within the §6 limits), else
    ("", 0), so the device can drop that one record. The envelope's keys are read one by one, so a record whose
    body breaks a limit (an array of 4097 items) still names its key when ``boot`` and ``seq`` come before it."""
    u = msgpack.Unpacker(  # any frame the transport let through (up to max_frame_bytes): its envelope is small
        raw=False, max_array_len=4096, max_map_len=512, max_str_len=1024, max_bin_len=len(data),
        max_buffer_size=max(len(data), MAX_FRAME_BYTES),
    )  # fmt: skip
    u.feed(data)
    found: dict[str, object] = {}
    try:
        for _ in range(u.read_map_header()):
            k = u.unpack()
            if k in ("boot", "seq"):
                found[k] = u.unpack()
                if len(found) == 2:
                    break
            else:
                u.skip()
    except Exception:  # anything undecodable: what was read so far
        pass
    boot, seq = found.get("boot", ""), found.get("seq", 0)
    if (
        isinstance(boot, str)
        and len(boot.encode("utf-8", "replace")) <= 256
        and type(seq) is int
        and 0 <= seq < (1 << 64)
        and len(found) == 2
    ):
        return boot, seq
    return "", 0
