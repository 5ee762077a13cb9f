"""A tiny TOML writer for ``manifest.toml`` (reading is ``tomllib``).

Handles what a manifest holds: top-level scalars, tables of scalars/arrays of scalars, arrays of such tables.
Output is deterministic (insertion order), so a manifest written twice is byte-identical.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dumps"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML: cannot write non-finite float {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"TOML: cannot write {type(v).__name__}")


def _table(d: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in d.items() if v is not None]


def dumps(doc: dict[str, Any]) -> str:
    """``doc`` as TOML text ending in a newline. ``None`` values are left out."""
    lines = _table({k: v for k, v in doc.items() if not isinstance(v, dict) and not _is_table_array(v)})
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]", *_table(v)]
        elif _is_table_array(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]", *_table(item)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
