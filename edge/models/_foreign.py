"""The one place where foreign errors met while reading or loading a model become ``edge`` errors.

Two kinds: a package whose bytes cannot be decoded (gzip, tar, UTF-8, TOML) is an :class:`IntegrityError`, as a
package that does not match its manifest is; a model that onnxruntime, LiteRT or onnx refuse, or a file that
cannot be read, is a :class:`ModelError`.
"""

from __future__ import annotations

import tarfile
import tomllib
import zlib

from edge.errors import EdgeError, IntegrityError, ModelError

__all__ = ["PACKAGE_ERRORS", "model_error", "package_error", "run_error"]

# what decoding an untrusted archive or manifest may raise besides edge errors; callers catch these and map them
PACKAGE_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    tarfile.TarError,
    EOFError,
    OSError,
    UnicodeError,
    tomllib.TOMLDecodeError,
    ValueError,
    OverflowError,
)


def _first_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return first[:400] + "…" if len(first) > 400 else first


def package_error(exc: BaseException, where: object) -> EdgeError:
    """Map an error raised while reading the package at ``where`` to an ``edge`` error.

    ``edge`` errors pass through. A missing or unreadable file is a :class:`ModelError` saying so; anything else
    from :data:`PACKAGE_ERRORS` means the bytes are not a well-formed package: an :class:`IntegrityError`.
    """
    if isinstance(exc, EdgeError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ModelError(f"{where}: no such file or folder")
    if isinstance(exc, OSError):
        return ModelError(f"{where}: cannot read the package ({exc.strerror or _first_line(exc)})")
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    first = _first_line(exc)
    return IntegrityError(f"{where}: expected a well-formed package, got corrupt or truncated data ({kind}: {first})")


def model_error(exc: BaseException, what: str) -> EdgeError:
    """Map a foreign exception raised while ``what`` (e.g. "loading model.onnx") to a :class:`ModelError`.

    ``edge`` errors pass through unchanged. onnxruntime raises ``Fail``, ``InvalidGraph``, ``InvalidArgument``,
    ``NoSuchFile``, ``RuntimeException`` ... (all from ``onnxruntime.capi.onnxruntime_pybind11_state``); LiteRT
    raises ``ValueError``/``RuntimeError``; onnx raises ``DecodeError``/``ValidationError``. The first line of the
    foreign message is kept, its type name too, so the cause stays findable.
    """
    if isinstance(exc, EdgeError):
        return exc
    first = _first_line(exc)
    kind = type(exc).__name__
    hint = ""
    lowered = first.lower()
    if any(s in lowered for s in ("protobuf", "parse", "truncat", "flatbuffer", "not a valid", "identifier", "decode")):
        hint = " (the file looks truncated or corrupt)"
    return ModelError(f"{what}: {kind}: {first}{hint}")


def run_error(exc: BaseException, what: str, inputs: str) -> EdgeError:
    """Map a foreign exception raised while running a loaded model to a :class:`ModelError`: the model rejected
    its input (``inputs``: the input specs as bound), never a corrupt file — the file parsed when it was loaded."""
    if isinstance(exc, EdgeError):
        return exc
    return ModelError(f"{what}: the model rejected its input ({inputs}): {type(exc).__name__}: {_first_line(exc)}")
