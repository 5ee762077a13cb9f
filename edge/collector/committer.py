"""Group commit off the ingest thread: one batch of records at a time is made durable on a commit thread.

The ingest thread hands a batch over with :meth:`GroupCommitter.submit` and goes on receiving and decoding the next
messages while SQLite writes and fsyncs (it releases the GIL for that). When the commit is done the committer writes
one byte to a pipe whose read end (:meth:`fileno`) the ingest thread polls beside its ZeroMQ socket; it then takes
:meth:`result` and sends the acks itself (sockets are never shared between threads). So an ack still follows the
commit that made its records durable, and at most one batch is being committed at a time (the next one is the group
that gathers meanwhile).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from edge.collector.store import CommitResult
from edge.collector.stores import Store

__all__ = ["GroupCommitter"]


class GroupCommitter:
    """A commit thread for ``store``. ``submit(rows, tag)`` (ingest thread, only when not :attr:`busy`), then poll
    :meth:`fileno` for reading; :meth:`result` returns ``(tag, CommitResult or the exception the commit raised)``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._work = threading.Condition()
        self._job: tuple[list[tuple[Any, ...]], Any] | None = None
        self._done: tuple[Any, CommitResult | Exception] | None = None
        self._closing = False
        self.busy = False  # a batch was submitted and its result not yet taken (ingest thread's view)
        self._thread = threading.Thread(target=self._run, name="edge-collector-commit", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        """Readable when a result is waiting."""
        return self._read_fd

    @property
    def done(self) -> bool:
        """A result is waiting (cheap to check between messages)."""
        return self._done is not None

    def submit(self, rows: list[tuple[Any, ...]], tag: Any) -> None:
        if self.busy:
            raise RuntimeError("GroupCommitter.submit: the previous batch's result was not taken")
        self.busy = True
        with self._work:
            self._job = (rows, tag)
            self._work.notify()

    def result(self) -> tuple[Any, CommitResult | Exception]:
        """The finished batch's ``(tag, outcome)``; call when :meth:`fileno` is readable (or :attr:`done`)."""
        done = self._done
        if done is None:
            raise RuntimeError("GroupCommitter.result: no finished batch")
        try:
            os.read(self._read_fd, 1)
        except BlockingIOError:
            pass
        self._done = None
        self.busy = False
        return done

    def wait(self, timeout_s: float) -> bool:
        """Block until the submitted batch is committed (shutdown); False on timeout."""
        if not self.busy:
            return True
        with self._work:
            return self._work.wait_for(lambda: self._done is not None, timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and close the wake-up pipe; a second call does nothing (its fds may be another's now)."""
        if self._read_fd < 0:
            return
        with self._work:
            self._closing = True
            self._work.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"collector commit thread did not stop within {timeout_s} s")
        os.close(self._read_fd)
        os.close(self._write_fd)
        self._read_fd = self._write_fd = -1

    def _run(self) -> None:
        while True:
            with self._work:
                self._work.wait_for(lambda: self._job is not None or self._closing)
                if self._job is None:
                    return
                (rows, tag), self._job = self._job, None
            try:
                outcome: CommitResult | Exception = self.store.write(rows)
            except Exception as exc:  # reported to the ingest thread, which acks nothing of this batch
                outcome = exc
            with self._work:
                self._done = (tag, outcome)
                self._work.notify_all()
            os.write(self._write_fd, b"\x01")
