"""The collector's record-frame readers: a native fast accept for ``window`` frames (ingest) and a native digest of
stored windows for the drift engine (scoring). Both are kernels of :mod:`edge.kernels` (``native/wire_accept.pyx``,
``native/wire_digest.pyx``; twins in :mod:`edge.kernels.reference_wire`), chosen with the other kernels, once, at
import (``EDGE_PUREPYTHON=1`` forces the twins; :data:`edge.kernels.BACKEND` names the active backend).

:func:`window_envelope` returns ``(device, boot, seq, t_ns, wall_ns)`` for a frame that is a valid ``window``
record (docs/PROTOCOL.md §3, §4.2, §6) and None for anything else; the server then decodes the frame with the
shared validator (:func:`edge.telemetry.protocol.decode_frame`), which accepts or rejects it and says why. The
compiled kernel reads the msgpack bytes in place, builds no Python objects besides the envelope, and only ever
accepts what the validator accepts (it answers None where in doubt). :func:`window_accept` adds the body's layout
key (the model and its (feature name, count length) pairs, hashed): the server checks a layout against the model's
reference once and then answers windows of the same layout from its cache.

:func:`window_digest_block` is what the scoring thread uses instead of a decoded body of ~400 Python objects per
window: a device's queued windows at once
(:meth:`~edge.collector.engine.DriftEngine.digest_layout`, :meth:`~edge.collector.engine.DriftEngine.observe_digests`),
every value the engine reads written into two float64 blocks, no Python object per window; the native one reads
the frames without holding the GIL.
"""

from __future__ import annotations

from edge.kernels import window_accept, window_digest_block, window_envelope
from edge.kernels.reference_wire import Envelope

__all__ = ["Envelope", "window_accept", "window_digest_block", "window_envelope"]
