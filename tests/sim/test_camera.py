"""Camera geometry and the rendered scene, checked against pinhole projections worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edge.sim.camera import CameraGeometry, CameraSpec, SceneRenderer
from edge.sim.track import TrackSpec, track_for

from edge.errors import ConfigError, ShapeError

# 160x120, 90 degrees: f = 80 px, principal point (80, 60); level camera 1.5 m up, 1 m ahead of the rear axle
LEVEL = CameraSpec(width=160, height=120, hfov_deg=90.0, height_m=1.5, pitch_deg=0.0, forward_m=1.0, noise_sigma=0.0)


def test_projection_of_a_ground_point_by_hand() -> None:
    geo = CameraGeometry(LEVEL)
    assert geo.focal_px == pytest.approx(80.0)
    # 10 m ahead of the camera, 1.875 m left: u = 80 - 80 * 1.875 / 10 = 65, v = 60 + 80 * 1.5 / 10 = 72
    assert geo.project(11.0, 1.875) == pytest.approx((65.0, 72.0))
    assert geo.ground_row == 60  # the horizon is the image centre line when the camera is level
    assert geo.horizon_row == pytest.approx(60.0)


@pytest.mark.parametrize("pitch", [0.0, 6.0, 15.0])
def test_every_ground_ray_projects_back_to_its_pixel_centre(pitch: float) -> None:
    geo = CameraGeometry(CameraSpec(width=40, height=30, hfov_deg=70.0, pitch_deg=pitch))
    w = geo.spec.width
    for k in range(0, geo.ground_pixels, 37):
        if geo.range_m[k] > 500:  # rays clamped at the far limit do not come back exactly
            continue
        row, col = geo.ground_row + k // w, k % w
        assert geo.project(float(geo.x_m[k]), float(geo.y_m[k])) == pytest.approx((col + 0.5, row + 0.5), abs=1e-3)


def test_pitch_moves_the_horizon_up_by_f_tan_pitch() -> None:
    geo = CameraGeometry(CameraSpec(width=160, height=120, hfov_deg=90.0, pitch_deg=10.0))
    assert geo.horizon_row == pytest.approx(60.0 - 80.0 * math.tan(math.radians(10.0)))
    assert geo.ground_row == math.ceil(geo.horizon_row - 0.5)


@pytest.fixture(scope="module")
def level_scene() -> np.ndarray:
    """The oval's first straight seen from the centreline (rear axle at (20, 0), heading east), float32 RGB."""
    track, field = track_for(TrackSpec(preset="oval"))
    renderer = SceneRenderer(CameraGeometry(LEVEL), track, field)
    out = np.empty((120, 160, 3), dtype=np.float32)
    renderer.render(20.0, 0.0, 0.0, out)
    return out


def test_lane_lines_are_painted_where_the_projection_puts_them(level_scene: np.ndarray) -> None:
    # row 83 (centre 83.5) sees the ground 80 * 1.5 / 23.5 m ahead; the lane lines' centres are 1.875 m either side,
    # at u = 80 -/+ 1.875 * 23.5 / 1.5 = 50.625 and 109.375: columns 50 and 109
    left, right, centre = level_scene[83, 50], level_scene[83, 109], level_scene[83, 80]
    assert left.min() > 200 and right.min() > 200  # paint (236, 236, 226), a little haze
    assert centre.max() < 140  # asphalt (88, 88, 92) with grain
    assert level_scene[83, 46].max() < 140 and level_scene[83, 113].max() < 140  # road beyond the lines


def test_grass_beyond_the_shoulder_and_sky_above_the_horizon(level_scene: np.ndarray) -> None:
    # 4 m left at row 83 is u = 80 - 4 * 23.5 / 1.5 = 17.3: past the shoulder (2.95 m), grass
    r, g, b = level_scene[83, 17]
    assert g > r + 20 and g > b + 20
    sky = level_scene[:60].reshape(-1, 3)
    assert np.all(sky[:, 2] > sky[:, 0])  # blue above the horizon everywhere


def test_render_checks_the_buffer() -> None:
    track, field = track_for(TrackSpec(preset="oval"))
    renderer = SceneRenderer(CameraGeometry(LEVEL), track, field)
    with pytest.raises(ShapeError, match=r"expected a C-contiguous float32 array \(120, 160, 3\), got uint8"):
        renderer.render(0.0, 0.0, 0.0, np.zeros((120, 160, 3), np.uint8))


def test_camera_spec_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"camera\.hfov_deg"):
        CameraSpec(hfov_deg=200.0)
