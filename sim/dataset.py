"""Training data for the lane-keeping model: drive with the expert, record model-sized frames and steering labels.

The expert (:class:`~edge.sim.expert.StanleyController`) drives the scenario's world; from time to time a seeded
perturbation adds a steering offset for a short while, so the car drifts off the centreline and the expert's
recovery is recorded too (the label is always the expert's clean command at that state, never the perturbed one —
as in NVIDIA's PilotNet data, where shifted views are labelled with the correction). Each recorded frame is the
camera frame below the horizon (``crop_top`` onwards), resized to the model input (66×200 by default) with the
loop's own preprocessing kernel (bilinear, OpenCV ``INTER_LINEAR`` convention), so training sees exactly the pixels
the deployed loop will feed the model.

``python -m edge.sim.dataset SCENARIO --frames N --out data.npz [--seed S]`` writes an ``.npz`` with ``frames``
(uint8 (N, h, w, 3) RGB), ``steering_rad`` (float32 (N,)), ``lateral_m``, ``heading_error_rad``, ``speed_mps``,
``t_s``, ``perturbed`` (bool), ``pixel_stats`` (float64 (N, 2, 3): per-channel mean and std of the crop, as the
loop's preprocessing pass reports them) and ``crop`` ((top, bottom) rows of the camera frame).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from edge.sim.expert import StanleyController
from edge.sim.scenario import Scenario, builtin_scenario, builtin_scenarios, load_scenario
from edge.sim.simulation import Simulation
from edge.sim.track import track_for

from edge.errors import ConfigError
from edge.kernels import preprocess_frame
from edge.kernels.tables import channel_map, resize_plan

__all__ = ["FrameShrinker", "collect", "main"]


class FrameShrinker:
    """Crops a camera frame to the rows ``[top, height)`` and resizes it to ``(h, w)`` uint8 RGB, with the
    preprocessing kernel; the output array is caller-owned."""

    def __init__(self, frame_hw: tuple[int, int], top: int, out_hw: tuple[int, int]) -> None:
        height, width = frame_hw
        if not 0 <= top < height:
            raise ConfigError(f"crop top: expected a row in [0, {height}), got {top}")
        self.top = top
        self.crop = (top, height)
        self._plan = resize_plan((height - top, width), out_hw)
        self._lut = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
        self._map = channel_map("RGB", "RGB")
        self.stats = np.zeros((2, 3), dtype=np.float64)  # per-channel mean, std of the last crop (pixel units)

    def __call__(self, frame: np.ndarray, out: np.ndarray) -> None:
        preprocess_frame(frame[self.top :], out, "NHWC", self._lut, self._plan, self._map, self.stats)


def collect(
    scenario: Scenario,
    frames: int,
    *,
    input_hw: tuple[int, int] = (66, 200),
    seed: int = 0,
    perturb_every_s: float = 4.0,
    perturb_rad: float = 0.12,
    perturb_s: tuple[float, float] = (0.3, 1.2),
    start_s_m: float | None = None,
) -> dict[str, np.ndarray]:
    """Drive ``scenario`` with the expert and record ``frames`` camera frames (one per loop period).

    Perturbations start at random with a mean interval of ``perturb_every_s`` (s), add a steering offset drawn from
    N(0, ``perturb_rad``) (rad) and last a uniform ``perturb_s`` (s). ``seed`` drives the perturbations and, unless
    ``start_s_m`` is given, where on the track the car starts; the world's own noise comes from the scenario seed.
    """
    if frames < 1:
        raise ConfigError(f"frames: expected >= 1, got {frames}")
    rng = np.random.default_rng(seed)
    captured: list[tuple[np.ndarray, int]] = []
    if start_s_m is None:
        start_s_m = float(rng.uniform(0.0, track_for(scenario.world.track)[0].length_m))
    sim = Simulation(scenario, camera_sink=lambda f, t: captured.append((f, t)), contention=False, start_s_m=start_s_m)
    world = sim.world
    expert = StanleyController(world.track)
    shrink = FrameShrinker(world.frame_shape[:2], world.geometry.ground_row, input_hw)
    out = {
        "frames": np.zeros((frames, *input_hw, 3), dtype=np.uint8),
        "steering_rad": np.zeros(frames, dtype=np.float32),
        "lateral_m": np.zeros(frames, dtype=np.float32),
        "heading_error_rad": np.zeros(frames, dtype=np.float32),
        "speed_mps": np.zeros(frames, dtype=np.float32),
        "t_s": np.zeros(frames, dtype=np.float64),
        "perturbed": np.zeros(frames, dtype=bool),
        "pixel_stats": np.zeros((frames, 2, 3), dtype=np.float64),
    }
    offset, offset_until = 0.0, -1.0
    dt_s = sim.camera_period_ns * 1e-9
    n = 0
    try:
        while n < frames:
            t = world.t_s
            if t >= offset_until:
                offset = 0.0
                if rng.random() < dt_s / perturb_every_s:
                    offset = float(rng.normal(0.0, perturb_rad))
                    offset_until = t + float(rng.uniform(*perturb_s))
            label = expert.steer(world.vehicle)
            sim.actuate(label + offset, scenario.world.speed_mps)
            captured.clear()
            sim.advance_to(sim.start_ns + (sim.time_ns // sim.camera_period_ns + 1) * sim.camera_period_ns)
            for frame, _ in captured:  # the frame(s) the camera delivered during this period
                if n == frames:
                    break
                shrink(frame, out["frames"][n])
                out["pixel_stats"][n] = shrink.stats
                out["steering_rad"][n] = expert.steer(world.vehicle)
                out["lateral_m"][n] = world.lane.lateral_m
                out["heading_error_rad"][n] = world.heading_error_rad
                out["speed_mps"][n] = world.vehicle.state.speed
                out["t_s"][n] = world.t_s
                out["perturbed"][n] = offset != 0.0
                n += 1
    finally:
        sim.close()
    out["crop"] = np.array(shrink.crop, dtype=np.int32)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.sim.dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help=f"a scenario file or a built-in name ({', '.join(builtin_scenarios())})")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="66x200", help="model input HxW (default 66x200)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        scenario = (
            load_scenario(args.scenario) if Path(args.scenario).suffix == ".toml" else builtin_scenario(args.scenario)
        )
        h, w = (int(v) for v in args.size.lower().split("x"))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = collect(scenario, args.frames, input_hw=(h, w), seed=args.seed)
    np.savez_compressed(args.out, **data)
    err = np.abs(data["lateral_m"])
    print(
        f"{args.frames} frames {h}x{w} → {args.out}: steering {math.degrees(data['steering_rad'].min()):.1f}.."
        f"{math.degrees(data['steering_rad'].max()):.1f} deg, |lateral| max {err.max():.2f} m, "
        f"perturbed {data['perturbed'].mean():.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
