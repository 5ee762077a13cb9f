"""The forward camera: a pinhole over a flat ground plane, rendered with NumPy.

Geometry. The vehicle frame has x forward, y left, z up, origin on the ground under the rear axle. The camera sits
``forward_m`` ahead of the rear axle, ``height_m`` above the ground, pitched down by ``pitch_deg``, with a horizontal
field of view ``hfov_deg``; the focal length is ``f = (width / 2) / tan(hfov / 2)`` pixels and the principal point is
the image centre. Pixel (row r, column c) looks along the centre of that pixel, ``(c + 0.5, r + 0.5)``.

Because the ground is flat and the mount is rigid, the ground point of every pixel below the horizon is fixed in the
vehicle frame: it is computed once (:class:`CameraGeometry`). Per frame the renderer only rotates and translates
those points into the world, samples the track's lane field there (bilinear) and paints asphalt, lane lines (by
distance to the line, anti-aliased over the pixel's ground footprint), grass, distance haze and the sky.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from edge.sim.track import LaneField, Track

from edge.errors import ConfigError, ShapeError

__all__ = ["CameraGeometry", "CameraSpec", "SceneRenderer"]

SKY_TOP = (96.0, 140.0, 205.0)
SKY_HORIZON = (185.0, 200.0, 220.0)
ASPHALT = (88.0, 88.0, 92.0)
GRASS = (66.0, 104.0, 48.0)
PAINT = (236.0, 236.0, 226.0)
ASPHALT_GRAIN = 6.0  # pixel units per unit of texture
GRASS_GRAIN = 14.0
HAZE_M = 450.0  # distance over which the ground fades towards the horizon colour (1 - exp(-d / HAZE_M))
MAX_RAY_M = 3000.0
SKY_DISTANCE_M = 1000.0  # the distance fog treats the sky as being at


@dataclass(frozen=True)
class CameraSpec:
    """Resolution (pixels), horizontal field of view (degrees), mount (m, degrees down) and base sensor noise
    (standard deviation in pixel units)."""

    width: int = 640
    height: int = 480
    hfov_deg: float = 70.0
    height_m: float = 1.4
    pitch_deg: float = 8.0
    forward_m: float = 1.5
    noise_sigma: float = 1.5

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int) and self.width >= 8 and self.height >= 8):
            raise ConfigError(f"camera.width/height: expected integers >= 8, got {self.width!r}x{self.height!r}")
        if not 10.0 <= self.hfov_deg <= 170.0:
            raise ConfigError(f"camera.hfov_deg: expected 10..170 degrees, got {self.hfov_deg!r}")
        if not self.height_m > 0:
            raise ConfigError(f"camera.height_m: expected > 0 m, got {self.height_m!r}")


class CameraGeometry:
    """Per-pixel ground rays of a :class:`CameraSpec`, computed once.

    ``ground_row`` is the first image row whose pixel centres all hit the ground; rows above it are sky. For the
    ``G = (height - ground_row) * width`` ground pixels (row-major), ``x_m``/``y_m`` are their ground points in the
    vehicle frame (m), ``range_m`` the distance from the camera's foot (m), ``footprint_m`` the lateral ground size of
    the pixel (m). ``distance_m`` (H*W) is the fog distance of every pixel (the sky at ``SKY_DISTANCE_M``).
    """

    def __init__(self, spec: CameraSpec) -> None:
        self.spec = spec
        w, h = spec.width, spec.height
        self.focal_px = (w / 2) / math.tan(math.radians(spec.hfov_deg) / 2)
        self.cx, self.cy = w / 2, h / 2
        pitch = math.radians(spec.pitch_deg)
        self._sin, self._cos = math.sin(pitch), math.cos(pitch)
        rows = np.arange(h, dtype=np.float64) + 0.5
        b = (rows - self.cy) / self.focal_px
        down = self._sin + b * self._cos  # -z component of each row's ray direction (per unit camera depth)
        hits = np.nonzero(down > 1e-9)[0]
        self.ground_row = int(hits[0]) if len(hits) else h
        self.horizon_row = self.cy - self.focal_px * math.tan(pitch)  # fractional row of the horizon
        a = (np.arange(w, dtype=np.float64) + 0.5 - self.cx) / self.focal_px
        rb = b[self.ground_row :, None]
        t = np.minimum(spec.height_m / (self._sin + rb * self._cos), MAX_RAY_M)  # camera depth of the ground point
        forward = t * (self._cos - rb * self._sin)
        lateral = -t * a[None, :]
        self.x_m = (spec.forward_m + forward + 0 * lateral).astype(np.float32).ravel()
        self.y_m = lateral.astype(np.float32).ravel()
        self.range_m = np.hypot(forward + 0 * lateral, lateral).astype(np.float32).ravel()
        self.footprint_m = (
            np.maximum(np.broadcast_to(t / self.focal_px, lateral.shape), 0.01).astype(np.float32).ravel()
        )
        dist = np.full((h, w), SKY_DISTANCE_M, dtype=np.float32)
        dist[self.ground_row :] = np.minimum(self.range_m.reshape(-1, w), SKY_DISTANCE_M)
        self.distance_m = dist.ravel()

    @property
    def ground_pixels(self) -> int:
        return len(self.x_m)

    def project(self, x_m: float, y_m: float, z_m: float = 0.0) -> tuple[float, float]:
        """Image (column, row) in pixels (fractional; pixel centres at +0.5) of a point in the vehicle frame (m)."""
        px = x_m - self.spec.forward_m
        pz = z_m - self.spec.height_m
        xc = -y_m
        yc = -px * self._sin - pz * self._cos
        zc = px * self._cos - pz * self._sin
        if zc <= 0:
            raise ValueError(f"project: expected a point in front of the camera, got depth {zc:.3f} m")
        return self.cx + self.focal_px * xc / zc, self.cy + self.focal_px * yc / zc


class SceneRenderer:
    """Renders the clean scene (no environment effects) into a caller-owned float32 (H, W, 3) RGB buffer.

    All per-frame work buffers are allocated here, once; :meth:`render` allocates nothing.
    """

    def __init__(self, geometry: CameraGeometry, track: Track, field: LaneField) -> None:
        self.geometry, self.track, self.field = geometry, track, field
        g = geometry.ground_pixels
        self._f32 = {name: np.empty(g, dtype=np.float32) for name in ("gx", "gy", "fx", "fy", "tmp", "d", "e", "tex")}
        self._idx = {name: np.empty(g, dtype=np.intp) for name in ("i", "j")}
        self._lat = field.lateral.ravel()
        self._texture = field.texture.ravel()
        spec = geometry.spec
        w = spec.width
        # the sky: a vertical gradient from the horizon colour to the top colour, rows above the ground
        rows = np.arange(geometry.ground_row, dtype=np.float64) + 0.5
        elevation = np.clip((geometry.horizon_row - rows) / max(geometry.horizon_row, 1.0), 0.0, 1.0)
        top, hor = np.array(SKY_TOP), np.array(SKY_HORIZON)
        sky = hor[None, :] + np.sqrt(elevation)[:, None] * (top - hor)[None, :]
        self._sky = np.ascontiguousarray(np.broadcast_to(sky[:, None, :], (geometry.ground_row, w, 3)), np.float32)
        self._haze = (1.0 - np.exp(-geometry.range_m / HAZE_M)).astype(np.float32)
        self._inv_fp = (1.0 / geometry.footprint_m).astype(np.float32)
        half_lane = track.lane_width_m / 2
        line_half = track.spec.line_width_m / 2
        # lane-line coverage = clip((line_half - | |d| - line_centre |) / footprint + 0.5, 0, 1)
        self._line_centre = np.float32(half_lane + line_half)
        self._line_half = np.float32(line_half)
        self._road_half = np.float32(track.road_half_width_m)
        self._horizon_colour = np.array(SKY_HORIZON, dtype=np.float32)

    def render(self, x_m: float, y_m: float, yaw_rad: float, out: np.ndarray) -> None:
        """Render the scene seen from a rear axle at (x_m, y_m) heading ``yaw_rad`` into ``out`` (float32 (H, W, 3),
        RGB in pixel units 0..255; caller-owned)."""
        geo, fld = self.geometry, self.field
        spec = geo.spec
        if out.shape != (spec.height, spec.width, 3) or out.dtype != np.float32 or not out.flags.c_contiguous:
            expected = (spec.height, spec.width, 3)
            raise ShapeError(f"render: expected a C-contiguous float32 array {expected}, got {out.dtype} {out.shape}")
        b, ix = self._f32, self._idx
        res = fld.resolution_m
        c, s = math.cos(yaw_rad) / res, math.sin(yaw_rad) / res
        ox, oy = float(x_m - fld.origin[0]) / res, float(y_m - fld.origin[1]) / res  # Python floats: no upcast
        gx, gy, fx, fy, tmp, d, e = b["gx"], b["gy"], b["fx"], b["fy"], b["tmp"], b["d"], b["e"]
        # texel coordinates of every ground pixel: rotate the vehicle-frame points by yaw, translate
        np.multiply(geo.x_m, c, out=gx)
        np.multiply(geo.y_m, s, out=tmp)
        np.subtract(gx, tmp, out=gx)
        np.add(gx, ox, out=gx)
        np.multiply(geo.x_m, s, out=gy)
        np.multiply(geo.y_m, c, out=tmp)
        np.add(gy, tmp, out=gy)
        np.add(gy, oy, out=gy)
        np.clip(gx, 0.0, fld.nx - 1.001, out=gx)
        np.clip(gy, 0.0, fld.ny - 1.001, out=gy)
        np.floor(gx, out=fx)
        np.floor(gy, out=fy)
        i, j = ix["i"], ix["j"]
        np.copyto(i, fy, casting="unsafe")
        np.multiply(i, fld.nx, out=i)
        np.copyto(j, fx, casting="unsafe")
        np.add(i, j, out=i)  # flat index of the lower-left texel
        np.subtract(gx, fx, out=fx)  # fractional parts
        np.subtract(gy, fy, out=fy)
        # bilinear lateral offset d
        lat = self._lat
        np.take(self._texture, i, out=b["tex"], mode="clip")
        np.take(lat, i, out=d, mode="clip")
        np.add(i, 1, out=j)
        np.take(lat, j, out=tmp, mode="clip")
        np.subtract(tmp, d, out=tmp)
        np.multiply(tmp, fx, out=tmp)
        np.add(d, tmp, out=d)  # bottom edge
        np.add(i, fld.nx, out=i)
        np.take(lat, i, out=e, mode="clip")
        np.add(i, 1, out=j)
        np.take(lat, j, out=tmp, mode="clip")
        np.subtract(tmp, e, out=tmp)
        np.multiply(tmp, fx, out=tmp)
        np.add(e, tmp, out=e)  # top edge
        np.subtract(e, d, out=e)
        np.multiply(e, fy, out=e)
        np.add(d, e, out=d)
        np.abs(d, out=d)
        # coverage of the road surface (e) and of paint (d), anti-aliased over the footprint
        np.subtract(self._road_half, d, out=e)
        np.multiply(e, self._inv_fp, out=e)
        np.add(e, 0.5, out=e)
        np.clip(e, 0.0, 1.0, out=e)
        np.subtract(d, self._line_centre, out=d)
        np.abs(d, out=d)
        np.subtract(self._line_half, d, out=d)
        np.multiply(d, self._inv_fp, out=d)
        np.add(d, 0.5, out=d)
        np.clip(d, 0.0, 1.0, out=d)
        grain = gx  # reuse: texture amplitude per pixel, grass grain on grass, asphalt grain on the road
        np.multiply(e, ASPHALT_GRAIN - GRASS_GRAIN, out=grain)
        np.add(grain, GRASS_GRAIN, out=grain)
        np.multiply(grain, b["tex"], out=grain)
        flat = out.reshape(-1, 3)
        out[: geo.ground_row] = self._sky
        ground = flat[geo.ground_row * spec.width :]
        for ch in range(3):
            col = gy
            np.multiply(e, ASPHALT[ch] - GRASS[ch], out=col)
            np.add(col, GRASS[ch], out=col)
            np.add(col, grain, out=col)
            np.subtract(PAINT[ch], col, out=tmp)  # paint over
            np.multiply(tmp, d, out=tmp)
            np.add(col, tmp, out=col)
            np.subtract(self._horizon_colour[ch], col, out=tmp)  # distance haze
            np.multiply(tmp, self._haze, out=tmp)
            np.add(col, tmp, out=col)
            ground[:, ch] = col
