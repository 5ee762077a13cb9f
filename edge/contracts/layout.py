"""Image tensor layouts: which of ``NCHW``/``NHWC`` a model input is, and its height, width and channels.

Shared by the loop's pipeline (binding a model to camera frames) and the tooling (running a model on frames the
way the loop does), so both read a model input the same way.
"""

from __future__ import annotations

from edge.errors import ShapeError

__all__ = ["LAYOUTS", "image_dims", "input_layout"]

LAYOUTS = ("NCHW", "NHWC")


def input_layout(shape: tuple[int, ...], channels: int) -> str:
    """The layout of an image input of ``shape`` (with or without a batch dimension) holding ``channels``
    channels: ``"NCHW"`` when the channel dimension comes first and is not also the last, else ``"NHWC"``."""
    if len(shape) == 4 and shape[1] == channels and shape[3] != channels:
        return "NCHW"
    if len(shape) == 4 and shape[3] == channels:
        return "NHWC"
    if len(shape) == 3 and shape[0] == channels and shape[2] != channels:
        return "NCHW"
    return "NHWC"


def image_dims(shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    """``(height, width, channels)`` of an image tensor of ``shape`` in ``layout`` (a leading batch dimension of a
    4-D shape is skipped). Raises :class:`ShapeError` for a shape that is not 3-D or 4-D or an unknown layout."""
    if len(shape) not in (3, 4) or layout not in LAYOUTS:
        raise ShapeError(
            f"image tensor: expected a 3-D or 4-D shape in {' or '.join(LAYOUTS)}, got {list(shape)} {layout}"
        )
    dims = shape[1:] if len(shape) == 4 else shape
    if layout == "NCHW":
        return dims[1], dims[2], dims[0]
    return dims[0], dims[1], dims[2]
