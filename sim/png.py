"""Write RGB frames as PNG files with zlib + struct only (for looking at frames; no imaging library needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from edge.errors import ShapeError

__all__ = ["write_png"]


def write_png(path: str | Path, frame: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) RGB or (H, W) grey frame to ``path`` as an 8-bit PNG."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise ShapeError(f"write_png: expected uint8 (H, W, 3) or (H, W), got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    colour_type = 2 if frame.ndim == 3 else 0
    rows = np.ascontiguousarray(frame).reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    )
