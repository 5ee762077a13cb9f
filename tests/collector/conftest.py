"""Fixtures of the collector tests: every subprocess, thread and socket is owned here and torn down under a timeout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start Python subprocesses (``spawn(code, *args)``); each is killed and reaped at teardown."""
    procs: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
