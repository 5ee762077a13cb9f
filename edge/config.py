"""Reading the TOML files ``edge`` is configured by (device.toml, provider profiles, scenarios).

Each file kind declares its tables with :mod:`edge.schema` (field specs → frozen dataclasses, one message style);
what they share here is reading the file, and the :class:`ConfigError` that names the file when it cannot be read
or is not TOML.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML document at ``path``; ``what`` names the kind of file in errors (e.g. ``"config"``)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"expected a readable {what} file, got {exc.strerror} (cannot read the {what})"
        raise ConfigError(f"{path}: {msg}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: expected valid TOML, got a parse error: {exc} (not a valid TOML {what})") from None
