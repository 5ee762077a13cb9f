"""Benchmark: the simulator's camera render vs a straightforward NumPy renderer, and the physics step.

    python tests/bench/bench_sim.py [--quick] [--json PATH]

Baseline: the same picture computed the obvious way — every frame it casts the pixel rays again
(:class:`CameraGeometry`), finds each ground point's exact lane offset with the analytic nearest-primitive search
(``Track.locate_many``) and composites with ordinary allocating NumPy expressions. ``edge.sim``: rays precomputed
once, bilinear lookup in the precomputed lane field, every operation into buffers made at start-up
(``World.render``, clean scene plus the camera's noise and the uint8 conversion). Both run in this process on the
same poses, alternating. Figures (``--json``): ``render_<w>x<h>_ms`` (median), ``render_<w>x<h>_p99_ms``,
``render_<w>x<h>_speedup_ratio`` (baseline median / ours; > 1 is better), ``world_step_us`` (one 5 ms physics step:
bicycle model + lane measurement).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import _report
import numpy as np
from edge.sim.camera import ASPHALT, GRASS, PAINT, SKY_HORIZON, CameraGeometry
from edge.sim.expert import StanleyController
from edge.sim.scenario import parse_scenario
from edge.sim.world import World


def naive_render(world: World, out: np.ndarray) -> None:
    """The baseline: rays, exact lane offsets and colours recomputed with allocating NumPy every frame."""
    geo = CameraGeometry(world.spec.camera)
    st = world.vehicle.state
    c, s = math.cos(st.yaw), math.sin(st.yaw)
    wx = st.x + geo.x_m * c - geo.y_m * s
    wy = st.y + geo.x_m * s + geo.y_m * c
    lateral, _, _, _ = world.track.locate_many(wx, wy)
    a = np.abs(lateral)
    fp = geo.footprint_m
    road = np.clip((world.track.road_half_width_m - a) / fp + 0.5, 0, 1)[:, None]
    half_line = world.track.spec.line_width_m / 2
    paint = np.clip((half_line - np.abs(a - world.track.lane_width_m / 2 - half_line)) / fp + 0.5, 0, 1)[:, None]
    colour = np.array(GRASS) + road * (np.array(ASPHALT) - np.array(GRASS))
    colour = colour + paint * (np.array(PAINT) - colour)
    haze = (1 - np.exp(-geo.range_m / 450.0))[:, None]
    colour = colour + haze * (np.array(SKY_HORIZON) - colour)
    image = np.empty(out.shape, dtype=np.float64)
    image[: geo.ground_row] = world.scene._sky
    image.reshape(-1, 3)[geo.ground_row * geo.spec.width :] = colour
    image += world.camera_rng.standard_normal(image.shape) * world.spec.camera.noise_sigma
    out[...] = np.clip(image + 0.5, 0, 255).astype(np.uint8)


def timed(fn, repeat: int) -> np.ndarray:
    fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="fewer frames; finishes in well under a minute")
    args = parser.parse_args(argv)
    machine = _report.start()
    repeat = 10 if args.quick else 60
    figures: dict[str, float] = {}
    print(f"{'case':<24}{'median ms':>11}{'p99 ms':>9}{'ratio':>9}")
    for width, height in ((640, 480), (200, 66 * 2), (160, 120)):
        world = World(parse_scenario({"world": {"camera": {"width": width, "height": height}}}).world)
        out = np.empty(world.frame_shape, dtype=np.uint8)
        ours, base = [], []

        expert = StanleyController(world.track)

        def step(world: World = world, expert: StanleyController = expert) -> None:
            world.command(expert.steer(world.vehicle))
            for _ in range(10):
                world.step(0.005)

        for _ in range(repeat):  # alternate, on the same poses
            step()
            base.append(timed(lambda world=world, out=out: naive_render(world, out), 1)[0])
            ours.append(timed(lambda world=world, out=out: world.render(out), 1)[0])
        ours_a, base_a = np.array(ours) * 1e3, np.array(base) * 1e3
        ratio = float(np.median(base_a) / np.median(ours_a))
        name = f"render_{width}x{height}"
        for label, t, r in ((f"{name} naive", base_a, 1.0), (f"{name} edge.sim", ours_a, ratio)):
            print(f"{label:<24}{np.median(t):>11.2f}{np.percentile(t, 99):>9.2f}{r:>9.1f}")
        figures[f"{name}_ms"] = float(np.median(ours_a))
        figures[f"{name}_p99_ms"] = float(np.percentile(ours_a, 99))
        figures[f"{name}_speedup_ratio"] = ratio
    world = World(parse_scenario({"world": {"camera": {"width": 16, "height": 12}}}).world)
    steps = timed(lambda: world.step(0.005), 2000 if args.quick else 20000) * 1e6
    figures["world_step_us"] = float(np.median(steps))
    print(f"{'world step (5 ms)':<24}{np.median(steps) / 1e3:>11.4f}{np.percentile(steps, 99) / 1e3:>9.4f}")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
