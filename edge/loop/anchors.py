"""MediaPipe-style SSD anchor generation (the ``SsdAnchorsCalculator``) from its small options table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError

__all__ = ["SsdAnchorOptions", "ssd_anchors"]


@dataclass(frozen=True)
class SsdAnchorOptions:
    """MediaPipe's ``SsdAnchorsCalculatorOptions`` (the subset detectors use). Sizes in model-input pixels."""

    input_size_height: int
    input_size_width: int
    num_layers: int
    strides: tuple[int, ...]
    min_scale: float
    max_scale: float
    aspect_ratios: tuple[float, ...] = (1.0,)
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    reduce_boxes_in_lowest_layer: bool = False
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False


def _scale(lo: float, hi: float, i: int, n: int) -> float:
    return (lo + hi) * 0.5 if n == 1 else lo + (hi - lo) * i / (n - 1)


def ssd_anchors(o: SsdAnchorOptions) -> np.ndarray:
    """float32 ``(N, 4)`` = (y_center, x_center, h, w), normalized to the model input, in MediaPipe's order."""
    if o.num_layers != len(o.strides) or o.num_layers < 1:
        raise ConfigError(
            f"policy.anchors.strides: expected num_layers ({o.num_layers}) strides, got {list(o.strides)}"
        )
    out: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < o.num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < len(o.strides) and o.strides[last] == o.strides[layer]:
            s = _scale(o.min_scale, o.max_scale, last, len(o.strides))
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, s, s]
            else:
                for r in o.aspect_ratios:
                    ratios.append(r)
                    scales.append(s)
                if o.interpolated_scale_aspect_ratio > 0:
                    nxt = (
                        1.0
                        if last == len(o.strides) - 1
                        else _scale(o.min_scale, o.max_scale, last + 1, len(o.strides))
                    )
                    scales.append(math.sqrt(s * nxt))
                    ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(sc / math.sqrt(r), sc * math.sqrt(r)) for sc, r in zip(scales, ratios, strict=True)]  # (h, w)
        stride = o.strides[layer]
        fh, fw = math.ceil(o.input_size_height / stride), math.ceil(o.input_size_width / stride)
        for y in range(fh):
            for x in range(fw):
                for h, w in sizes:
                    yc, xc = (y + o.anchor_offset_y) / fh, (x + o.anchor_offset_x) / fw
                    out.append((yc, xc, 1.0, 1.0) if o.fixed_anchor_size else (yc, xc, h, w))
        layer = last
    return np.array(out, np.float32)
