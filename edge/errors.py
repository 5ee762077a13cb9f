"""The one small exception hierarchy of ``edge``.

Every error ``edge`` raises on purpose is an :class:`EdgeError`. Subclasses also inherit the builtin a caller would
naturally catch (``ShapeError`` is a ``ValueError``), so code written against NumPy or onnxruntime conventions keeps
working. Messages say what was expected and what arrived.
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
    """A telemetry frame violates docs/PROTOCOL.md (malformed, oversized, unknown schema version)."""


class SensorFault(EdgeError, RuntimeError):
    """A sensor reading is stale, frozen or invalid (NaN, out of range)."""
