"""Start-up tables for the preprocessing kernel: resize plans and per-channel lookup tables.

Built once per (frame size, model input) pair, in Python, and shared by both kernel backends; the per-frame kernel
only reads them. This is where the pixel conventions are defined:

* **Resize** follows OpenCV's ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` for uint8 images: pixel centres
  are aligned (``sx = (dx + 0.5) * scale - 0.5`` with ``scale = 1 / (dst / src)``), coordinates outside the frame
  clamp to the border, and the weights are OpenCV's 11-bit fixed-point ones (``INTER_RESIZE_COEF_BITS``). The kernel
  sums exactly in integers and rounds once, where OpenCV truncates its intermediate sums: results are within 1 of
  ``cv2.resize`` (equal for most pixels) and never further from the exact bilinear value.
* **Normalization** maps a byte ``v`` of model channel ``c`` to ``float32((v / 255 - mean[c]) / std[c])``.
* **Quantization** then maps that float to ``saturate(round_half_even(f / scale) + zero_point)`` — what ONNX
  ``QuantizeLinear`` would do to the float input — so a uint8/int8 model gets its input without a float pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge._kernel_checks import ResizePlan
from edge.errors import ConfigError
from edge.kernels import reference

__all__ = ["COEF_BITS", "ResizePlan", "channel_map", "normalize_lut", "quantized_lut", "resize_plan"]

COEF_BITS = 11
COEF_SCALE = 1 << COEF_BITS


def _axis_plan(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    inv_scale = dst / src
    scale = 1.0 / inv_scale
    d = np.arange(dst, dtype=np.float64)
    fx = ((d + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx)
    fx = (fx - sx).astype(np.float32)
    sx = sx.astype(np.int64)
    low = sx < 0
    fx[low] = 0.0
    sx[low] = 0
    high = sx >= src - 1
    fx[high] = 0.0
    sx[high] = src - 1
    a0 = np.rint((np.float32(1.0) - fx) * np.float32(COEF_SCALE))
    a1 = np.rint(fx * np.float32(COEF_SCALE))
    ofs = np.stack([sx, np.minimum(sx + 1, src - 1)], axis=1).astype(np.int32)
    alpha = np.stack([a0, a1], axis=1).astype(np.int16)
    return ofs, alpha


def resize_plan(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> ResizePlan | None:
    """The bilinear plan from a (H, W) frame to a (h, w) model input; ``None`` when the sizes are equal."""
    (sh, sw), (dh, dw) = src_hw, dst_hw
    if min(sh, sw, dh, dw) < 1:
        raise ConfigError(f"resize: expected positive sizes, got frame {src_hw} → model {dst_hw}")
    if (sh, sw) == (dh, dw):
        return None
    xofs, xalpha = _axis_plan(sw, dw)
    yofs, ybeta = _axis_plan(sh, dh)
    for ofs, alpha, n in ((xofs, xalpha, sw), (yofs, ybeta, sh)):
        # the kernel trusts these tables: every tap inside the frame, weights in [0, 2048] summing to 2048
        if not (ofs.min() >= 0 and ofs.max() < n and alpha.min() >= 0 and np.all(alpha.sum(axis=1) == COEF_SCALE)):
            raise RuntimeError(f"resize_plan: internal error building the tables for {src_hw} → {dst_hw}")
        ofs.flags.writeable = False
        alpha.flags.writeable = False
    return ResizePlan((sh, sw), xofs, xalpha, yofs, ybeta)


def channel_map(frame_order: str, model_order: str) -> np.ndarray:
    """Source channel index for each model channel, e.g. ``channel_map("BGR", "RGB") == [2, 1, 0]``."""
    frame_order, model_order = frame_order.upper(), model_order.upper()
    if sorted(model_order) != sorted(set(model_order)) or any(ch not in frame_order for ch in model_order):
        raise ConfigError(
            f"channel order: cannot make model channels {model_order!r} from frame channels {frame_order!r}"
        )
    return np.array([frame_order.index(ch) for ch in model_order], dtype=np.int32)


def _per_channel(name: str, values: Sequence[float] | float, channels: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.shape != (channels,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name}: expected 1 or {channels} finite values, got {np.asarray(values).tolist()}")
    return arr


def normalize_lut(mean: Sequence[float] | float, std: Sequence[float] | float, channels: int = 3) -> np.ndarray:
    """float32 (channels, 256): ``(v / 255 - mean[c]) / std[c]`` for every byte ``v``."""
    m = _per_channel("mean", mean, channels)
    s = _per_channel("std", std, channels)
    if np.any(s <= 0):
        raise ConfigError(f"std: expected values > 0, got {s.tolist()}")
    v = np.arange(256, dtype=np.float64) / 255.0
    return ((v[None, :] - m[:, None]) / s[:, None]).astype(np.float32)


def quantized_lut(
    mean: Sequence[float] | float,
    std: Sequence[float] | float,
    scale: float,
    zero_point: int,
    dtype: np.dtype | type = np.uint8,
    channels: int = 3,
) -> np.ndarray:
    """int8/uint8 (channels, 256): the normalized value of every byte, quantized with the model input's per-tensor
    ``scale`` and ``zero_point`` (round half to even, saturating): the NumPy twin of ``quantize`` is the definition,
    so the table is the same whichever kernel backend is active."""
    dtype = np.dtype(dtype)
    lut = normalize_lut(mean, std, channels)
    out = np.empty(lut.shape, dtype=dtype)
    reference.quantize(lut, np.array([scale], np.float32), np.array([zero_point], np.int32), out)
    return out
