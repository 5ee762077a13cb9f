"""Sensor slots: latest-value buffers with capture timestamps, the push API, checks, and multi-sensor sync.

A :class:`SensorSlot` holds the latest value of one sensor in preallocated memory. Any thread (a ZeroMQ receiver,
the simulator, a driver callback) calls :meth:`SensorSlot.push` to copy a new value in; the loop thread calls
:meth:`SensorSlot.latest` once per frame to get a read-only view of the newest complete value. Three buffers rotate
(one being read, one holding the latest value, one being written), so the writer never waits for the reader, the
reader never sees a half-written value, and nothing is allocated after construction. One writer at a time per slot
(concurrent writers are serialized by a writer lock, never against the loop).

:meth:`SensorSlot.assess` runs the per-frame checks — stale (capture older than ``stale_ns`` or never received),
NaN, out of ``[lo, hi]``, frozen (``frozen_frames`` consecutive new captures with an identical signature) — and
returns the :mod:`edge.contracts.frame` flag bits, allocation-free.
"""

from __future__ import annotations

import threading

import numpy as np

from edge.contracts import INVALID_SENSOR, STALE_SENSOR
from edge.errors import ConfigError, ShapeError

__all__ = ["SensorSlot", "SensorSync"]


class SensorSlot:
    """The latest value of sensor ``name``: ``shape``/``dtype`` fixed at construction.

    * ``stale_ns``: a value captured longer ago than this at a tick is stale (ns; ``None``: never stale once received).
    * ``lo``/``hi``: valid range of every element (``None``: unbounded); NaN is always invalid for float sensors.
    * ``frozen_frames``: this many consecutive *new* captures with an identical signature make the sensor frozen
      (0: off). The signature is the value itself unless the caller passes one (the loop passes the preprocessing
      stats of the camera frame, which are exact, so identical frames give identical stats).
    """

    def __init__(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype | type | str = np.uint8,
        *,
        stale_ns: int | None = None,
        lo: float | None = None,
        hi: float | None = None,
        frozen_frames: int = 0,
        signature_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.name = str(name)
        self.shape = tuple(int(d) for d in shape)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise ConfigError(f"sensors.{name}.dtype: expected a numpy dtype name, got {dtype!r}") from exc
        if not self.shape or min(self.shape) < 1:
            raise ConfigError(f"sensors.{name}.shape: expected positive dimensions, got {list(shape)}")
        if stale_ns is not None and stale_ns <= 0:
            raise ConfigError(f"sensors.{name}.stale_ms: expected a number > 0, got {stale_ns / 1e6!r}")
        if frozen_frames < 0:
            raise ConfigError(f"sensors.{name}.frozen_frames: expected an integer >= 0, got {frozen_frames!r}")
        self.stale_ns = stale_ns
        self.lo, self.hi, self.frozen_frames = lo, hi, int(frozen_frames)
        self._bufs = tuple(np.zeros(self.shape, self.dtype) for _ in range(3))
        self._views = tuple(b.view() for b in self._bufs)
        for v in self._views:
            v.flags.writeable = False
        self._capture = [0, 0, 0]
        self._state = threading.Lock()  # held for a few index assignments only
        self._writer = threading.Lock()  # serializes writers among themselves
        self._latest = -1  # buffer index of the newest complete value (-1: none yet)
        self._reading = -1
        self.seq = 0  # values pushed (cumulative)
        self.capture_ns = 0  # capture time of the value returned by the last latest() (clock ns)
        self.value: np.ndarray | None = None  # the view returned by the last latest()
        # assess() scratch, allocated once
        self._mask = np.zeros(self.shape, np.bool_)
        self.use_signature(signature_shape)
        self._is_float = self.dtype.kind == "f"

    def use_signature(self, shape: tuple[int, ...] | None) -> None:
        """Frozen detection compares float64 signatures of ``shape`` passed to :meth:`assess` (``None``: the value
        itself). Called at set-up (the loop passes its preprocessing stats shape for the camera)."""
        sig_shape = self.shape if shape is None else tuple(shape)
        self._prev_sig = np.zeros(sig_shape, self.dtype if shape is None else np.float64)
        self._sig_mask = np.zeros(sig_shape, np.bool_)
        self._sig_seq = -1
        self._same = 0

    def push(self, value: np.ndarray, capture_ns: int) -> None:
        """Copy ``value`` (this slot's shape; any dtype castable without loss) in as the latest value, captured at
        ``capture_ns`` (clock ns). Allocates nothing; never waits for the loop. The caller keeps ``value``."""
        if not isinstance(value, np.ndarray):
            raise ShapeError(f"sensor {self.name}: expected a numpy array, got {type(value).__name__}")
        if value.shape != self.shape:
            raise ShapeError(f"sensor {self.name}: expected shape {self.shape}, got {value.shape}")
        with self._writer:
            with self._state:
                idx = 0
                while idx == self._latest or idx == self._reading:
                    idx += 1
            try:
                np.copyto(self._bufs[idx], value, casting="same_kind")
            except TypeError as exc:
                raise ShapeError(
                    f"sensor {self.name}: expected {self.dtype.name} values, got {value.dtype.name}"
                ) from exc
            with self._state:
                self._capture[idx] = capture_ns
                self._latest = idx
                self.seq += 1

    def latest(self) -> np.ndarray | None:
        """A read-only view of the newest value (``None`` before the first push); sets :attr:`capture_ns`.
        The view stays valid and unchanged until the next call (the writer never touches it meanwhile)."""
        with self._state:
            idx = self._latest
            self._reading = idx
        if idx < 0:
            return None
        self.capture_ns = self._capture[idx]
        self.value = self._views[idx]
        return self.value

    def assess(self, value: np.ndarray | None, now_ns: int, signature: np.ndarray | None = None) -> int:
        """Flag bits for ``value`` (from :meth:`latest`) at ``now_ns``: ``STALE_SENSOR`` and/or ``INVALID_SENSOR``."""
        if value is None:
            return STALE_SENSOR
        flags = 0
        if self.stale_ns is not None and now_ns - self.capture_ns > self.stale_ns:
            flags |= STALE_SENSOR
        mask = self._mask
        if self._is_float:
            np.isnan(value, out=mask)
            if mask.any():
                flags |= INVALID_SENSOR
        if self.lo is not None:
            np.less(value, self.lo, out=mask)
            if mask.any():
                flags |= INVALID_SENSOR
        if self.hi is not None:
            np.greater(value, self.hi, out=mask)
            if mask.any():
                flags |= INVALID_SENSOR
        if self.frozen_frames:
            seq = self.seq
            if seq != self._sig_seq:  # a new capture since the last check
                sig = value if signature is None else signature
                np.not_equal(sig, self._prev_sig, out=self._sig_mask)
                if self._sig_seq >= 0 and not self._sig_mask.any():
                    self._same += 1
                else:
                    self._same = 0
                np.copyto(self._prev_sig, sig)
                self._sig_seq = seq
            if self._same >= self.frozen_frames:
                flags |= INVALID_SENSOR
        return flags


class SensorSync:
    """How the loop combines several sensors: ``"latest"`` takes each sensor's newest value; ``"approximate"``
    also requires every other sensor's capture time within ``max_skew_ns`` of the primary's (else the frame is
    flagged ``STALE_SENSOR``, as a required input that is not there)."""

    MODES = ("latest", "approximate")

    def __init__(self, mode: str = "latest", max_skew_ns: int | None = None) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"sync.mode: expected one of {self.MODES}, got {mode!r}")
        if mode == "approximate" and (max_skew_ns is None or max_skew_ns <= 0):
            raise ConfigError(f"sync.max_skew_ms: expected a number > 0 with mode 'approximate', got {max_skew_ns!r}")
        self.mode = mode
        self.max_skew_ns = max_skew_ns

    def skewed(self, primary_ns: int, others: tuple[SensorSlot, ...]) -> bool:
        """True when, in approximate mode, another sensor's capture is more than ``max_skew_ns`` from the primary's."""
        if self.mode == "latest":
            return False
        for slot in others:
            d = slot.capture_ns - primary_ns
            if d > self.max_skew_ns or -d > self.max_skew_ns:
                return True
        return False
