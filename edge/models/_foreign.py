"""The one place where errors from onnxruntime, LiteRT and onnx become ``edge`` errors."""

from __future__ import annotations

from edge.errors import EdgeError, ModelError

__all__ = ["model_error"]


def model_error(exc: BaseException, what: str) -> EdgeError:
    """Map a foreign exception raised while ``what`` (e.g. "loading model.onnx") to a :class:`ModelError`.

    ``edge`` errors pass through unchanged. onnxruntime raises ``Fail``, ``InvalidGraph``, ``InvalidArgument``,
    ``NoSuchFile``, ``RuntimeException`` ... (all from ``onnxruntime.capi.onnxruntime_pybind11_state``); LiteRT
    raises ``ValueError``/``RuntimeError``; onnx raises ``DecodeError``/``ValidationError``. The first line of the
    foreign message is kept, its type name too, so the cause stays findable.
    """
    if isinstance(exc, EdgeError):
        return exc
    first = (str(exc).strip().splitlines() or [""])[0]
    if len(first) > 400:
        first = first[:400] + "…"
    kind = type(exc).__name__
    hint = ""
    lowered = first.lower()
    if any(s in lowered for s in ("protobuf", "parse", "truncat", "flatbuffer", "not a valid", "identifier", "decode")):
        hint = " (the file looks truncated or corrupt)"
    return ModelError(f"{what}: {kind}: {first}{hint}")
