"""The collector's record-frame decoder: a native fast accept for ``window`` frames, the shared validator for all.

:func:`window_envelope` returns ``(device, boot, seq, t_ns, wall_ns)`` for a frame that is a valid ``window``
record (docs/PROTOCOL.md §3, §4.2, §6) and None for anything else; the server then decodes the frame with the
shared validator (:func:`edge.telemetry.protocol.decode_frame`), which accepts or rejects it and says why. The
compiled kernel (``native/wire.pyx``) reads the msgpack bytes in place, builds no Python objects besides the
envelope, and only ever accepts what the validator accepts (it answers None where in doubt); its twin,
:func:`window_envelope_twin`, is the validator itself. The choice is made once, at import, like
:mod:`edge.kernels`: ``EDGE_PUREPYTHON=1`` forces the twin; a missing build warns
(:class:`~edge.kernels.NativeKernelsMissing`) and uses the twin. :data:`BACKEND` names the active one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

from edge.errors import ProtocolError
from edge.kernels import BUILD_HINT, NativeKernelsMissing
from edge.telemetry.protocol import decode_frame

__all__ = ["BACKEND", "Envelope", "implementation", "window_envelope", "window_envelope_twin"]

Envelope = tuple[str, str, int, int, int]  # device, boot, seq, t_ns (device loop clock, ns), wall_ns (Unix, ns)


def window_envelope_twin(frame: bytes) -> Envelope | None:
    """The twin: the shared validator's verdict on ``frame`` (not kept), the envelope when it is a valid window."""
    if type(frame) is not bytes:
        return None
    try:
        rec = decode_frame(frame)
    except (ProtocolError, RecursionError, MemoryError, ValueError, TypeError, KeyError, OverflowError):
        return None
    if rec.kind != "window":
        return None
    return rec.device, rec.boot, rec.seq, rec.t_ns, rec.wall_ns


def implementation(backend: str) -> Callable[[bytes], Envelope | None]:
    """``window_envelope`` of ``backend`` ("native" or "python"); ImportError when the native one is not built."""
    if backend == "python":
        return window_envelope_twin
    if backend != "native":
        raise ValueError(f"backend: expected 'native' or 'python', got {backend!r}")
    from edge._native.wire import window_envelope as native

    return native


def _select() -> tuple[str, Callable[[bytes], Envelope | None]]:
    if os.environ.get("EDGE_PUREPYTHON", "") not in ("", "0"):
        return "python", window_envelope_twin
    try:
        return "native", implementation("native")
    except ImportError as exc:
        warnings.warn(
            f"edge: the compiled frame decoder is not available ({exc}); using the validator — {BUILD_HINT}",
            NativeKernelsMissing,
            stacklevel=2,
        )
        return "python", window_envelope_twin


BACKEND, window_envelope = _select()
