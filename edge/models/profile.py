"""Provider profiles: a TOML file that says how a class of device runs its models (``toolchains/jetson/profile.toml``).

A profile has up to three tables; every key is optional and maps onto one :class:`RuntimeOptions` field:

* ``[runtime]``: ``providers``, ``strict``, ``threads``, ``inter_op_threads``, ``spinning``, ``graph_optimization``,
  ``warmup`` (the same names as the fields);
* ``[tensorrt]``: ``engine_cache_dir``, ``timing_cache_dir`` (relative paths are taken from the profile's folder),
  ``fp16``, ``int8`` (``true``/``false``/``"auto"``), ``workspace_mb``, ``builder_optimization_level``, ``dla_core``;
* ``[cuda]``: ``device_id``, ``mem_limit_mb``, ``cudnn_conv_algo_search``.

A ``[profile]`` table (``name``, ``description``) is informational. An unknown table or key is a
:class:`ConfigError` that names it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge.config import read_toml
from edge.errors import ConfigError
from edge.models.options import RuntimeOptions

__all__ = ["PROFILE_KEYS", "load_provider_profile", "profile_options"]

# (table, key) -> RuntimeOptions field
PROFILE_KEYS: dict[tuple[str, str], str] = {
    **{
        ("runtime", k): k
        for k in ("providers", "strict", "threads", "inter_op_threads", "spinning", "graph_optimization", "warmup")
    },
    ("tensorrt", "engine_cache_dir"): "trt_engine_cache_dir",
    ("tensorrt", "timing_cache_dir"): "trt_timing_cache_dir",
    ("tensorrt", "fp16"): "trt_fp16",
    ("tensorrt", "int8"): "trt_int8",
    ("tensorrt", "workspace_mb"): "trt_workspace_mb",
    ("tensorrt", "builder_optimization_level"): "trt_builder_optimization_level",
    ("tensorrt", "dla_core"): "trt_dla_core",
    ("cuda", "device_id"): "cuda_device_id",
    ("cuda", "mem_limit_mb"): "cuda_mem_limit_mb",
    ("cuda", "cudnn_conv_algo_search"): "cudnn_conv_algo_search",
}
_PATH_FIELDS = ("trt_engine_cache_dir", "trt_timing_cache_dir")
_BOOL_FIELDS = ("strict", "spinning", "trt_fp16")
_TABLES = ("profile", "runtime", "tensorrt", "cuda")


def profile_options(doc: dict[str, Any], base_dir: Path, where: str = "profile") -> dict[str, Any]:
    """The :class:`RuntimeOptions` fields a parsed profile sets (``{field: value}``), checked key by key."""
    fields: dict[str, Any] = {}
    for table, body in doc.items():
        if table not in _TABLES:
            raise ConfigError(f"{where}: unknown table [{table}]; expected one of {', '.join(_TABLES)}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: {table}: expected a table, got {type(body).__name__}")
        if table == "profile":
            continue
        for key, value in body.items():
            field = PROFILE_KEYS.get((table, key))
            if field is None:
                known = sorted(k for t, k in PROFILE_KEYS if t == table)
                raise ConfigError(f"{where}: {table}.{key}: unknown key; expected one of {', '.join(known)}")
            if field in _BOOL_FIELDS and not isinstance(value, bool):
                raise ConfigError(f"{where}: {table}.{key}: expected true or false, got {value!r}")
            if field in _PATH_FIELDS:
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{where}: {table}.{key}: expected a folder path, got {value!r}")
                value = str((base_dir / os.path.expanduser(value)).resolve())
            fields[field] = value
    try:
        RuntimeOptions(**fields)
    except ConfigError as exc:
        key = next(f"{t}.{k}" for (t, k), f in PROFILE_KEYS.items() if str(exc).startswith(f + ":"))
        raise ConfigError(f"{where}: {key}: {str(exc).split(': ', 1)[1]}") from None
    return fields


def load_provider_profile(path: str | os.PathLike[str], base: RuntimeOptions | None = None) -> RuntimeOptions:
    """``base`` (default ``RuntimeOptions()``) with the fields that the profile file at ``path`` sets.

    Raises :class:`ConfigError` for an unreadable or invalid file, naming the file and the key.
    """
    path = Path(path)
    fields = profile_options(read_toml(path, "provider profile"), path.parent, str(path))
    return RuntimeOptions(**{**(base or RuntimeOptions()).__dict__, **fields})
