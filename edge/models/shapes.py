"""Declared shapes for a model's dynamic inputs: ``shapes={"input": (1, 512)}`` in Python, ``--shape input=1x512`` on
the command line, ``[model.shapes] input = "1x512"`` in ``device.toml``.

A declared shape must name a real input, have its rank, and agree with every fixed dimension of the graph; anything
else is refused at load with the key and the model's real input specs (dynamic dimensions shown by their symbolic
name, or ``?``). An input with dynamic dimensions and no declared shape gets 1 for each of them (the batch default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edge.errors import ConfigError, ShapeError

__all__ = ["describe_dims", "fit_shapes", "is_static", "parse_shape", "parse_shape_items", "parse_shapes"]


def parse_shape(key: str, value: Any) -> tuple[int, ...]:
    """``"1x512"``, ``"1,512"``, ``[1, 512]`` or ``(1, 512)`` → ``(1, 512)``; ``""``/``()`` is a scalar.
    :class:`ConfigError` naming ``key`` when it does not parse or has a dimension < 1."""
    if isinstance(value, str):
        text = value.strip().replace(",", "x").replace("X", "x")
        parts = [p.strip() for p in text.split("x")] if text else []
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            raise ConfigError(
                f"{key}: expected a shape such as '1x512' (positive integers joined by x), got {value!r}"
            ) from None
    elif isinstance(value, Sequence) and all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        dims = tuple(int(d) for d in value)
    else:
        raise ConfigError(f"{key}: expected a shape such as '1x512' or [1, 512], got {value!r}")
    if any(d < 1 for d in dims):
        raise ConfigError(f"{key}: expected positive dimensions, got {value!r}")
    return dims


def parse_shapes(shapes: Mapping[str, Any] | None, key: str = "shapes") -> dict[str, tuple[int, ...]]:
    """``{input name: shape}`` with every value parsed by :func:`parse_shape` (keys ``<key>.<name>``)."""
    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise ConfigError(f"{key}: expected a mapping of input name to shape, got {shapes!r}")
    return {str(name): parse_shape(f"{key}.{name}", v) for name, v in shapes.items()}


def parse_shape_items(items: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Command-line ``NAME=1x512`` items (``--shape``, repeatable) → ``{name: shape}``."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--shape: expected NAME=DIMS such as input=1x512, got {item!r}")
        out[name.strip()] = parse_shape(f"--shape {name.strip()}", dims)
    return out


def is_static(dims: Sequence[Any]) -> bool:
    """Whether every dimension of a graph shape is a fixed positive integer."""
    return all(isinstance(d, int) and d > 0 for d in dims)


def describe_dims(name: str, dims: Sequence[Any], dtype: str) -> str:
    """``input[?xsamples] float32``: a graph tensor with its dynamic dimensions by name (``?`` when unnamed)."""
    shown = "x".join(
        str(d) if isinstance(d, int) and d > 0 else (str(d) if isinstance(d, str) and d else "?") for d in dims
    )
    return f"{name}[{shown}] {dtype}"


def fit_shapes(
    shapes: Mapping[str, tuple[int, ...]], graph: Sequence[tuple[str, Sequence[Any], str]], key: str = "shapes"
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every graph input ``(name, dims, dtype)``: the declared one when given (checked), else
    the graph's with 1 for each dynamic dimension. :class:`ShapeError` naming ``<key>.<name>`` and the real specs
    for an unknown name, a wrong rank or a dimension that contradicts a fixed one."""
    specs = ", ".join(describe_dims(n, d, t) for n, d, t in graph)
    sep = " " if key.startswith("--") else "."
    names = [n for n, _, _ in graph]
    for name in shapes:
        if name not in names:
            raise ShapeError(
                f"{key}{sep}{name}: expected one of the model's inputs ({specs}), got unknown input {name!r}"
            )
    out: dict[str, tuple[int, ...]] = {}
    for name, dims, _ in graph:
        if name not in shapes:
            out[name] = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
            continue
        want = shapes[name]
        got = "x".join(str(d) for d in want) or "scalar"
        if len(want) != len(dims):
            raise ShapeError(
                f"{key}{sep}{name}: expected {len(dims)} dimension(s) as in the model's inputs ({specs}), got {got}"
            )
        for i, (g, w) in enumerate(zip(dims, want, strict=True)):
            if isinstance(g, int) and g > 0 and g != w:
                raise ShapeError(
                    f"{key}{sep}{name}: dimension {i} is fixed at {g} in the model's inputs ({specs}), got {got}"
                )
        out[name] = tuple(want)
    return out
