"""Track geometry: closure, arc-length parametrization, lane coordinates, the precomputed lane field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edge.sim.track import LaneField, Track, TrackSpec, track_for

from edge.errors import ConfigError


@pytest.fixture(scope="module")
def oval() -> Track:
    return Track(TrackSpec(preset="oval"))


def test_oval_closes_with_lengths_worked_out_by_hand(oval: Track) -> None:
    # straights 80 (solved) + 40 + 80 + 40 (solved) and four quarter circles of radius 30
    assert oval.length_m == pytest.approx(240.0 + 4 * (math.pi / 2) * 30.0, abs=1e-9)
    assert oval.primitives[0, 3] == pytest.approx(80.0)
    assert oval.primitives[6, 3] == pytest.approx(40.0)
    x, y, heading, curvature = oval.point_at(80.0 + 7.5 * math.pi)  # halfway round the first corner
    assert (x, y) == pytest.approx((80.0 + 30.0 * math.sin(math.pi / 4), 30.0 - 30.0 * math.cos(math.pi / 4)))
    assert heading == pytest.approx(math.pi / 4)
    assert curvature == pytest.approx(1 / 30.0)


@pytest.mark.parametrize("preset", ["circuit", "oval"])
def test_centreline_is_closed_and_continuous(preset: str) -> None:
    track = Track(TrackSpec(preset=preset))
    start, end = track.sample(np.array([0.0, track.length_m - 1e-9]))
    assert start[:2] == pytest.approx(end[:2], abs=1e-6)
    s = np.arange(0.0, track.length_m, 0.05)
    pts = track.sample(s)
    steps = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
    assert steps == pytest.approx(0.05, abs=1e-3)  # unit-speed parametrization, no jumps between primitives
    turn = np.diff(np.unwrap(pts[:, 2]))
    assert np.abs(turn).max() < 0.05 * (1 / 22.0) + 1e-9  # heading is continuous (G1)


def test_locate_on_the_first_straight(oval: Track) -> None:
    left = oval.locate(40.0, 5.0)
    assert (left.lateral_m, left.s_m, left.heading_rad, left.curvature) == pytest.approx((5.0, 40.0, 0.0, 0.0))
    right = oval.locate(12.5, -2.0)
    assert (right.lateral_m, right.s_m) == pytest.approx((-2.0, 12.5))


def test_locate_in_a_corner(oval: Track) -> None:
    # 2 m inside the first corner (centre (80, 30), radius 30) at 45 degrees: lateral +2 (the inside is on the left)
    r = 28.0
    point = oval.locate(80.0 + r * math.sin(math.pi / 4), 30.0 - r * math.cos(math.pi / 4))
    assert point.lateral_m == pytest.approx(2.0)
    assert point.s_m == pytest.approx(80.0 + 7.5 * math.pi)


@pytest.mark.parametrize("offset", [-2.5, -0.4, 0.0, 1.3, 6.0])
def test_points_offset_along_the_normal_come_back(offset: float) -> None:
    track = Track(TrackSpec())
    s = np.arange(0.0, track.length_m, 0.7)
    x, y, h, _ = track.sample(s).T
    lat, s_found, _, _ = track.locate_many(x - offset * np.sin(h), y + offset * np.cos(h))
    assert lat == pytest.approx(offset, abs=1e-9)
    ds = np.mod(s_found - s + track.length_m / 2, track.length_m) - track.length_m / 2
    assert np.abs(ds).max() < 1e-6


def test_scalar_and_vectorized_locate_agree(rng: np.random.Generator) -> None:
    track = Track(TrackSpec())
    x0, y0, x1, y1 = track.bounds
    pts = rng.uniform((x0 - 10, y0 - 10), (x1 + 10, y1 + 10), size=(500, 2))
    lat, _, _, k = track.locate_many(pts[:, 0], pts[:, 1])
    for i, (x, y) in enumerate(pts):
        p = track.locate(x, y)
        assert p.lateral_m == pytest.approx(lat[i], abs=1e-9)
        assert p.curvature == k[i]


def test_lane_field_matches_exact_offsets_near_the_road(rng: np.random.Generator) -> None:
    track, field = track_for(TrackSpec())
    s = rng.uniform(0.0, track.length_m, 2000)
    offset = rng.uniform(-4.0, 4.0, 2000)
    x, y, h, _ = track.sample(s).T
    px, py = x - offset * np.sin(h), y + offset * np.cos(h)
    gx = (px - field.origin[0]) / field.resolution_m
    gy = (py - field.origin[1]) / field.resolution_m
    ix, iy = np.floor(gx).astype(int), np.floor(gy).astype(int)
    fx, fy = gx - ix, gy - iy
    f = field.lateral
    bilinear = (f[iy, ix] * (1 - fx) + f[iy, ix + 1] * fx) * (1 - fy) + (
        f[iy + 1, ix] * (1 - fx) + f[iy + 1, ix + 1] * fx
    ) * fy
    assert np.abs(bilinear - offset).max() < 0.01  # 1 cm: lane lines are 15 cm wide


def test_bad_track_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"track\.preset: expected one of"):
        Track(TrackSpec(preset="monza"))
    with pytest.raises(ConfigError, match="lane_width_m"):
        Track(TrackSpec(lane_width_m=0.5))


def test_lane_field_texture_is_world_fixed() -> None:
    track = Track(TrackSpec(preset="oval"))
    a, b = LaneField(track, resolution_m=0.5), LaneField(track, resolution_m=0.5)
    assert np.array_equal(a.texture, b.texture)
