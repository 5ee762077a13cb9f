"""Fixtures' helpers for the ROS 2 tests: a unique DDS domain per test, and :class:`Peer`, the other DDS participant
in a subprocess (tests/io/ros2_peer.py) driven over its stdin/stdout with a timeout on every wait."""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge.io.ros2_dds import MAX_DOMAIN_ID

PEER = Path(__file__).with_name("ros2_peer.py")
TIMEOUT_S = 20.0  # any single wait; generous for a loaded 2-core machine, never reached when things work
_DOMAINS = itertools.count(1 + os.getpid() % 150)


def unique_domain() -> int:
    """A DDS domain id no other test of this run uses (and, by the pid, unlikely another run's)."""
    return 1 + (next(_DOMAINS) - 1) % MAX_DOMAIN_ID


class Peer:
    """The peer process on ``domain_id``. :meth:`request` sends a command and waits for its answer;
    :meth:`wait_sample` waits for a sample a peer reader printed."""

    def __init__(self, domain_id: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), str(domain_id)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._samples: dict[str, list[dict[str, Any]]] = {}  # per topic, not yet consumed, in arrival order
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="ros2 peer stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            if "sample" not in obj:
                self._answers.put(obj)
                continue
            with self._arrived:
                self._samples.setdefault(obj["sample"], []).append(obj["msg"])
                self._arrived.notify_all()

    def request(self, op: str, timeout: float = TIMEOUT_S, **fields: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        try:
            return self._answers.get(timeout=timeout)["ok"]
        except queue.Empty:
            raise AssertionError(f"ros2 peer: no answer to {op!r} within {timeout} s") from None

    def wait_matched(self, topic: str) -> None:
        assert self.request("wait_matched", topic=topic), f"ros2 peer: {topic} never matched"

    def wait_sample(self, topic: str, predicate: Any = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next sample on ``topic`` (the next for which ``predicate(msg)`` holds; the samples on ``topic``
        before it are consumed) within ``timeout`` s. Samples on other topics stay for their own waits."""
        end = time.monotonic() + timeout
        with self._arrived:
            while True:
                pending = self._samples.setdefault(topic, [])
                while pending:
                    msg = pending.pop(0)
                    if predicate is None or predicate(msg):
                        return msg
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"ros2 peer: no matching sample on {topic} within {timeout} s")
                self._arrived.wait(left)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.stdin.close()
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)


def wait_until(cond: Any, what: str, timeout: float = TIMEOUT_S) -> None:
    """Poll ``cond()`` (a state check, not a timing guess) until true; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)
