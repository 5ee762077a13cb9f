"""CPU contention: busy workers started and stopped on the scenario timeline.

A ``process`` worker is a child Python interpreter spinning in a loop (competes for a core like any other program on
the device); a ``thread`` worker spins in this process, holding the GIL between its bytecode switches (competes with
the loop thread itself). Either way the owner must :meth:`CpuContention.stop` them; ``stop`` waits for each worker
to end, under a timeout.
"""

from __future__ import annotations

import subprocess
import sys
import threading

from edge.errors import ConfigError

__all__ = ["CpuContention"]

_SPIN = "while True:\n    pass\n"


class CpuContention:
    """``workers`` busy threads or processes (``mode``), started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, workers: int = 1, mode: str = "process") -> None:
        if mode not in ("thread", "process"):
            raise ConfigError(f"cpu_contention.mode: expected 'thread' or 'process', got {mode!r}")
        if workers < 1:
            raise ConfigError(f"cpu_contention.workers: expected >= 1, got {workers!r}")
        self.workers, self.mode = workers, mode
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._processes: list[subprocess.Popen] = []

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads) or any(p.poll() is None for p in self._processes)

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        for i in range(self.workers):
            if self.mode == "thread":
                thread = threading.Thread(target=self._spin, name=f"edge-sim-cpu-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
            else:
                self._processes.append(subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL))

    def _spin(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1

    def stop(self, timeout_s: float = 5.0) -> None:
        """End every worker and wait for it (``timeout_s`` each); raises RuntimeError if one does not end."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                raise RuntimeError(f"cpu contention: thread {thread.name} did not stop within {timeout_s} s")
        for proc in self._processes:
            proc.kill()
            proc.wait(timeout_s)
        self._threads.clear()
        self._processes.clear()
