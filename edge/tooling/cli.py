"""``edge model quantize`` and ``edge model profile``: the CLI faces of :mod:`edge.tooling.toolchain`.

Frames come from an ``.npz`` with ``frames`` (uint8 (N, H, W, 3) RGB at the model's input size) and, for the
profile, ``pixel_stats`` (float (N, 2, 3): the camera frames' per-channel mean and std) — what
``python -m edge.sim.dataset`` writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.errors import ConfigError

__all__ = ["register_model_actions"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,0.5,0.5, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected 1 or 3 numbers, got {text!r}")
    return values


def _load(path: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise ConfigError(f"{path}: expected arrays {list(keys)}, got {data.files}")
            return {k: data[k] for k in keys}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: expected an .npz of frames, got {exc}") from None


def _quantize(args: argparse.Namespace) -> int:
    from edge.tooling.toolchain import quantize_u8s8

    frames = _load(args.calibration, ("frames",))["frames"]
    if args.limit and len(frames) > args.limit:
        frames = frames[:: len(frames) // args.limit][: args.limit]
    out = quantize_u8s8(args.model, args.out, frames, mean=args.mean, std=args.std, uint8_input=not args.float_input)
    print(f"quantized {args.model} -> {out} (U8S8 QDQ, {len(frames)} calibration frames)")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from edge.drift.profile import save_profile
    from edge.models import load_model
    from edge.tooling.toolchain import reference_profile

    data = _load(args.frames, ("frames", "pixel_stats"))
    from edge.models.shapes import parse_shape_items

    model = load_model(args.model, warmup=0, shapes=parse_shape_items(args.shape))
    pre = dict(model.package.manifest.get("preprocess", {})) if getattr(model, "package", None) else {}
    mean = args.mean or tuple(pre.get("mean", (0.0, 0.0, 0.0)))
    std = args.std or tuple(pre.get("std", (1.0, 1.0, 1.0)))
    profile = reference_profile(
        model,
        data["frames"],
        data["pixel_stats"],
        mean=mean,
        std=std,
        bins=args.bins,
        outputs=args.outputs,
        predictions=args.predictions,
    )
    save_profile(profile, args.out)
    n = len(data["frames"])
    print(f"profile {profile.profile_id}: {len(profile.features)} features on {n} frames -> {args.out}")
    return 0


def register_model_actions(sub: argparse._SubParsersAction) -> None:
    """Add ``quantize`` and ``profile`` to ``edge model``'s actions."""
    p = sub.add_parser("quantize", help="calibrate and quantize a float ONNX model to U8S8 QDQ")
    p.add_argument("model", type=Path, help="float .onnx model (one NCHW image input)")
    p.add_argument("-o", "--out", required=True, type=Path, help="the quantized .onnx")
    p.add_argument("--calibration", required=True, help=".npz with frames (uint8 N×H×W×3 at the model's input size)")
    p.add_argument("--mean", type=_floats, default=(0.0, 0.0, 0.0), help="preprocessing mean (per channel)")
    p.add_argument("--std", type=_floats, default=(1.0, 1.0, 1.0), help="preprocessing std (per channel)")
    p.add_argument("--limit", type=int, default=200, help="calibration frames used at most (evenly spaced)")
    p.add_argument("--float-input", action="store_true", help="keep the float input (default: a uint8 input)")
    p.set_defaults(handler=_quantize)

    p = sub.add_parser("profile", help="compute a model's drift reference profile on held-out frames")
    p.add_argument("model", help="model or package (its [preprocess] gives mean and std)")
    p.add_argument("--frames", required=True, help=".npz with frames and pixel_stats (python -m edge.sim.dataset)")
    p.add_argument("-o", "--out", required=True, type=Path, help="profile JSON to write")
    p.add_argument("--mean", type=_floats, default=None)
    p.add_argument("--std", type=_floats, default=None)
    p.add_argument("--bins", type=int, default=13)
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="shape of a dynamic input, e.g. input=1x512 (repeatable)")  # fmt: skip
    p.add_argument("--outputs", action=argparse.BooleanOptionalAction, default=False,
                   help="also profile the model's output values (quantile bins)")  # fmt: skip
    p.add_argument("--predictions", action=argparse.BooleanOptionalAction, default=False,
                   help="the first output is a classification output: store its reference top-1 class counts "
                        "(the collector's chi-square on the live class mix)")  # fmt: skip
    p.set_defaults(handler=_profile)
    register_tflite_action(sub)


def _tflite(args: argparse.Namespace) -> int:
    from edge.tooling.tflite_export import float_onnx_to_tflite, qdq_onnx_to_tflite

    convert = float_onnx_to_tflite if args.float else qdq_onnx_to_tflite
    out = convert(args.model, args.out)
    kind = "float32, float32 NHWC input" if args.float else "full int8, int8 NHWC input"
    print(f"converted {args.model} -> {out} ({kind}; package it with --layout NHWC)")
    return 0


def register_tflite_action(sub: argparse._SubParsersAction) -> None:
    """Add ``tflite`` (ONNX → TFLite, :mod:`edge.tooling.tflite_export`) to ``edge model``'s actions."""
    p = sub.add_parser("tflite", help="convert a U8S8 QDQ ONNX model (edge model quantize) to a full-int8 TFLite model")
    p.add_argument("model", type=Path, help="U8S8 QDQ .onnx with a uint8 input (or a float .onnx with --float)")
    p.add_argument("out", type=Path, help="the .tflite to write")
    p.add_argument("--float", action="store_true", help="convert a float ONNX model to a float32 TFLite model")
    p.set_defaults(handler=_tflite)
