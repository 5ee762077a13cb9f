"""A second thread for a camera frame's drift statistics (``[loop] stats_thread = true``; off by default).

The preprocessing kernel does two independent passes over the frame: the whole frame's per-channel mean and std (the
drift features and the frozen-sensor check) and the resize into the model input. On a device with a spare core the
loop thread hands the first to this thread (:func:`edge.kernels.frame_stats`, which releases the GIL) and does the
second itself (``preprocess_frame(..., stats=None)``), then waits for the statistics: the frame's preprocessing takes
the longer of the two passes instead of their sum. The statistics are the same bytes either way.

The hand-over is two preallocated locks (the loop thread releases ``_go`` and acquires ``_done``): nothing is allocated
per frame and nothing waits on I/O. Without a spare core the two passes only take turns on one, and the hand-over
adds its cost: leave it off there.
"""

from __future__ import annotations

import _thread
import threading

import numpy as np

from edge import kernels

__all__ = ["FrameStatsThread"]


class FrameStatsThread:
    """Runs :func:`edge.kernels.frame_stats` for the loop thread: :meth:`start` a frame, do other work,
    :meth:`wait`. One frame at a time, for one caller thread; :meth:`close` stops the thread."""

    def __init__(self, name: str = "edge-frame-stats") -> None:
        self._go = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._go.acquire()
        self._done.acquire()
        self._frame_stats = kernels.frame_stats
        self._src: np.ndarray | None = None
        self._channel_map: np.ndarray | None = None
        self._stats: np.ndarray | None = None
        self._error: BaseException | None = None
        self._busy = False
        self._closed = False
        self.frames = 0  # frames whose statistics this thread computed
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def start(self, src: np.ndarray, channel_map: np.ndarray, stats: np.ndarray) -> None:
        """Begin the statistics of ``src`` into ``stats``; the caller must :meth:`wait` before it touches ``stats``
        or reuses ``src``."""
        if self._busy or self._closed:
            raise RuntimeError("FrameStatsThread: start() while a frame is in progress, or after close()")
        self._src, self._channel_map, self._stats = src, channel_map, stats
        self._busy = True
        self._go.release()

    def wait(self) -> None:
        """Wait for the frame begun by :meth:`start`; raise what :func:`~edge.kernels.frame_stats` raised."""
        if not self._busy:
            return
        self._done.acquire()
        self._busy = False
        self._src = self._channel_map = self._stats = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop the thread (after the frame in progress, if any)."""
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._closed = True
            self._go.release()
            self._thread.join()

    def _work(self) -> None:
        while True:
            self._go.acquire()
            if self._closed:
                return
            try:
                self._frame_stats(self._src, self._channel_map, self._stats)
                self.frames += 1
            except BaseException as exc:  # handed to the loop thread, which raises it
                self._error = exc
            self._done.release()
