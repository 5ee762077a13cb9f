"""Reproduce the lane-keeping model packages in sim/models/ (CI does not run this; it takes a few minutes).

    .venv/bin/python toolchains/lane/build.py [--out sim/models] [--frames 6000] [--key signing.pem] [--cache DIR]

Steps: drive the expert (with seeded steering perturbations) to collect training frames (edge.sim.dataset),
fit the network (lanenet.py: fixed PilotNet-shaped conv trunk + ridge head), export ONNX, calibrate and quantize
to U8S8 QDQ (edge.models.toolchain.quantize_u8s8), compute the reference profile on held-out nominal frames
(edge.models.toolchain.reference_profile), pack (and sign with --key) three packages:

* ``lane-keeper.tgz`` — int8 (U8S8 QDQ, uint8 input), version 1.0.0: the model the scenarios drive with;
* ``lane-keeper-float.tgz`` — the float32 model, same version (the int8-vs-float benchmark);
* ``lane-keeper-next.tgz`` — int8, version 1.1.0, its head refitted on the validation frames too (the hot-swap
  scenario).

Each is signed: with ``--key``, or with a throw-away key whose public half is written to ``trust.pem``.
The bad-swap scenario's broken package is written by the harness at run time (edge.sim.harness), not here.
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
from edge.models.toolchain import normalize_frames, quantize_u8s8, reference_profile

LAMBDAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


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


def _augment(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-frame gain and offset (light level and contrast a little off nominal), so the head does not lean on the
    absolute brightness."""
    gain = rng.uniform(0.35, 1.3, (len(frames), 1, 1, 1))
    offset = rng.uniform(-15, 15, (len(frames), 1, 1, 1))
    return np.clip(frames * gain + offset, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("sim/models"))
    ap.add_argument("--frames", type=int, default=6000, help="training frames (expert driving)")
    ap.add_argument("--seed", type=int, default=7, help="trunk weights")
    ap.add_argument("--key", help="Ed25519 private key (PEM) to sign the packages with")
    ap.add_argument("--cache", type=Path, help="keep the collected frames here and reuse them on the next build")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    rng = np.random.default_rng(args.seed)
    train = _collect(args.frames, range(100, 106), args.cache)
    val = _collect(1200, range(200, 202), args.cache)
    # the reference profile's frames: never trained on, and driven without perturbations (what the fleet sees)
    held_out = _collect(1600, range(300, 304), args.cache, perturb_rad=0.0)
    print(f"collected {len(train['frames'])} + {len(val['frames'])} + {len(held_out['frames'])} frames "
          f"in {time.monotonic() - t0:.0f} s")  # fmt: skip
    trunk = lanenet.trunk_weights(args.seed)
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
        feats_onnx = lanenet.build_graph(tmp / "features.onnx", trunk, None)
        x_train = np.concatenate([train["frames"], _augment(train["frames"], rng)])
        y_train = np.concatenate([train["steering_rad"], train["steering_rad"]]).astype(np.float64)
        f_train = lanenet.trunk_features(feats_onnx, normalize_frames(x_train, lanenet.MEAN, lanenet.STD))
        f_val = lanenet.trunk_features(feats_onnx, normalize_frames(val["frames"], lanenet.MEAN, lanenet.STD))
        y_val = val["steering_rad"].astype(np.float64)
        w, b, lam, rmse = lanenet.fit_ridge(f_train, y_train, f_val, y_val, LAMBDAS)
        heads = {"1.0.0": (w, b)}
        print(f"head 1.0.0: {len(f_train)} frames, lambda {lam:g}, validation RMSE {np.degrees(rmse):.2f} deg")
        # the next version: the same strength refitted on the training and the validation frames (more data)
        f_all, y_all = np.concatenate([f_train, f_val]), np.concatenate([y_train, y_val])
        w, b, _, rmse = lanenet.fit_ridge(f_all, y_all, f_val, y_val, (lam,))
        heads["1.1.0"] = (w, b)
        print(f"head 1.1.0: {len(f_all)} frames, lambda {lam:g}, in-sample RMSE {np.degrees(rmse):.2f} deg")
        pre = {"mean": list(lanenet.MEAN), "std": list(lanenet.STD), "channel_order": "RGB", "layout": "NCHW",
               "crop": "below_horizon"}  # fmt: skip
        calib = val["frames"][:: max(1, len(val["frames"]) // 200)]
        for name, version, quantized in (
            ("lane-keeper", "1.0.0", True),
            ("lane-keeper-float", "1.0.0", False),
            ("lane-keeper-next", "1.1.0", True),
        ):
            fp = lanenet.build_graph(tmp / "lane_keeper.float.onnx", trunk, heads[version])
            model_file = fp
            if quantized:
                model_file = quantize_u8s8(fp, tmp / "lane_keeper.onnx", calib, mean=lanenet.MEAN, std=lanenet.STD)
            model = load_model(model_file, warmup=0)
            profile = reference_profile(
                model,
                held_out["frames"],
                held_out["pixel_stats"],
                mean=lanenet.MEAN,
                std=lanenet.STD,
                # steering follows the track (straights, corners): over a 10-s horizon it is not stationary, so it
                # is not a drift feature here (the pixel statistics are)
                outputs=False,
            )
            prof = save_profile(profile, tmp / "profile.json")
            out = args.out / f"{name}.tgz"
            pack_model(model_file, out, name="lane-keeper", version=version, preprocess=pre,
                       reference_profile=prof, signing_key=signing_key)  # fmt: skip
            print(f"{out}: {out.stat().st_size / 1024:.0f} KiB, profile {profile.profile_id}")
            if model_file != fp:
                model_file.unlink()
            fp.unlink()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
