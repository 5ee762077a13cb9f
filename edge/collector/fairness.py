"""Fair backpressure: while scoring is behind, messages wait per connection, and a connection that is not behind
its share of scoring still gets through.

When the scoring queue is at its high-water mark the ingest thread stops taking messages into the store for
everyone (the devices wait for their acks: backpressure) - and so one connection that floods the collector (thousands
of new device ids, each costly to score the first time) would stall every other device for as long as scoring takes
to work through the flood. Instead:

* the messages that arrive meanwhile wait here, in one queue per connection (ZeroMQ routing id), taken one
  connection at a time, round robin (:class:`PeerQueues`);
* above the high-water mark a waiting message is still taken when its connection's windows not yet scored
  (:class:`PendingWindows`) stay within a fair share of the queue's headroom (the headroom divided among the
  connections that have windows waiting), and the queue stays under its capacity. A device that sends a window every
  20 ms has a handful waiting and gets through; the flood, with thousands waiting, waits for scoring.

A connection has at most ``per_peer`` messages waiting (the protocol's in-flight limit, PROTOCOL.md §5: 4); a
message beyond that is answered at once with a reply that acknowledges nothing (its records stay in the device's
spool). With ``total`` messages waiting the ingest thread stops reading the socket (ZeroMQ queues the rest).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from edge.telemetry.protocol import MAX_IN_FLIGHT

__all__ = ["Message", "PeerQueues", "PendingWindows"]

Message = tuple[bytes, Any, list[bytes]]  # routing id, the key's device binding (CURVE) or None, the frames


class PeerQueues:
    """Messages waiting for room in scoring, one FIFO per connection, taken round robin."""

    def __init__(self, per_peer: int = MAX_IN_FLIGHT, total: int = 1024) -> None:
        self.per_peer = per_peer
        self.total = total
        self._queues: OrderedDict[bytes, deque[Message]] = OrderedDict()
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def full(self) -> bool:
        return self._n >= self.total

    def park(self, message: Message) -> bool:
        """Queue ``message`` behind its connection's; False (not queued) when that connection has ``per_peer``."""
        queue = self._queues.get(message[0])
        if queue is None:
            queue = self._queues[message[0]] = deque()
        elif len(queue) >= self.per_peer:
            return False
        queue.append(message)
        self._n += 1
        return True

    def take(self) -> Message | None:
        """The oldest message of the connection whose turn it is (then it goes to the back); None when empty."""
        return self.take_if(None, scan=1)

    def take_if(self, admit: Callable[[Message], bool] | None, scan: int = 64) -> Message | None:
        """:meth:`take` from the first of the next ``scan`` connections (in turn) whose oldest message ``admit``
        accepts (None: any); None when none does."""
        for ident, queue in islice(self._queues.items(), scan):
            if admit is None or admit(queue[0]):
                message = queue.popleft()
                self._n -= 1
                if queue:
                    self._queues.move_to_end(ident)
                else:
                    del self._queues[ident]
                return message
        return None


class PendingWindows:
    """Windows each connection had stored and not yet scored: per connection, ``(the batch's last rowid, windows)``
    per group commit, dropped once the scoring cursor passes the rowid. ``headroom``: the scoring queue's windows
    above its high-water mark, shared among the connections that have windows waiting."""

    def __init__(self, headroom: int) -> None:
        self.headroom = headroom
        self._batches: dict[bytes, deque[tuple[int, int]]] = {}
        self._totals: dict[bytes, int] = {}
        self._pruned = 0.0  # time.monotonic() of the last prune

    def add(self, ident: bytes, last_rowid: int, windows: int) -> None:
        self._batches.setdefault(ident, deque()).append((last_rowid, windows))
        self._totals[ident] = self._totals.get(ident, 0) + windows

    def count(self, ident: bytes, cursor: int) -> int:
        """``ident``'s windows above the scoring ``cursor``."""
        batches = self._batches.get(ident)
        if batches is None:
            return 0
        while batches and batches[0][0] <= cursor:
            self._totals[ident] -= batches.popleft()[1]
        if not batches:
            del self._batches[ident], self._totals[ident]
            return 0
        return self._totals[ident]

    def __len__(self) -> int:
        """Connections with windows recorded (some may be scored already: :meth:`prune` drops them)."""
        return len(self._batches)

    def prune(self, cursor: int) -> None:
        """Forget what the scoring ``cursor`` has passed, for every connection."""
        for ident in list(self._batches):
            self.count(ident, cursor)

    def within_share(self, cursor: int) -> Callable[[Message], bool]:
        """Whether a message keeps its connection within its share of the headroom (its windows above ``cursor``
        and the message's records); the connections counted at most every 0.1 s (a prune reads them all)."""
        if time.monotonic() - self._pruned > 0.1:
            self.prune(cursor)
            self._pruned = time.monotonic()
        share = self.headroom // max(1, len(self))
        return lambda message: self.count(message[0], cursor) + len(message[2]) <= share
