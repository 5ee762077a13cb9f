"""Regenerate ``examples/lane.mp4``: the shipped lane model's view of the simulator's nominal circuit.

The simulator's expert driver (a Stanley controller on ground truth) drives the ``nominal`` scenario; every camera
frame (20 Hz) is cropped below the horizon and resized to the lane model's input (66×200, the loop's own bilinear
kernel: :func:`edge.sim.dataset.collect`), then encoded as H.264 in MP4 with PyAV. The expert's steering angle per
frame goes into ``lane_steering.csv`` beside it (what a good model should answer).

    python examples/render_video.py [--frames 200] [--seed 3] [--crf 20]

Needs the ``sim`` extra and PyAV: ``pip install 'edge[sim]' av``.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
from edge.sim.dataset import collect
from edge.sim.scenario import builtin_scenario

HERE = Path(__file__).resolve().parent
FPS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames to render (default %(default)s: 10 s)")
    parser.add_argument("--seed", type=int, default=3, help="start position and perturbations (default %(default)s)")
    parser.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better (default %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE / "lane.mp4", help="the video (default %(default)s)")
    args = parser.parse_args()
    data = collect(builtin_scenario("nominal"), args.frames, seed=args.seed, perturb_rad=0.0)
    frames = data["frames"]
    _n, h, w, _c = frames.shape
    with av.open(str(args.out), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": str(args.crf), "preset": "veryslow"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    labels = args.out.with_name("lane_steering.csv")
    rows = [f"{i},{t:.3f},{s:.6f}" for i, (t, s) in enumerate(zip(data["t_s"], data["steering_rad"], strict=True))]
    labels.write_text("frame,t_s,expert_steering_rad\n" + "\n".join(rows) + "\n")
    print(f"{args.out}: {len(frames)} frames {w}x{h} at {FPS} fps, {args.out.stat().st_size} bytes; labels {labels}")


if __name__ == "__main__":
    main()
