"""The one small exception hierarchy of ``edge``.

Every error ``edge`` raises on purpose is an :class:`EdgeError`. Subclasses also inherit the builtin a caller would
naturally catch (``ShapeError`` is a ``ValueError``), so code written against NumPy or onnxruntime conventions keeps
working. Messages say what was expected and what arrived. The command line turns each class into one exit code
(``edge.cli.EXIT_CODES``, the README's "Exit codes").
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EdgeError",
    "IntegrityError",
    "ModelError",
    "ProtocolError",
    "SensorFault",
    "ShapeError",
    "UnavailableError",
]


class EdgeError(Exception):
    """Root of every error raised by ``edge``."""


class ConfigError(EdgeError, ValueError):
    """A configuration value or parameter is invalid (names the key or parameter and the accepted values)."""


class ModelError(EdgeError, RuntimeError):
    """A model cannot be loaded or run: unknown file type, corrupt or truncated file, missing provider."""


class IntegrityError(ModelError):
    """A model package does not match its manifest (hash) or its signature."""


class ShapeError(ModelError, ValueError):
    """An array does not match the spec it is bound to: shape, dtype, memory layout or writability."""


class ProtocolError(EdgeError, ValueError):
    """A telemetry frame violates docs/PROTOCOL.md (malformed, oversized, unknown schema version). ``code`` is the
    rejection code PROTOCOL.md §5 gives it: ``"malformed"`` (the default), ``"limit"`` (a size of §6 exceeded) or
    ``"version"``."""

    def __init__(self, message: str = "", code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


class SensorFault(EdgeError, RuntimeError):
    """A sensor reading is stale, frozen or invalid (NaN, out of range)."""


class UnavailableError(EdgeError, RuntimeError):
    """Something a command needs is not on this machine: an optional extra or area (the message names the
    ``pip install`` that brings it), a model runtime, an execution provider asked for in strict mode; or the system
    refused a resource (a permission, a read-only disk)."""
