"""The one entry point to ``edge``'s native code.

The rest of ``edge`` imports kernels from here, never from ``edge._native`` directly. The choice between the
compiled kernels (``edge._native``, built from ``native/*.pyx``) and their twins (the pure-NumPy ones in
:mod:`edge.kernels.reference`; the msgpack wire readers' in :mod:`edge.kernels.reference_wire`) is made once, at
import, for the whole API:

* ``EDGE_PUREPYTHON=1`` forces the twins;
* otherwise the compiled kernels are used, and if they are missing (no compiler at install time, or a source tree
  that was never built) a :class:`NativeKernelsMissing` warning says so and how to build them, and the twins are used.
  A partial build (one compiled module missing) counts as missing: the backends never mix.

Some compiled modules also have a build for a wider instruction set (:data:`ISA_VARIANTS`, x86-64 AVX2); it replaces
the baseline build when the CPU runs it, and :data:`ISA` names what is in use. Both builds give the same bytes.

:data:`BACKEND` names the active backend (``"native"`` or ``"numpy"``); ``edge --version`` and the telemetry hello
report it. Every name in :data:`__all__` is provided by both backends with the same signature and the same errors.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib import import_module
from types import ModuleType

from edge._kernel_checks import ResizePlan

__all__ = [
    "BACKEND",
    "ISA",
    "ISA_VARIANTS",
    "KERNEL_API",
    "NativeKernelsMissing",
    "ResizePlan",
    "SketchAccumulator",
    "best_class",
    "decode_anchors",
    "decode_yolo",
    "dequantize",
    "implementation",
    "nms",
    "preprocess_frame",
    "quantize",
    "sketch_merge",
    "sketch_update",
    "softmax_topk",
    "window_accept",
    "window_digest_block",
    "window_envelope",
]

# The kernel API each backend must export: (compiled module in edge._native, names it provides).
KERNEL_API: dict[str, tuple[str, ...]] = {
    "preprocess": ("preprocess_frame",),
    "quantize": ("quantize", "dequantize"),
    "postprocess": ("softmax_topk", "nms", "decode_anchors", "best_class", "decode_yolo"),
    "sketch": ("sketch_update", "sketch_merge", "SketchAccumulator"),
    "wire_accept": (
        "window_envelope",
        "window_accept",
    ),  # untrusted network bytes: the collector's fast accept of window frames
    "wire_digest": ("window_digest_block",),  # stored window frames, read for the drift engine
}
# Compiled modules with a second build for AVX2 (native/<name>_avx2.pyx, x86-64 only): module → that build. The
# baseline module's cpu_has_avx2() decides; a variant that was not built (another architecture) is simply not used.
ISA_VARIANTS: dict[str, str] = {"preprocess": "preprocess_avx2"}
# Where each compiled module's twin lives (a module of edge.kernels); the others' are in reference.py.
TWINS: dict[str, str] = {"wire_accept": "reference_wire", "wire_digest": "reference_wire"}

BUILD_HINT = "build them with `pip install -e .` (needs a C compiler and Python headers), or set EDGE_PUREPYTHON=1"


class NativeKernelsMissing(RuntimeWarning):
    """The compiled kernels could not be imported; the (slower) NumPy twins are in use."""


def implementation(backend: str, *, baseline: bool = False) -> dict[str, object]:
    """The kernel API of ``backend`` ("native" or "numpy") as a name → callable mapping.

    Tests use this to run the two side by side; it raises ImportError when the native kernels are not built.
    ``baseline=True`` takes the baseline builds even where an AVX2 build would run (tests compare both).
    """
    if backend not in ("native", "numpy"):
        raise ValueError(f"backend: expected 'native' or 'numpy', got {backend!r}")
    api: dict[str, object] = {}
    for module_name, names in KERNEL_API.items():
        if backend == "numpy":
            module: ModuleType = import_module(f"edge.kernels.{TWINS.get(module_name, 'reference')}")
        else:
            module = _native_module(module_name, baseline)
        for name in names:
            api[name] = getattr(module, name)
    return api


def _native_module(module_name: str, baseline: bool) -> ModuleType:
    module = import_module(f"edge._native.{module_name}")
    variant = ISA_VARIANTS.get(module_name)
    if variant is None or baseline or not module.cpu_has_avx2():
        return module
    try:
        return import_module(f"edge._native.{variant}")
    except ImportError:  # not built: a target without AVX2 (aarch64), or a build from before the variant existed
        return module


def _isa(api: dict[str, object]) -> str:
    """What the compiled preprocessing module in use says it was built for (its ``ISA``: ``"avx2"`` or
    ``"baseline"``); ``"baseline"`` for the twins."""
    module = sys.modules.get(getattr(api["preprocess_frame"], "__module__", ""))
    return getattr(module, "ISA", "baseline")


def _select() -> tuple[str, dict[str, object]]:
    if os.environ.get("EDGE_PUREPYTHON", "") not in ("", "0"):
        return "numpy", implementation("numpy")
    try:
        return "native", implementation("native")
    except ImportError as exc:
        warnings.warn(
            f"edge: compiled kernels are not available ({exc}); using the slower NumPy twins — {BUILD_HINT}",
            NativeKernelsMissing,
            stacklevel=3,
        )
        return "numpy", implementation("numpy")


BACKEND, _api = _select()
ISA = _isa(_api)

preprocess_frame = _api["preprocess_frame"]
quantize = _api["quantize"]
dequantize = _api["dequantize"]
softmax_topk = _api["softmax_topk"]
nms = _api["nms"]
decode_anchors = _api["decode_anchors"]
best_class = _api["best_class"]
decode_yolo = _api["decode_yolo"]
sketch_update = _api["sketch_update"]
sketch_merge = _api["sketch_merge"]
SketchAccumulator = _api["SketchAccumulator"]
window_envelope = _api["window_envelope"]
window_accept = _api["window_accept"]
window_digest_block = _api["window_digest_block"]
del _api
