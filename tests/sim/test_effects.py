"""Each environment effect moves the image the way it should, scaled by its ramped intensity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from edge.sim.scenario import Scenario
from edge.sim.world import World


def frames(scenario: Scenario, *times_s: float) -> list[np.ndarray]:
    """The camera frame at each time with the vehicle held at its start pose (so only the effects change)."""
    world = World(scenario.world, scenario.timeline)
    st = world.vehicle.state
    scene = np.empty(world.frame_shape, dtype=np.float32)
    out = []
    for t in times_s:
        world.scene.render(st.x, st.y, st.yaw, scene)
        frame = np.empty(world.frame_shape, dtype=np.uint8)
        world.effects.apply(scene, world.environment.update(t), frame)
        out.append(frame.astype(np.float64))
    return out


def one(kind: str, **params: Any) -> list[dict[str, Any]]:
    return [{"kind": kind, "start_s": 10.0, "ramp_s": 4.0, **params}]


Maker = Callable[..., Scenario]


def test_brightness_raises_and_lowers_the_mean(make_scenario: Maker) -> None:
    before, half, full = frames(make_scenario(one("brightness", value=0.5)), 5.0, 12.0, 20.0)
    assert before.mean() < half.mean() < full.mean()
    (darker,) = frames(make_scenario(one("brightness", value=-0.5)), 20.0)
    assert darker.mean() == pytest.approx(before.mean() * 0.5, rel=0.02)


def test_contrast_offset_scales_the_spread(make_scenario: Maker) -> None:
    before, full = frames(make_scenario(one("contrast", value=-0.5)), 5.0, 20.0)
    assert full.std() == pytest.approx(before.std() * 0.5, rel=0.05)


def test_fog_lowers_contrast_and_grows_with_distance(make_scenario: Maker) -> None:
    colour = [200, 204, 208]
    before, full = frames(make_scenario(one("fog", visibility_m=30.0, colour=colour)), 5.0, 20.0)
    contrast = lambda f: f[22:].std(axis=(1, 2)).mean()  # noqa: E731  (within-row spread of the ground rows)
    assert contrast(full) < 0.6 * contrast(before)
    gap_before = np.abs(before - colour).mean(axis=(1, 2))
    gap = np.abs(full - colour).mean(axis=(1, 2))  # per row: how far from the fog colour
    horizon_row = 30  # ground about 9 m out
    assert gap[horizon_row] < 0.4 * gap_before[horizon_row]
    assert gap[-1] > gap[horizon_row]  # the nearest ground (bottom row) is the least fogged


def test_bias_shifts_each_channel(make_scenario: Maker) -> None:
    before, full = frames(make_scenario(one("bias", gains=[1.3, 1.0, 0.7])), 5.0, 20.0)
    r, g, b = (full[..., c].mean() - before[..., c].mean() for c in range(3))
    assert r > 10 and b < -10 and abs(g) < 1.0


def test_glare_brightens_around_its_position(make_scenario: Maker) -> None:
    before, full = frames(make_scenario(one("glare", value=1.0, position=[0.75, 0.25, 0.2])), 5.0, 20.0)
    lift = full - before
    near = lift[10:20, 55:65].mean()  # around (0.75 * 80, 0.25 * 60)
    far = lift[50:60, 0:10].mean()
    assert near > 60 and far < 0.5 * near


def test_noise_has_the_stated_standard_deviation(make_scenario: Maker) -> None:
    scenario = make_scenario(one("noise", sigma=12.0))
    assert scenario.world.camera.noise_sigma == 1.5  # the camera's own noise, in both frames
    before, full = frames(scenario, 5.0, 20.0)
    residual = (full - before)[20:50]  # rows away from saturation
    assert residual.std() == pytest.approx(np.sqrt(12.0**2 + 2 * 1.5**2), rel=0.1)


def test_blur_removes_fine_detail(make_scenario: Maker) -> None:
    before, full = frames(make_scenario(one("blur", radius_px=2)), 5.0, 20.0)
    detail = lambda f: np.abs(np.diff(f, axis=1)).mean()  # noqa: E731
    assert detail(full) < 0.6 * detail(before)
    assert full.mean() == pytest.approx(before.mean(), rel=0.02)  # a box blur keeps the light


def test_effects_end_and_ramp_down(make_scenario: Maker) -> None:
    timeline = [{"kind": "brightness", "start_s": 10.0, "end_s": 20.0, "ramp_down_s": 4.0, "value": 0.6}]
    before, on, down, after = frames(make_scenario(timeline), 5.0, 15.0, 18.0, 25.0)
    assert on.mean() > down.mean() > before.mean()
    assert after.mean() == pytest.approx(before.mean(), abs=0.5)
