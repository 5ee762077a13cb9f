"""edge.schema: declarative field specs → frozen dataclasses; one message style (path, expected, got)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.errors import ConfigError
from edge.schema import (
    OMIT,
    Schema,
    boolean,
    in_file,
    integer,
    number,
    numbers,
    opaque_table,
    string,
    strings,
    table,
    table_of,
    tables,
)


@dataclass(frozen=True)
class Lens:
    focal_mm: float = 4.0
    kind: str = "pinhole"

    def __post_init__(self) -> None:
        if self.kind == "fisheye" and self.focal_mm > 3:
            raise ConfigError(f"lens.focal_mm: expected <= 3 for a fisheye, got {self.focal_mm}")


@dataclass(frozen=True)
class Stop:
    at_s: float
    label: str = "stop"


@dataclass(frozen=True)
class Rig:
    name: str
    rate_hz: float
    count: int = 1
    enabled: bool = True
    gains: tuple[float, ...] = (1.0, 1.0, 1.0)
    tags: tuple[str, ...] = ()
    lens: Lens = Lens()
    stops: tuple[Stop, ...] = ()
    lo: float | None = None


LENS = Schema({"focal_mm": number(OMIT, gt=0), "kind": string(OMIT, choices=("pinhole", "fisheye"))}, into=Lens)
RIG = Schema(
    {
        "name": string(nonempty=True),
        "rate_hz": number(gt=0, le=1000, unit="Hz"),
        "count": integer(OMIT, ge=1, le=8),
        "enabled": boolean(OMIT),
        "gains": numbers(OMIT, length=3, ge=0.0, le=4.0),
        "tags": strings(OMIT),
        "lens": table(LENS),
        "stops": tables(Schema({"at_s": number(ge=0.0), "label": string(OMIT)}, into=Stop), "rig.stops"),
        "min": number(None),
    },
    into=Rig,
    rename={"min": "lo"},
)
GOOD = {"name": "front", "rate_hz": 30}


def test_a_table_becomes_the_dataclass_with_defaults_and_conversions() -> None:
    rig = RIG.read({**GOOD, "gains": [1, 2, 0.5], "tags": ["a"], "stops": [{"at_s": 1}, {"at_s": 2, "label": "x"}]})
    assert rig == Rig("front", 30.0, gains=(1.0, 2.0, 0.5), tags=("a",), stops=(Stop(1.0), Stop(2.0, "x")))
    assert type(rig.rate_hz) is float and rig.lens == Lens() and rig.lo is None  # OMIT: the dataclass default
    assert RIG.read({**GOOD, "min": -2, "lens": {"kind": "fisheye", "focal_mm": 2}}).lo == -2.0
    assert Schema({"a": integer(7)}).read({}) == {"a": 7}  # no ``into``: a dict


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rate_hz": "fast"}, "rig.rate_hz: expected a number of Hz > 0 and <= 1000, got 'fast'"),
        ({"rate_hz": 0}, "rig.rate_hz: expected a number of Hz > 0 and <= 1000, got 0"),
        ({"rate_hz": float("nan")}, "rig.rate_hz: expected a number of Hz > 0 and <= 1000, got nan"),
        ({"rate_hz": True}, "rig.rate_hz: expected a number of Hz > 0 and <= 1000, got True"),
        ({"count": 2.0}, "rig.count: expected an integer >= 1 and <= 8, got 2.0"),
        ({"count": 9}, "rig.count: expected an integer >= 1 and <= 8, got 9"),
        ({"enabled": 1}, "rig.enabled: expected true or false, got 1"),
        ({"name": ""}, "rig.name: expected a non-empty string, got ''"),
        ({"name": None}, "rig.name: required, but missing; expected a non-empty string"),
        ({"gains": [1, 2]}, "rig.gains: expected a list of 3 numbers >= 0.0 and <= 4.0, got [1, 2]"),
        ({"gains": [1, 2, 5]}, "rig.gains: expected a list of 3 numbers >= 0.0 and <= 4.0, got [1, 2, 5]"),
        ({"tags": []}, "rig.tags: expected a non-empty list of strings, got []"),
        ({"tags": "a"}, "rig.tags: expected a non-empty list of strings, got 'a'"),
        ({"colour": "red"}, "rig.colour: unknown key; expected one of ['count', 'enabled', 'gains', 'lens', 'min',"),
    ],
)
def test_scalar_errors_name_the_path_the_expectation_and_what_arrived(change: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        RIG.read(raw, "rig")
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lens": {"kind": "zoom"}}, "rig.lens.kind: expected one of ['pinhole', 'fisheye'], got 'zoom'"),
        ({"lens": {"focus": 1}}, "rig.lens.focus: unknown key; expected one of ['focal_mm', 'kind']"),
        ({"lens": [1]}, "rig.lens: expected a table, got list"),
        ({"lens": {"kind": "fisheye"}}, "rig.lens.focal_mm: expected <= 3 for a fisheye, got 4.0"),  # __post_init__
        ({"stops": {"at_s": 1}}, "rig.stops: expected an array of tables ([[rig.stops]]), got {'at_s': 1}"),
        (
            {"stops": [{"at_s": 1}, {"label": "x"}]},
            "rig.stops[1].at_s: required, but missing; expected a number >= 0.0",
        ),
        ({"stops": [{"at_s": 1}, {"at_s": -1}]}, "rig.stops[1].at_s: expected a number >= 0.0, got -1"),
        ({"stops": [{"at_s": 1, "why": 2}]}, "rig.stops[0].why: unknown key; expected one of ['at_s', 'label']"),
        ({"stops": [3]}, "rig.stops[0]: expected a table, got int"),
    ],
)
def test_nested_tables_and_arrays_of_tables_name_the_dotted_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RIG.read({**GOOD, **change}, "rig")
    assert str(err.value) == message


def test_tables_of_names_and_opaque_tables() -> None:
    schema = Schema(
        {
            "budgets": table_of(number(gt=0), keys=("infer", "total"), default={}),
            "sensors": table_of(table(Schema({"hz": number(1.0)}))),
            "extra": opaque_table(),
        }
    )
    a = schema.read({"sensors": {"cam": {}, "imu": {"hz": 100}}, "extra": {"anything": [1]}})
    assert a == {"budgets": {}, "sensors": {"cam": {"hz": 1.0}, "imu": {"hz": 100.0}}, "extra": {"anything": [1]}}
    b = schema.read({"sensors": {}})
    assert b["extra"] is None and b["budgets"] == {} and b["budgets"] is not a["budgets"]  # a fresh default
    for raw, message in [
        ({"sensors": {}, "budgets": {"render": 1}}, "budgets.render: unknown key; expected one of ['infer', 'total']"),
        ({"sensors": {}, "budgets": {"infer": 0}}, "budgets.infer: expected a number > 0, got 0"),
        ({"sensors": {"cam": {"hz": "x"}}}, "sensors.cam.hz: expected a number, got 'x'"),
        ({"sensors": 3}, "sensors: expected a table, got int"),
        ({}, "sensors: required, but missing; expected a table"),
        ({"sensors": {}, "extra": 1}, "extra: expected a table, got 1"),
    ]:
        with pytest.raises(ConfigError) as err:
            schema.read(raw)
        assert str(err.value) == message


def test_scalar_or_list_numbers_and_integer_lists() -> None:
    schema = Schema({"mean": numbers(None, scalar=True), "cpus": numbers(None, ints=True)})
    assert schema.read({"mean": 0.5, "cpus": [0, 2]}) == {"mean": 0.5, "cpus": (0, 2)}
    assert schema.read({"mean": [1, 2]})["mean"] == (1.0, 2.0)
    with pytest.raises(ConfigError, match=r"^mean: expected a number or a non-empty list of numbers, got 'x'$"):
        schema.read({"mean": "x"})
    with pytest.raises(ConfigError, match=r"^cpus: expected a non-empty list of integers, got \[True\]$"):
        schema.read({"cpus": [True]})


def test_in_file_prefixes_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^fog\.toml: rig\.rate_hz: expected a number of Hz > 0 and <= 1000, got -3$"
    ):
        with in_file(tmp_path / "fog.toml"):
            RIG.read({"name": "x", "rate_hz": -3}, "rig")


def test_the_helper_sits_below_every_area() -> None:
    source = Path(__file__).parents[1].joinpath("edge", "schema.py").read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert [line for line in imports if "edge" in line] == ["from edge.errors import ConfigError"]
