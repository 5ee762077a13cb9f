"""A throw-away NATS server with JetStream for the fleet tests: ``nats-server -js`` on a free loopback port with its
store in a temp folder, stopped (or killed) and restarted by the test, removed at the end.

The program is Debian's ``nats-server`` package (``tests/system-packages.sh`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HOW = "install it with `sh tests/system-packages.sh` (Debian's nats-server package)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One JetStream server; :attr:`url` stays the same across :meth:`stop` / :meth:`start` (same port, same store)."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(self.binary).is_file():
            pytest.fail(f"nats-server not found: {HOW}")
        self.dir = Path(tempfile.mkdtemp(prefix="edge-nats-"))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.extra = extra
        self._proc: subprocess.Popen | None = None
        self.start()

    def start(self, timeout_s: float = 30.0) -> None:
        log = open(self.dir / "server.log", "ab")  # the server writes it while it runs
        cmd = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.dir / "js"), *self.extra]
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:  # wait on the state (the port accepts), not on a guess
            if self._proc.poll() is not None:
                tail = (self.dir / "server.log").read_text()[-2000:]
                pytest.fail(f"nats-server exited ({self._proc.returncode}): {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nats-server did not listen on {self.port} within {timeout_s} s")
                time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill() if kill else self._proc.terminate()
            self._proc.wait(timeout=30)
        self._proc = None

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsCluster:
    """Three JetStream servers clustered on loopback (routes between them); :attr:`url` lists all three."""

    def __init__(self) -> None:
        cports = [free_port() for _ in range(3)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cports)
        self.nodes: list[NatsServer] = []
        try:
            for i, cport in enumerate(cports):
                extra = ("-n", f"edge-{i}", "--cluster_name", "edge", "--cluster", f"nats://127.0.0.1:{cport}",
                         "--routes", routes)  # fmt: skip
                self.nodes.append(NatsServer(extra))
        except BaseException:
            self.close()
            raise
        self.url = ",".join(n.url for n in self.nodes)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
