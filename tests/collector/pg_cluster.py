"""A throw-away PostgreSQL server for the collector's store tests: ``initdb`` into a fresh folder, ``pg_ctl start``
on a free loopback port (trust authentication, loopback only), stopped and removed at the end.

The programs come from Debian's ``postgresql`` package (``tests/system-packages.sh`` installs it; its binaries live
in ``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run as root: when the tests run as root (CI) the
server runs as the package's ``postgres`` user, through ``runuser``, in a folder handed to that user; as any other
user it runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

HOW = "install it with `sh tests/system-packages.sh` (Debian's postgresql package)"


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail(f"PostgreSQL's initdb not found: {HOW}")
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running server; :meth:`database` makes a fresh database and returns its URL; :meth:`stop` ends it all."""

    def __init__(self) -> None:
        bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"running as root and no 'postgres' user to run PostgreSQL as: {HOW}")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.port = _free_port()
        self._pg_ctl = str(bindir / "pg_ctl")
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"], 120)  # fmt: skip
        self.start()
        self._made = 0

    def _run(self, cmd: list[str], timeout_s: float) -> None:
        done = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(cmd[:2])} failed ({done.returncode}): {done.stderr[-2000:]}\n{tail}")

    def start(self) -> None:
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir}"
        self._run([self._pg_ctl, "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o",
                   opts, "start"], 90)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run([self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], 90)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        import psycopg

        self._made += 1
        name = f"edge_test_{self._made}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
