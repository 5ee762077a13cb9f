"""TOML tables → frozen dataclasses from declarative field specs, with one style of error for every config file.

A :class:`Schema` maps each allowed key of a table to a :class:`Field` (its type, bounds, choices, default or
:data:`REQUIRED`) and names what to build (a dataclass, or ``None`` for a plain dict). :func:`table` and
:func:`tables` nest schemas (``[world.track]``, ``[[timeline]]``); :func:`table_of` reads a table whose keys are
names (``[sensors.<name>]``). Every error is a :class:`ConfigError` that reads
``<dotted.key.path>: expected <what>, got <value>``: ``timeline[0].visibility_m: expected a number >= 1.0,
got -3``. An unknown key reads ``world.spped_mps: unknown key; expected one of [...]``, a missing one
``loop.rate_hz: required, but missing; expected a number > 0``. :func:`in_file` prefixes the file's name.

Checks that tie several keys together stay with each config; this module imports nothing of ``edge`` but its errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

__all__ = [
    "OMIT",
    "REQUIRED",
    "Field",
    "Schema",
    "boolean",
    "in_file",
    "integer",
    "number",
    "numbers",
    "opaque_table",
    "string",
    "strings",
    "table",
    "table_of",
    "tables",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Any = _Marker("REQUIRED")  # a missing key is an error
OMIT: Any = _Marker("OMIT")  # a missing key is not passed on: the dataclass's own default applies


def join(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the top of a document."""
    return f"{path}.{key}" if path else key


def got(value: Any) -> str:
    """What arrived, for a message (a repr, cut at 100 characters)."""
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One key: ``accept(value)`` says whether a value is valid, ``expected`` says what a valid one is (for the
    message), ``convert`` turns it into the stored value; ``default`` applies when the key is missing."""

    expected: str
    accept: Callable[[Any], bool]
    convert: Callable[[Any], Any] = _same
    default: Any = REQUIRED

    def read(self, value: Any, key: str) -> Any:
        """The stored value of ``value`` at ``key`` (dotted path), or :class:`ConfigError`."""
        if not self.accept(value):
            raise ConfigError(f"{key}: expected {self.expected}, got {got(value)}")
        return self.convert(value)

    def absent(self, key: str) -> Any:
        """The value of a missing key (may be :data:`OMIT`), or :class:`ConfigError` when it is required."""
        if self.default is REQUIRED:
            raise ConfigError(f"{key}: required, but missing; expected {self.expected}")
        return self.default


@dataclass(frozen=True)
class Schema:
    """A table's allowed keys and their fields; ``into`` builds the result from keyword arguments (a dataclass;
    ``None``: a dict), ``rename`` maps a TOML key to its keyword where they differ (``min`` → ``lo``)."""

    fields: Mapping[str, Field]
    into: Callable[..., Any] | None = None
    rename: Mapping[str, str] = field(default_factory=dict)

    def read(self, raw: Any, path: str = "", **extra: Any) -> Any:
        """Validate the table ``raw`` found at ``path``; ``extra`` keywords are passed to ``into`` as they are."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path or 'document'}: expected a table, got {type(raw).__name__}")
        for key in raw:
            if key not in self.fields:
                raise ConfigError(f"{join(path, key)}: unknown key; expected one of {sorted(self.fields)}")
        values: dict[str, Any] = {}
        for key, spec in self.fields.items():
            where = join(path, key)
            value = spec.read(raw[key], where) if key in raw else spec.absent(where)
            if value is not OMIT:
                values[self.rename.get(key, key)] = value
        values.update(extra)
        if self.into is None:
            return values
        try:
            return self.into(**values)
        except ConfigError as exc:  # the dataclass's own check names "<table>.<key>" or the full path
            raise ConfigError(_under(path, str(exc))) from None


def _under(path: str, message: str) -> str:
    """``message`` from inside the table at ``path``, with the path in front once."""
    if not path or message.startswith(path):
        return message
    parent, _, last = path.rpartition(".")
    if message.startswith(last + ".") or message.startswith(last + ":"):
        return join(parent, message)
    return f"{path}: {message}"


