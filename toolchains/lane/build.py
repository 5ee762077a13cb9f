"""Reproduce the lane-keeping model packages in sim/models/ (CI does not run this; it needs the ``train`` extra).

    .venv/bin/pip install -e '.[train]'
    .venv/bin/python toolchains/lane/build.py [--out sim/models] [--frames 8000] [--epochs 8] [--key signing.pem]
        [--cache DIR]

Steps: drive the expert (with seeded steering perturbations, so recoveries are recorded) to collect training
frames (edge.sim.dataset), train the PilotNet-style CNN with PyTorch under road-condition augmentation (train.py,
lanenet.LANENET), export the weights into an ONNX graph (lanenet.build_graph), calibrate and quantize to U8S8 QDQ
(edge.tooling.toolchain.quantize_u8s8; calibration frames: nominal and augmented, so the int8 ranges cover dusk,
fog and glare), compute the reference profile on held-out nominal frames (edge.tooling.toolchain.reference_profile),
pack (and sign with --key) three packages:

* ``lane-keeper.tgz`` — int8 (U8S8 QDQ, uint8 input), version 1.0.0: the model the scenarios drive with;
* ``lane-keeper-float.tgz`` — the float32 model, same version (the int8-vs-float benchmark);
* ``lane-keeper-next.tgz`` — int8, version 1.1.0: 1.0.0 trained further on the training and validation frames
  (more data, the hot-swap scenario).

Each is signed: with ``--key``, or with a throw-away key whose public half is written to ``trust.pem``.
The bad-swap scenario's broken package is written by the harness at run time (edge.sim.harness), not here.
With ``--cache`` the collected frames and the trained weights are kept and reused (delete them to retrain).
On this machine (2 cores shared with other work): about 1.5 min of driving, 12–15 min of training (6 + 2 epochs).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import lanenet
import numpy as np
from edge.sim import builtin_scenario
from edge.sim.dataset import collect

from edge.drift.profile import save_profile
from edge.models import load_model
from edge.models.manage import pack_model
from edge.tooling.toolchain import quantize_u8s8, reference_profile

Weights = list[tuple[np.ndarray, np.ndarray]]


def _collect(
    n: int, seeds: range, cache: Path | None, scenario: str = "nominal", perturb_rad: float = 0.12
) -> dict[str, np.ndarray]:
    path = None if cache is None else cache / f"{scenario}-{n}-{seeds.start}-{seeds.stop}-{perturb_rad}.npz"
    if path is not None and path.exists():
        with np.load(path) as data:
            return dict(data)
    parts = [collect(builtin_scenario(scenario), n // len(seeds), seed=s, perturb_rad=perturb_rad) for s in seeds]
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("frames", "steering_rad", "pixel_stats")}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def _save_weights(path: Path, weights: Weights) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{k}{i}": a for i, wb in enumerate(weights) for k, a in zip("wb", wb, strict=True)})


def _load_weights(path: Path) -> Weights:
    with np.load(path) as data:
        return [(data[f"w{i}"], data[f"b{i}"]) for i in range(len(data.files) // 2)]


def _train(args: argparse.Namespace, train: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> dict[str, Weights]:
    """Weights per package version: 1.0.0 trained on ``train``; 1.1.0 = 1.0.0 trained on for more epochs on the
    training and validation frames together."""
    key = f"lanenet-{args.frames}-{args.epochs}-{args.seed}"
    cached = {v: None if args.cache is None else args.cache / f"{key}-{v}.npz" for v in ("1.0.0", "1.1.0")}
    if all(p is not None and p.exists() for p in cached.values()):
        print(f"trained weights from {args.cache}")
        return {v: _load_weights(p) for v, p in cached.items()}
    import train as trainer  # torch: the ``train`` extra

    net = trainer.network(lanenet.LANENET, args.seed)

    def evaluate(n: object) -> str:
        return f"validation RMSE {np.degrees(trainer.rmse_rad(n, val['frames'], val['steering_rad'])):.2f} deg"

    trainer.fit(net, train["frames"], train["steering_rad"], epochs=args.epochs, seed=args.seed, evaluate=evaluate)
    out = {"1.0.0": trainer.export_weights(net)}
    frames = np.concatenate([train["frames"], val["frames"]])
    labels = np.concatenate([train["steering_rad"], val["steering_rad"]])
    trainer.fit(net, frames, labels, epochs=2, seed=args.seed + 1, lr=2e-4)
    out["1.1.0"] = trainer.export_weights(net)
    print(f"1.1.0: in-sample RMSE {np.degrees(trainer.rmse_rad(net, val['frames'], val['steering_rad'])):.2f} deg")
    for v, p in cached.items():
        if p is not None:
            _save_weights(p, out[v])
    return out


def _calibration(val: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """200 nominal validation frames and the same frames under random road conditions (uint8 (400, 66, 200, 3))."""
    frames = val["frames"][:: max(1, len(val["frames"]) // 200)][:200]
    try:
        import torch
        import train as trainer
    except ImportError:  # trained weights from the cache and no torch: nominal frames only
        return frames
    gen = torch.Generator().manual_seed(seed)
    x = trainer._nchw(frames).float()
    aug = trainer.RoadConditions(trainer.crop_distance_m(), gen)(x)
    return np.concatenate([frames, aug.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()])


# (package, version, model): "int8" U8S8 QDQ ONNX with uint8 NCHW input, "float" float32 ONNX, "tflite" full-int8
# TFLite with int8 NHWC input (edge.tooling.tflite_export, from the int8 ONNX model)
PACKAGES = (
    ("lane-keeper", "1.0.0", "int8"),
    ("lane-keeper-float", "1.0.0", "float"),
    ("lane-keeper-next", "1.1.0", "int8"),
    ("lane-keeper-tflite", "1.0.0", "tflite"),
    ("lane-keeper-next-tflite", "1.1.0", "tflite"),  # what a hot-swap under --backend tflite takes
)


def _pack(
    model_file: Path, out: Path, version: str, held_out: dict[str, np.ndarray], signing_key: object, tmp: Path
) -> str:
    """Compute the reference profile of ``model_file`` on the held-out frames, pack and sign; returns its id."""
    layout = "NHWC" if model_file.suffix == ".tflite" else "NCHW"
    pre = {"mean": list(lanenet.MEAN), "std": list(lanenet.STD), "channel_order": "RGB", "layout": layout,
           "crop": "below_horizon"}  # fmt: skip
    model = load_model(model_file, warmup=0)
    profile = reference_profile(
        model,
        held_out["frames"],
        held_out["pixel_stats"],
        mean=lanenet.MEAN,
        std=lanenet.STD,
        # steering follows the track (straights, corners): over a 10-s horizon it is not stationary, so it is not a
        # drift feature here (the pixel statistics are)
        outputs=False,
    )
    prof = save_profile(profile, tmp / "profile.json")
    pack_model(model_file, out, name="lane-keeper", version=version, preprocess=pre, reference_profile=prof,
               signing_key=signing_key)  # fmt: skip
    return profile.profile_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("sim/models"))
    ap.add_argument("--frames", type=int, default=8000, help="training frames (expert driving, 1000 per drive)")
    ap.add_argument("--epochs", type=int, default=6, help="training epochs of version 1.0.0")
    ap.add_argument("--seed", type=int, default=7, help="weight initialization, batch order and augmentation")
    ap.add_argument("--key", help="Ed25519 private key (PEM) to sign the packages with")
    ap.add_argument("--cache", type=Path, help="keep the collected frames and trained weights here and reuse them")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    train = _collect(args.frames, range(100, 100 + max(1, args.frames // 1000)), args.cache)
    val = _collect(1200, range(200, 202), args.cache)
    # the reference profile's frames: never trained on, and driven without perturbations (what the fleet sees)
    held_out = _collect(1600, range(300, 304), args.cache, perturb_rad=0.0)
    print(f"collected {len(train['frames'])} + {len(val['frames'])} + {len(held_out['frames'])} frames "
          f"in {time.monotonic() - t0:.0f} s")  # fmt: skip
    weights = _train(args, train, val)
    calib = _calibration(val, args.seed)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.models.integrity import load_private_key

    args.out.mkdir(parents=True, exist_ok=True)
    # without --key: a throw-away key signs the packages and only its public half (trust.pem) is kept
    signing_key = load_private_key(args.key) if args.key else Ed25519PrivateKey.generate()
    public = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (args.out / "trust.pem").write_bytes(public)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for name, version, fmt in PACKAGES:
            fp = lanenet.build_graph(tmp / "lane_keeper.float.onnx", lanenet.LANENET, weights[version])
            model_file = fp
            if fmt != "float":
                model_file = quantize_u8s8(fp, tmp / "lane_keeper.onnx", calib, mean=lanenet.MEAN, std=lanenet.STD)
            if fmt == "tflite":
                from edge.tooling.tflite_export import qdq_onnx_to_tflite

                model_file = qdq_onnx_to_tflite(model_file, tmp / "lane_keeper.tflite")
            out = args.out / f"{name}.tgz"
            profile_id = _pack(model_file, out, version, held_out, signing_key, tmp)
            print(f"{out}: {out.stat().st_size / 1024:.0f} KiB, profile {profile_id}")
            for f in tmp.glob("lane_keeper.*"):
                f.unlink()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
