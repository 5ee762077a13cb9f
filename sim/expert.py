"""The expert driver: a Stanley controller on the ground-truth lane geometry.

Stanley (Hoffmann et al., 2007; the Stanford DARPA Grand Challenge car) steers the front axle onto the path:
``steer = heading_error + atan(gain * cross_track_error / (softening + speed))``, with the cross-track error taken at
the front axle. On a circle of radius R its heading term alone gives the exact steady-state angle
(``asin(L / R)`` between the vehicle axis and the path tangent at the front axle equals ``atan(L / sqrt(R² - L²))``),
so it needs no curvature feed-forward and holds the lane through corners of any radius the track has.
"""

from __future__ import annotations

import math

from edge.sim.track import Track
from edge.sim.vehicle import Vehicle

__all__ = ["StanleyController"]


class StanleyController:
    """Steering (rad, left > 0) for a :class:`Vehicle` on a :class:`Track`, from ground truth.

    ``gain`` (1/s) weighs the cross-track error, ``softening_mps`` keeps the gain finite at low speed,
    ``damping`` (s) adds yaw-rate damping against the measured yaw rate's mismatch with the path's.
    """

    def __init__(self, track: Track, gain: float = 1.5, softening_mps: float = 1.0, damping: float = 0.1) -> None:
        self.track = track
        self.gain = gain
        self.softening_mps = softening_mps
        self.damping = damping

    def steer(self, vehicle: Vehicle) -> float:
        st = vehicle.state
        fx, fy = vehicle.point_ahead(vehicle.spec.wheelbase_m)
        lane = self.track.locate(fx, fy)
        heading_error = (lane.heading_rad - st.yaw + math.pi) % (2 * math.pi) - math.pi
        cross = math.atan2(-self.gain * lane.lateral_m, self.softening_mps + st.speed)
        yaw_rate_error = st.speed * lane.curvature - vehicle.yaw_rate
        steer = heading_error + cross + self.damping * yaw_rate_error
        limit = vehicle.spec.max_steer_rad
        return min(max(steer, -limit), limit)
