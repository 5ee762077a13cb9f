"""Test media for the robot I/O tests: a moving pattern whose frame index can be read back from the decoded pixels
(also after lossy codecs), videos and image folders made with PyAV, and a device.toml for a generated model."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

try:
    import av
except ImportError as exc:  # never a silent skip: the README's test line installs it (dev extra)
    raise RuntimeError(f"tests/io need PyAV: pip install -e '.[dev]' ({exc})") from exc

FRAMES = 64
H, W = 48, 64
BLOCK = 4  # the index is written as 6 bits, one 8-pixel-wide black/white block per bit, on the top rows


def pattern(i: int, h: int = H, w: int = W) -> np.ndarray:
    """Frame ``i``: a bar moving across a gradient, and ``i`` in binary as black/white blocks on the top rows
    (robust to lossy codecs)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    x = (i * 3) % w
    img[BLOCK * 2 :, x : x + 4, 2] = 255
    for bit in range(6):
        img[: BLOCK * 2, bit * 8 : bit * 8 + 8, :] = 255 if (i >> bit) & 1 else 0
    return img


def index_of(img: np.ndarray) -> int:
    """The frame index written by :func:`pattern` (read from the centre of each bit block)."""
    return sum(1 << bit for bit in range(6) if img[BLOCK, bit * 8 + 4].mean() > 127)


def make_video(path: Path, codec: str, *, frames: int = FRAMES, fps: int = 100, pix_fmt: str = "yuv420p") -> Path:
    """Encode ``frames`` pattern frames at ``fps`` into ``path`` (its container from the suffix)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        stream.time_base = Fraction(1, fps)
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast", "tune": "zerolatency"}
        elif codec == "mpeg4":
            stream.options = {"qscale": "2"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def make_image_folder(folder: Path, frames: int = 12) -> Path:
    """``frames`` pattern images named so that sorting gives their order (PNG and JPEG mixed)."""
    folder.mkdir()
    for i in range(frames):
        suffix, codec = (".png", "png") if i % 2 == 0 else (".jpg", "mjpeg")
        with av.open(str(folder / f"img_{i:03d}{suffix}"), "w", format="image2") as out:
            stream = out.add_stream(codec, rate=1)
            stream.width, stream.height = W, H
            stream.pix_fmt = "rgb24" if codec == "png" else "yuvj444p"
            frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            out.mux(stream.encode(frame))
            out.mux(stream.encode())
    (folder / "notes.txt").write_text("not an image: ignored")
    return folder


ACTIONS = tuple(f"a{i}" for i in range(10))


def device_toml(package: Path, sensor: str, *, rate_hz: float = 100, extra: str = "") -> str:
    """A device.toml for ``package`` with one ``camera`` sensor table ``sensor`` (its body) and ``extra`` tables."""
    actions = "[" + ", ".join(f'"{a}"' for a in ACTIONS) + "]"
    return (
        f'[loop]\nrate_hz = {rate_hz}\n\n[model]\npackage = "{package}"\nthreads = 1\n\n'
        f"[sensors.camera]\nshape = [{H}, {W}, 3]\n{sensor}\n\n"
        f'[policy]\nkind = "classification"\nactions = {actions}\n\n'
        f'[fallback]\nhold_frames = 2\nsafe_action = "a0"\n{extra}'
    )
