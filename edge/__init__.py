"""edge: an embedded edge-inference runtime for vehicles and robots."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from edge.errors import ConfigError, EdgeError, IntegrityError, ModelError, ProtocolError, SensorFault, ShapeError

try:
    __version__ = version("edge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ConfigError",
    "EdgeError",
    "IntegrityError",
    "ModelError",
    "ProtocolError",
    "SensorFault",
    "ShapeError",
    "__version__",
]
