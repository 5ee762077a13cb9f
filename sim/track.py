"""A closed track of straights and circular arcs, its lane geometry and a precomputed lane-distance field.

The track is a centreline made of primitives (straight lines and arcs of constant curvature) laid end to end by a
turtle; two straights are marked ``auto`` and their lengths are solved so the loop closes. The vehicle drives on the
centreline; the lane is ``lane_width_m`` wide, with a painted line at each edge (signed lateral offset
``±lane_width_m / 2``), asphalt shoulders out to ``road_half_width_m`` and grass beyond.

All lengths are metres, angles radians, curvature 1/m (positive turns left). Lateral offsets are signed, positive to
the left of the direction of travel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edge.errors import ConfigError

__all__ = ["PRESETS", "LaneField", "LanePoint", "Track", "TrackSpec", "track_for"]

# A preset is a list of primitives: ("straight", length_m or "auto") or ("arc", radius_m, turn_deg) (left > 0).
PRESETS: dict[str, tuple[tuple, ...]] = {
    # left-hand corners of four radii and a right-left S-bend on the top straight
    "circuit": (
        ("straight", "auto"),
        ("arc", 30.0, 90.0),
        ("straight", 30.0),
        ("arc", 22.0, 90.0),
        ("straight", 15.0),
        ("arc", 40.0, -30.0),
        ("arc", 40.0, 30.0),
        ("straight", 20.0),
        ("arc", 26.0, 90.0),
        ("straight", "auto"),
        ("arc", 45.0, 90.0),
    ),
    # a plain rounded rectangle
    "oval": (
        ("straight", "auto"),
        ("arc", 30.0, 90.0),
        ("straight", 40.0),
        ("arc", 30.0, 90.0),
        ("straight", 80.0),
        ("arc", 30.0, 90.0),
        ("straight", "auto"),
        ("arc", 30.0, 90.0),
    ),
}


@dataclass(frozen=True)
class TrackSpec:
    """What a scenario says about the track: a preset name and the lane geometry (m)."""

    preset: str = "circuit"
    lane_width_m: float = 3.6
    line_width_m: float = 0.15
    shoulder_m: float = 1.0


@dataclass(frozen=True)
class LanePoint:
    """Where a point is relative to the lane: signed lateral offset (m, left > 0), progress along the centreline
    ``s_m`` (0 ≤ s < length), the centreline heading there (rad) and its curvature (1/m)."""

    lateral_m: float
    s_m: float
    heading_rad: float
    curvature: float


class Track:
    """The centreline as primitives, with vectorized nearest-point queries (``locate``) and ``point_at(s)``."""

    def __init__(self, spec: TrackSpec) -> None:
        if spec.preset not in PRESETS:
            raise ConfigError(f"track.preset: expected one of {sorted(PRESETS)}, got {spec.preset!r}")
        if not spec.lane_width_m > 1.0:
            raise ConfigError(f"track.lane_width_m: expected > 1.0 m, got {spec.lane_width_m!r}")
        self.spec = spec
        self.lane_width_m = float(spec.lane_width_m)
        self.road_half_width_m = self.lane_width_m / 2 + spec.line_width_m + spec.shoulder_m
        prims = _close(PRESETS[spec.preset])
        # per primitive: start x, y, heading, length, curvature, s at start
        self._p = np.array(prims, dtype=np.float64)
        self._rows = [tuple(float(v) for v in row) for row in prims]
        self.length_m = float(self._p[:, 5][-1] + self._p[:, 3][-1])
        pts = self.sample(np.arange(0.0, self.length_m, 1.0))
        self.bounds = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))

    @property
    def primitives(self) -> np.ndarray:
        """(P, 6) float64: start x, start y, start heading, length, curvature, start s (a copy)."""
        return self._p.copy()

    def point_at(self, s_m: float) -> tuple[float, float, float, float]:
        """(x, y, heading, curvature) of the centreline at progress ``s_m`` (wraps around the lap)."""
        x, y, h, k = self.sample(np.array([s_m], dtype=np.float64))[0]
        return float(x), float(y), float(h), float(k)

    def sample(self, s: np.ndarray) -> np.ndarray:
        """(N, 4) array of x, y, heading, curvature at the progress values ``s`` (m, wrapped into one lap)."""
        s = np.mod(np.asarray(s, dtype=np.float64), self.length_m)
        i = np.clip(np.searchsorted(self._p[:, 5], s, side="right") - 1, 0, len(self._p) - 1)
        x0, y0, h0, _, k, s0 = self._p[i].T
        u = s - s0
        h = h0 + k * u
        straight = np.abs(k) < 1e-12
        ks = np.where(straight, 1.0, k)
        x = np.where(straight, x0 + u * np.cos(h0), x0 + (np.sin(h) - np.sin(h0)) / ks)
        y = np.where(straight, y0 + u * np.sin(h0), y0 - (np.cos(h) - np.cos(h0)) / ks)
        return np.stack([x, y, np.mod(h, 2 * np.pi), k], axis=1)

    def locate_many(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nearest centreline point of every (x, y): (signed lateral m, s m, heading rad, curvature 1/m) arrays."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        y = np.asarray(y, dtype=np.float64)[..., None]
        x0, y0, h0, length, k, s0 = self._p.T
        c, sn = np.cos(h0), np.sin(h0)
        straight = np.abs(k) < 1e-12
        # straights: along-track and lateral coordinates in the primitive's frame
        dx, dy = x - x0, y - y0
        along = dx * c + dy * sn
        lat = -dx * sn + dy * c
        t = np.clip(along, 0.0, length)
        dist_s = np.hypot(along - t, lat)
        # arcs: centre on the left for k > 0, on the right for k < 0
        ks = np.where(straight, 1.0, k)
        radius = 1.0 / np.abs(ks)
        cx, cy = x0 - sn / ks, y0 + c / ks
        rx, ry = x - cx, y - cy
        rho = np.hypot(rx, ry)
        phi0 = np.arctan2(y0 - cy, x0 - cx)
        phi = np.arctan2(ry, rx)
        theta = np.mod(np.where(ks > 0, phi - phi0, phi0 - phi), 2 * np.pi)
        sweep = length / radius
        # beyond the arc's ends: clamp to the nearer end (only far from the track does this choose the primitive)
        past = theta > sweep
        to_end = np.where(theta - sweep < 2 * np.pi - theta, sweep, 0.0)
        theta_c = np.where(past, to_end, theta)
        px = cx + radius * np.cos(np.where(ks > 0, phi0 + theta_c, phi0 - theta_c))
        py = cy + radius * np.sin(np.where(ks > 0, phi0 + theta_c, phi0 - theta_c))
        dist_a = np.hypot(x - px, y - py)
        lat_a = np.where(past, np.sign((radius - rho) * np.sign(ks)) * dist_a, (radius - rho) * np.sign(ks))
        along_a = theta_c * radius
        dist = np.where(straight, dist_s, dist_a)
        lateral = np.where(straight, lat, lat_a)
        u = np.where(straight, t, along_a)
        best = np.argmin(dist, axis=-1)[..., None]
        pick = lambda a: np.take_along_axis(np.broadcast_to(a, dist.shape), best, axis=-1)[..., 0]  # noqa: E731
        u_b, k_b = pick(u), pick(k)
        s = np.mod(pick(s0) + u_b, self.length_m)
        heading = np.mod(pick(h0) + k_b * u_b, 2 * np.pi)
        return pick(lateral), s, heading, k_b

    def locate(self, x: float, y: float) -> LanePoint:
        """The lane coordinates of one point (see :class:`LanePoint`): the same maths as :meth:`locate_many`, in
        scalar Python (one point costs microseconds, not the overhead of a dozen small NumPy calls)."""
        best = (math.inf, 0.0, 0.0, 0.0, 0.0)
        tau = 2 * math.pi
        for x0, y0, h0, length, k, s0 in self._rows:
            c, sn = math.cos(h0), math.sin(h0)
            if k == 0.0:
                along = (x - x0) * c + (y - y0) * sn
                lat = -(x - x0) * sn + (y - y0) * c
                u = min(max(along, 0.0), length)
                dist = math.hypot(along - u, lat)
            else:
                radius = 1.0 / abs(k)
                cx, cy = x0 - sn / k, y0 + c / k
                rho = math.hypot(x - cx, y - cy)
                phi0 = math.atan2(y0 - cy, x0 - cx)
                phi = math.atan2(y - cy, x - cx)
                theta = ((phi - phi0) if k > 0 else (phi0 - phi)) % tau
                sweep = length / radius
                if theta <= sweep:
                    dist, lat = abs(radius - rho), (radius - rho) * math.copysign(1.0, k)
                else:
                    theta = sweep if theta - sweep < tau - theta else 0.0
                    end = phi0 + theta if k > 0 else phi0 - theta
                    dist = math.hypot(x - cx - radius * math.cos(end), y - cy - radius * math.sin(end))
                    lat = math.copysign(dist, (radius - rho) * k)
                u = theta * radius
            if dist < best[0]:
                best = (dist, lat, s0 + u, h0 + k * u, k)
        _, lat, s, heading, k = best
        return LanePoint(lat, s % self.length_m, heading % tau, k)


def _close(entries: tuple[tuple, ...]) -> list[tuple[float, ...]]:
    """Lay the primitives end to end from the origin (heading 0) and solve the two ``auto`` straights so the loop
    closes; returns (x, y, heading, length, curvature, s0) per primitive."""
    autos = [i for i, e in enumerate(entries) if e[0] == "straight" and e[1] == "auto"]
    if len(autos) != 2:
        raise ConfigError(f"track preset: expected exactly 2 'auto' straights, got {len(autos)}")
    turn = sum(math.radians(e[2]) for e in entries if e[0] == "arc")
    if abs(turn - 2 * math.pi) > 1e-9:
        raise ConfigError(f"track preset: expected the arcs to turn 360 degrees in all, got {math.degrees(turn)}")

    def walk(lengths: dict[int, float]) -> tuple[list[tuple[float, ...]], float, float, dict[int, float]]:
        x = y = h = s = 0.0
        out, dirs = [], {}
        for i, e in enumerate(entries):
            if e[0] == "straight":
                length, k = (lengths[i] if i in lengths else float(e[1])), 0.0
                dirs[i] = h
                out.append((x, y, h, length, k, s))
                x, y = x + length * math.cos(h), y + length * math.sin(h)
            else:
                radius, turn_rad = float(e[1]), math.radians(e[2])
                k = math.copysign(1.0 / radius, turn_rad)
                length = abs(turn_rad) * radius
                out.append((x, y, h, length, k, s))
                x, y = x + (math.sin(h + turn_rad) - math.sin(h)) / k, y - (math.cos(h + turn_rad) - math.cos(h)) / k
                h += turn_rad
            s += length
        return out, x, y, dirs

    _, gx, gy, dirs = walk(dict.fromkeys(autos, 0.0))
    h1, h2 = dirs[autos[0]], dirs[autos[1]]
    a = np.array([[math.cos(h1), math.cos(h2)], [math.sin(h1), math.sin(h2)]], dtype=np.float64)
    try:
        lengths = np.linalg.solve(a, [-gx, -gy])
    except np.linalg.LinAlgError:
        raise ConfigError("track preset: the two 'auto' straights are parallel, the loop cannot be closed") from None
    if np.any(lengths < 1.0):
        raise ConfigError(f"track preset: closing the loop needs straights of {lengths.round(2).tolist()} m (< 1 m)")
    prims, _, _, _ = walk({autos[0]: float(lengths[0]), autos[1]: float(lengths[1])})
    return prims


class LaneField:
    """The signed lateral offset from the centreline sampled on a regular grid (float32, m, clipped to ±``clip_m``)
    and a world-fixed asphalt texture on the same grid: what the camera samples per pixel.

    ``origin`` is the world (x, y) of texel (0, 0); texel (iy, ix) is at ``origin + (ix, iy) * resolution_m``.
    """

    def __init__(self, track: Track, resolution_m: float = 0.2, margin_m: float = 40.0, clip_m: float = 30.0) -> None:
        x_min, y_min, x_max, y_max = track.bounds
        self.resolution_m = float(resolution_m)
        self.origin = (float(x_min - margin_m), float(y_min - margin_m))
        self.nx = math.ceil((x_max - x_min + 2 * margin_m) / resolution_m) + 1
        self.ny = math.ceil((y_max - y_min + 2 * margin_m) / resolution_m) + 1
        xs = self.origin[0] + np.arange(self.nx) * resolution_m
        self.lateral = np.empty((self.ny, self.nx), dtype=np.float32)
        for row in range(0, self.ny, 64):  # in bands, to bound the temporaries
            ys = self.origin[1] + np.arange(row, min(row + 64, self.ny)) * resolution_m
            gx, gy = np.meshgrid(xs, ys)
            lat, _, _, _ = track.locate_many(gx, gy)
            self.lateral[row : row + len(ys)] = np.clip(lat, -clip_m, clip_m)
        # asphalt grain: seeded white noise, lightly smoothed, unit-ish amplitude (fixed seed: part of the world)
        grain = np.random.default_rng(0x5EED).standard_normal((self.ny, self.nx)).astype(np.float32)
        grain = (grain + np.roll(grain, 1, 0) + np.roll(grain, 1, 1) + np.roll(grain, (1, 1), (0, 1))) * 0.5
        self.texture = grain


@lru_cache(maxsize=8)
def track_for(spec: TrackSpec) -> tuple[Track, LaneField]:
    """The track and its lane field for ``spec`` (built once per spec and shared: both are read-only after build)."""
    track = Track(spec)
    return track, LaneField(track)