@contextmanager
def in_file(path: Path) -> Iterator[None]:
    """Prefix a :class:`ConfigError` raised inside with the file's name: ``fog.toml: timeline[0]...``."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


# ------------------------------------------------------------------------------------------------ scalar fields
def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bounds(gt: Any, ge: Any, lt: Any, le: Any) -> tuple[str, Callable[[Any], bool]]:
    parts = [f"{op} {b}" for op, b in ((">", gt), (">=", ge), ("<", lt), ("<=", le)) if b is not None]

    def within(v: Any) -> bool:
        return (gt is None or v > gt) and (ge is None or v >= ge) and (lt is None or v < lt) and (le is None or v <= le)

    return (" " + " and ".join(parts) if parts else ""), within


def number(
    default: Any = REQUIRED,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    unit: str | None = None,
) -> Field:
    """A finite number (an integer is accepted), stored as a float; ``unit`` reads "a number of seconds > 0"."""
    cond, within = _bounds(gt, ge, lt, le)
    return Field(
        f"a number{f' of {unit}' if unit else ''}{cond}", lambda v: _is_number(v) and within(v), float, default
    )


def integer(default: Any = REQUIRED, *, ge: int | None = None, le: int | None = None) -> Field:
    """An integer (not a bool)."""
    cond, within = _bounds(None, ge, None, le)
    return Field(f"an integer{cond}", lambda v: _is_int(v) and within(v), int, default)


def string(
    default: Any = REQUIRED, *, choices: Sequence[str] | None = None, nonempty: bool = False, expected: str = ""
) -> Field:
    """A string; with ``choices`` one of them."""
    if choices is not None:
        options = tuple(choices)
        return Field(expected or f"one of {list(options)}", lambda v: isinstance(v, str) and v in options, str, default)
    what = expected or ("a non-empty string" if nonempty else "a string")
    return Field(what, lambda v: isinstance(v, str) and (bool(v) or not nonempty), str, default)


def boolean(default: Any = REQUIRED) -> Field:
    """``true`` or ``false``."""
    return Field("true or false", lambda v: isinstance(v, bool), bool, default)


def numbers(
    default: Any = REQUIRED,
    *,
    ints: bool = False,
    scalar: bool = False,
    length: int | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Field:
    """A non-empty list of numbers (``ints``: integers) as a tuple; ``scalar``: a single number is accepted and
    kept as it is; ``length``: exactly that many; ``ge``/``le``: bounds of every element."""
    one = _is_int if ints else _is_number
    cond, within = _bounds(None, ge, None, le)
    kind = "integers" if ints else "numbers"
    what = f"a list of {length} {kind}" if length is not None else f"a non-empty list of {kind}"
    what = f"{'a number or ' if scalar else ''}{what}{cond}"

    def accept(v: Any) -> bool:
        if scalar and one(v):
            return within(v)
        ok = isinstance(v, list) and bool(v) and (length is None or len(v) == length)
        return ok and all(one(x) and within(x) for x in v)

    def convert(v: Any) -> Any:
        cast = int if ints else float
        return cast(v) if not isinstance(v, list) else tuple(cast(x) for x in v)

    return Field(what, accept, convert, default)


def strings(default: Any = REQUIRED) -> Field:
    """A non-empty list of strings, as a tuple."""
    return Field(
        "a non-empty list of strings",
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v),
        tuple,
        default,
    )


# ------------------------------------------------------------------------------------------------ nested fields
@dataclass(frozen=True)
class _Table(Field):
    schema: Schema | None = None
    optional: bool = False

    def read(self, value: Any, key: str) -> Any:
        assert self.schema is not None
        return self.schema.read(value, key)

    def absent(self, key: str) -> Any:
        return None if self.optional else self.read({}, key)


def table(schema: Schema, *, optional: bool = False) -> Field:
    """A nested table (``[world.track]``); missing: read as an empty table (its defaults), or ``None`` when
    ``optional``."""
    return _Table("a table", lambda v: isinstance(v, Mapping), schema=schema, optional=optional)


@dataclass(frozen=True)
class _Tables(Field):
    item: Callable[[Any, str], Any] | None = None

    def read(self, value: Any, key: str) -> Any:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected {self.expected}, got {got(value)}")
        assert self.item is not None
        return tuple(self.item(v, f"{key}[{i}]") for i, v in enumerate(value))


def tables(item: Schema | Callable[[Any, str], Any], name: str, default: Any = ()) -> Field:
    """An array of tables (``[[name]]``) as a tuple; each element read by ``item`` (a :class:`Schema`, or a
    function of the element and its path such as ``timeline[2]``)."""
    read = item.read if isinstance(item, Schema) else item
    return _Tables(f"an array of tables ([[{name}]])", lambda v: isinstance(v, list), default=default, item=read)


@dataclass(frozen=True)
class _TableOf(Field):
    item: Field | None = None
    keys: tuple[str, ...] | None = None

    def read(self, value: Any, key: str) -> Any:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected {self.expected}, got {type(value).__name__}")
        assert self.item is not None
        out = {}
        for k, v in value.items():
            if self.keys is not None and k not in self.keys:
                raise ConfigError(f"{join(key, k)}: unknown key; expected one of {list(self.keys)}")
            out[k] = self.item.read(v, join(key, k))
        return out

    def absent(self, key: str) -> Any:
        value = super().absent(key)
        return dict(value) if isinstance(value, Mapping) else value  # a fresh dict per document


def table_of(item: Field, *, keys: Sequence[str] | None = None, default: Any = REQUIRED) -> Field:
    """A table whose keys are names (``[sensors.<name>]``, ``[loop.budgets_ms]``), each value read by ``item``,
    as a dict; ``keys``: the names allowed (default: any)."""
    what = "a table" if keys is None else f"a table of {list(keys)}"
    return _TableOf(
        what, lambda v: isinstance(v, Mapping), default=default, item=item, keys=None if keys is None else tuple(keys)
    )


def opaque_table(default: Any = None) -> Field:
    """A table read by someone else (``[telemetry]``): only its being a table is checked; kept as a dict."""
    return Field("a table", lambda v: isinstance(v, Mapping), dict, default)
