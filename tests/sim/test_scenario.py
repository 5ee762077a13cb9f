"""Scenario TOML: the shipped files load; bad input is refused with an error naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from edge.sim.scenario import builtin_scenario, builtin_scenarios, load_scenario, parse_scenario
from edge.sim.timeline import Timeline, parse_entry

from edge.errors import ConfigError

SHIPPED = {
    "nominal": [],
    "dusk": ["brightness", "bias", "noise"],
    "fog": ["fog"],
    "glare": ["glare"],
    "camera-bias": ["bias"],
    "camera-dropout": ["dropout"],
    "frozen-camera": ["frozen"],
    "cpu-contention": ["cpu_contention"],
    "collector-outage": ["collector_outage"],
    "hot-swap": ["model_swap"],
    "bad-swap": ["bad_swap"],
}


def test_the_eleven_scenarios_ship_and_load() -> None:
    assert set(builtin_scenarios()) == set(SHIPPED)
    for name, kinds in SHIPPED.items():
        scenario = builtin_scenario(name)
        assert scenario.name == name
        assert [e.kind for e in scenario.timeline.entries] == kinds
        assert scenario.assertions.max_lane_departures == 0
        assert scenario.world.camera.width == 640 and scenario.world.camera.height == 480


def test_drift_scenarios_expect_the_alarm_after_onset() -> None:
    for name in ("dusk", "fog", "glare", "camera-bias"):
        scenario = builtin_scenario(name)
        (alert,) = scenario.assertions.expect_alerts
        onset = scenario.timeline.entries[0].start_s
        assert alert.kind == "drift" and alert.after_s == onset and alert.by_s > onset
    assert builtin_scenario("nominal").assertions.no_alert


def test_a_full_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        """
[world]
seed = 42
duration_s = 20
rate_hz = 30
speed_mps = 8.5
[world.track]
preset = "oval"
lane_width_m = 3.2
[world.camera]
width = 320
height = 240
pitch_deg = 6.5
[[timeline]]
kind = "fog"
start_s = 5
ramp_s = 2.5
visibility_m = 60
[[timeline]]
kind = "model_swap"
start_s = 10
model = "models/lane-v2.tgz"
[assertions]
max_lateral_error_m = 0.4
[[assertions.expect_alert]]
kind = "drift"
feature = "brightness"
by_s = 12
""",
        encoding="utf-8",
    )
    s = load_scenario(path)
    assert s.name == "mine"
    assert (s.world.seed, s.world.duration_s, s.world.rate_hz, s.world.speed_mps) == (42, 20.0, 30.0, 8.5)
    assert (s.world.track.preset, s.world.track.lane_width_m) == ("oval", 3.2)
    assert (s.world.camera.width, s.world.camera.height, s.world.camera.pitch_deg) == (320, 240, 6.5)
    fog, swap = s.timeline.entries
    assert (fog.start_s, fog.ramp_s, fog.params["visibility_m"], fog.params["colour"]) == (
        5.0,
        2.5,
        60.0,
        (200, 204, 208),
    )
    assert swap.category == "event" and swap.params["model"] == "models/lane-v2.tgz" and swap.end_s is None
    assert s.assertions.max_lateral_error_m == 0.4 and s.assertions.max_lane_departures is None
    assert s.assertions.expect_alerts[0].feature == "brightness"


GOOD_ENTRY = {"kind": "fog", "start_s": 1.0, "visibility_m": 50.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start_s": "soon"}, r"timeline\[2\]\.start_s: expected a number >= 0.0, got 'soon'"),
        ({"start_s": -1}, r"timeline\[2\]\.start_s: expected a number >= 0.0, got -1"),
        ({"kind": "rain"}, r"timeline\[2\]\.kind: expected one of \[.*'fog'.*\], got 'rain'"),
        ({"visibility_m": None}, r"timeline\[2\]\.visibility_m: required for kind 'fog', missing"),
        ({"end_s": 0.5}, r"timeline\[2\]\.end_s: expected a time after start_s \(1.0\), got 0.5"),
        ({"density": 3}, r"timeline\[2\]\.density: unknown key for kind 'fog'"),
        ({"colour": [1, 2]}, r"timeline\[2\]\.colour: expected a list of 3 numbers in \[0, 255\], got \[1, 2\]"),
        ({"ramp_down_s": 1.0}, r"timeline\[2\]\.ramp_down_s: needs an end_s"),
        ({"end_s": 3.0, "ramp_s": 1.5, "ramp_down_s": 1.0}, r"timeline\[2\]\.ramp_s: expected ramp_s \+ ramp_down_s"),
        ({"start_s": 100.0}, r"timeline\[2\]\.start_s: expected a time before world.duration_s \(30.0\), got 100.0"),
    ],
)
def test_timeline_errors_name_the_entry_and_key(change: dict[str, Any], message: str) -> None:
    entry = {**GOOD_ENTRY, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    raw = {"world": {"duration_s": 30.0}, "timeline": [GOOD_ENTRY, GOOD_ENTRY, entry]}
    with pytest.raises(ConfigError, match=message):
        parse_scenario(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"world": {"spped_mps": 3}}, r"world.spped_mps: unknown key"),
        ({"world": {"seed": 1.5}}, r"world.seed: expected an integer >= 0, got 1.5"),
        ({"world": {"rate_hz": 0}}, r"world.rate_hz: expected a number > 0.0"),
        ({"world": {"camera": {"width": "wide"}}}, r"world.camera.width: expected an integer >= 8, got 'wide'"),
        ({"world": {"track": {"preset": "monza"}}}, r"world.track.preset: expected one of \['circuit', 'oval'\]"),
        ({"world": {"vehicle": {"wheelbase_m": 0}}}, r"world.vehicle.wheelbase_m: expected a number > 0.0, got 0"),
        ({"world": []}, r"world: expected a table, got list"),
        ({"timeline": {"kind": "fog"}}, r"timeline: expected an array of tables"),
        ({"colour": "red"}, r"colour: unknown key"),
        ({"assertions": {"max_lane_departures": -1}}, r"assertions.max_lane_departures: expected an integer >= 0"),
        ({"assertions": {"no_alert": "yes"}}, r"assertions.no_alert: expected true or false, got 'yes'"),
        (
            {"assertions": {"no_alert": True, "expect_alert": [{"kind": "drift", "by_s": 5}]}},
            r"assertions.no_alert: expected false when assertions.expect_alert lists alerts",
        ),
        ({"assertions": {"expect_alert": [{"kind": "drift"}]}}, r"assertions.expect_alert\[0\].by_s: required"),
        (
            {"assertions": {"expect_alert": [{"kind": "drift", "by_s": 5, "after_s": 6}]}},
            r"assertions.expect_alert\[0\].after_s: expected a time before by_s \(5.0\), got 6",
        ),
        (
            {"assertions": {"expect_alert": [{"kind": "drift", "by_s": 500}]}},
            r"assertions.expect_alert\[0\].by_s: expected <= world.duration_s",
        ),
    ],
)
def test_scenario_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scenario(raw)


def test_instant_events_take_no_end() -> None:
    with pytest.raises(ConfigError, match=r"timeline\[0\].end_s: 'model_swap' happens at an instant"):
        parse_entry({"kind": "model_swap", "start_s": 3, "end_s": 4, "model": "m.tgz"}, "timeline[0]")
    with pytest.raises(ConfigError, match=r"timeline\[0\].model: required for kind 'model_swap'"):
        parse_entry({"kind": "model_swap", "start_s": 3}, "timeline[0]")
    assert parse_entry({"kind": "bad_swap", "start_s": 3}, "x").params["model"] == "broken"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[world\nseed = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: expected valid TOML"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match=r"missing.toml: expected a readable scenario file"):
        load_scenario(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[world]\nduration_s = -3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^wrong.toml: world.duration_s: expected a number > 0.0, got -3$"):
        load_scenario(wrong)
    with pytest.raises(ConfigError, match=r"scenario: expected one of \[.*'nominal'.*\], got 'sunny'"):
        builtin_scenario("sunny")


def test_intensity_ramps_and_transitions_are_ordered() -> None:
    a = parse_entry({"kind": "brightness", "start_s": 2, "end_s": 10, "ramp_s": 4, "ramp_down_s": 2, "value": 1}, "a")
    assert [a.intensity(t) for t in (1.9, 2.0, 3.0, 6.0, 8.0, 9.0, 10.0)] == [0.0, 0.0, 0.25, 1.0, 1.0, 0.5, 0.0]
    b = parse_entry({"kind": "collector_outage", "start_s": 0, "end_s": 2}, "b")
    c = parse_entry({"kind": "model_swap", "start_s": 2, "model": "m"}, "c")
    timeline = Timeline((a, b, c))
    assert [(t, what, e.kind) for t, what, e in timeline.transitions(-1.0, 2.0)] == [
        (0.0, "start", "collector_outage"),
        (2.0, "start", "brightness"),
        (2.0, "start", "model_swap"),
        (2.0, "end", "collector_outage"),
    ]
    assert timeline.transitions(2.0, 9.9) == []
    assert timeline.events == (b, c)
