"""Dataset collection: model-sized frames, expert labels, seeded perturbations; render allocation."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from edge.sim.dataset import FrameShrinker, collect, main
from edge.sim.scenario import Scenario
from edge.sim.world import World

Maker = Callable[..., Scenario]


def test_collect_records_frames_and_labels(make_scenario: Maker) -> None:
    scenario = make_scenario(width=160, height=120)
    data = collect(scenario, 120, input_hw=(33, 100), seed=4, perturb_every_s=1.0, perturb_rad=0.2)
    assert data["frames"].shape == (120, 33, 100, 3) and data["frames"].dtype == np.uint8
    assert np.all(np.isfinite(data["steering_rad"]))
    assert np.all(np.diff(data["t_s"]) == pytest.approx(0.05))  # one frame per loop period
    assert data["perturbed"].any() and not data["perturbed"].all()
    assert np.abs(data["lateral_m"]).max() < 1.0
    # recoveries: the label steers back towards the centreline (a car left of it, lateral > 0, steers right)
    off = np.abs(data["lateral_m"]) > 0.15
    assert off.sum() >= 5
    assert np.mean(np.sign(data["steering_rad"][off]) == -np.sign(data["lateral_m"][off])) > 0.5
    assert data["frames"].std() > 10  # real pictures, not blanks
    again = collect(scenario, 120, input_hw=(33, 100), seed=4, perturb_every_s=1.0, perturb_rad=0.2)
    assert all(np.array_equal(data[k], again[k]) for k in data)


def test_shrinker_crops_below_the_horizon_and_resizes() -> None:
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    frame[40:] = (10, 20, 30)  # everything below row 40
    out = np.empty((10, 20, 3), dtype=np.uint8)
    FrameShrinker((120, 160), 40, (10, 20))(frame, out)
    assert np.all(out == (10, 20, 30))


def test_command_line_writes_an_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text("[world]\nseed = 2\n[world.camera]\nwidth = 96\nheight = 72\n", encoding="utf-8")
    out = tmp_path / "data.npz"
    assert main([str(scenario), "--frames", "8", "--size", "22x66", "--out", str(out)]) == 0
    with np.load(out) as data:
        assert data["frames"].shape == (8, 22, 66, 3)
        # f = 48 / tan(35 deg) = 68.55 px; horizon at 36 - 68.55 * tan(8 deg) = 26.37: row 26 is the first below it
        assert data["crop"].tolist() == [26, 72]
    assert "8 frames 22x66" in capsys.readouterr().out
    assert main(["sunny", "--out", str(out)]) == 2


def test_rendering_allocates_nothing_per_frame(make_scenario: Maker) -> None:
    scenario = make_scenario(
        [
            {"kind": "fog", "start_s": 0.0, "visibility_m": 50.0},
            {"kind": "blur", "start_s": 0.0, "radius_px": 2},
            {"kind": "glare", "start_s": 0.0, "value": 0.5},
            {"kind": "bias", "start_s": 0.0, "gains": [1.1, 1.0, 0.9]},
        ],
        width=160,
        height=120,
    )
    world = World(scenario.world, scenario.timeline)
    out = np.empty(world.frame_shape, dtype=np.uint8)
    world.render(out)  # warm up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            world.render(out)
            world.step(0.005)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base < 4096  # nothing kept
    # and no temporary the size of an image plane (160 * 120 * 4 bytes = 77 kB) or of a uint8 frame (58 kB); NumPy's
    # own iterator buffers (8192 elements) are allowed
    assert peak - base < 40_000
