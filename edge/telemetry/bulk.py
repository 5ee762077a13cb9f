"""Bulk checks of decoded record arrays for the wire validator (:mod:`edge.telemetry.protocol`).

Whole arrays are checked with C-level builtins (``map(type, ...)``, ``list.count``, ``array("Q", ...)`` for the
unsigned 64-bit range) instead of one Python call per item. Each check returns True only when the validator's
item-by-item check would accept; on False the validator runs its item-by-item check, which raises its exact
message, so accept/reject behaviour and messages are those of the item-by-item code. Pure functions, no allocation
beyond temporaries.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from itertools import chain
from operator import itemgetter
from typing import Any

__all__ = ["moments_ok", "names_ok", "sketches_ok", "uints_ok"]

MAX_U64 = (1 << 64) - 1

_NUMBER_TYPES = {int, float}
_LIST_ONLY = {list}
_DICT_ONLY = {dict}
_STR_ONLY = {str}
_FIVE = {5}
_get_c = itemgetter("c")
_get_m = itemgetter("m")


def uints_ok(items: list[Any]) -> bool:
    """All items exact ``int`` (not bool) in [0, 2**64 - 1]; ``items`` must be a list."""
    if list(map(type, items)).count(int) != len(items):
        return False
    try:
        array("Q", items)  # one C pass: OverflowError for anything outside [0, 2**64 - 1]
    except OverflowError:
        return False
    return True


def names_ok(names: Iterable[Any], max_bytes: int) -> bool:
    """All exact ``str``, non-empty, at most ``max_bytes`` in UTF-8 (decided here only for names of at most
    ``max_bytes // 4`` code points, which cannot be longer; longer names go to the item-by-item check)."""
    names = list(names)
    if set(map(type, names)) != _STR_ONLY:
        return False
    lengths = list(map(len, names))
    if min(lengths) < 1 or max(lengths) > max_bytes // 4:
        return False
    try:
        "".join(names).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sketches_ok(m: dict[Any, Any], max_bins: int, max_name_bytes: int) -> bool:
    """``m`` (a dict) maps valid names to ``{"c": counts, "m": moments, ...}`` sketches, checked in bulk."""
    if not m:
        return True
    if not names_ok(m.keys(), max_name_bytes):
        return False
    values = list(m.values())
    if set(map(type, values)) != _DICT_ONLY:
        return False
    try:
        counts = list(map(_get_c, values))
        moments = list(map(_get_m, values))
    except KeyError:
        return False
    if set(map(type, counts)) != _LIST_ONLY or set(map(type, moments)) != _LIST_ONLY:
        return False
    lengths = list(map(len, counts))
    if min(lengths) < 3 or max(lengths) > max_bins or set(map(len, moments)) != _FIVE:
        return False
    if not uints_ok(list(chain.from_iterable(counts))):
        return False
    if not set(map(type, chain.from_iterable(moments))) <= _NUMBER_TYPES:
        return False
    return all(map(moments_ok, counts, moments))


def moments_ok(counts: list[int], m: list[int | float]) -> bool:
    """PROTOCOL.md §4.2: the moments ``[count, mean, M2, min, max]`` of a sketch whose ``counts`` are valid can be
    true: ``count``, ``mean`` and ``M2`` finite, ``0 <= count <= sum(counts[:-1])`` (finite values land in the
    underflow, bins and overflow; the NaN column holds none), ``M2 >= 0``, ``min`` and ``max`` not NaN."""
    n, mean, m2, lo, hi = m
    return (
        0 <= n <= sum(counts) - counts[-1]  # exact: Python compares int and float without rounding
        and m2 >= 0
        and math.isfinite(n)
        and math.isfinite(mean)
        and math.isfinite(m2)
        and not math.isnan(lo)
        and not math.isnan(hi)
    )
