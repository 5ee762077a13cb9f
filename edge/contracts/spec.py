"""Tensor specs: what a model input or output is (name, shape, dtype, quantization).

A :class:`TensorSpec` is the contract between a model and the code that feeds it. For a quantized tensor it carries
the affine parameters ``real = scale * (q - zero_point)``, so the preprocessing kernel can quantize a frame straight
into the model's input buffer (see :func:`edge.kernels.tables.quantized_lut`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import ConfigError, ShapeError

__all__ = ["TensorSpec"]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    ``shape`` is concrete (dynamic dimensions are fixed when the model is loaded, batch defaults to 1).
    ``scale`` and ``zero_point`` are set for quantized (int8/uint8) tensors, ``None`` for float ones.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @property
    def nbytes(self) -> int:
        """Size of one tensor in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def describe(self) -> str:
        """``name[1x3x32x32] uint8 (scale=0.0078, zero_point=128)`` — used in error messages and ``inspect``."""
        dims = "x".join(str(d) for d in self.shape)
        q = f" (scale={self.scale:.6g}, zero_point={self.zero_point})" if self.quantized else ""
        return f"{self.name}[{dims}] {self.dtype.name}{q}"

    def check(self, array: np.ndarray) -> None:
        """Raise :class:`ShapeError` naming this spec when ``array`` has the wrong dtype or shape."""
        if not isinstance(array, np.ndarray):
            raise ShapeError(f"input {self.describe()}: expected a numpy array, got {type(array).__name__}")
        if array.dtype != self.dtype or array.shape != self.shape:
            got = "x".join(str(d) for d in array.shape)
            raise ShapeError(f"input {self.describe()}: expected that spec, got [{got}] {array.dtype.name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types for ``manifest.toml`` and ``--json`` (quantization keys only when quantized)."""
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name}
        if self.quantized:
            out["scale"] = float(self.scale)  # type: ignore[arg-type]
            out["zero_point"] = int(self.zero_point or 0)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        try:
            return cls(
                name=str(d["name"]),
                shape=tuple(int(x) for x in d["shape"]),
                dtype=np.dtype(d["dtype"]),
                scale=None if d.get("scale") is None else float(d["scale"]),
                zero_point=None if d.get("zero_point") is None else int(d["zero_point"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"tensor spec: expected name, shape, dtype[, scale, zero_point], got {d!r}") from exc
