"""Train the lane network (lanenet.Architecture) with PyTorch on expert-driven frames, with road-condition
augmentation, and hand back its weights in ONNX layouts for lanenet.build_graph.

Needs the optional ``train`` extra (``pip install -e '.[train]'``: torch 2.13 CPU); CI never imports this module.

Augmentation (:class:`RoadConditions`) applies, on the model-sized crop and in the order sim/effects.py renders
them, the drift conditions the scenarios drive through — fog (blend toward a fog colour by the ground distance of
each pixel), glare (a Gaussian bloom plus a veil), brightness/dusk, contrast, per-channel colour bias (white
balance), box blur, sensor noise — each with its own probability and a random strength, so the network learns to
find the lane lines under them instead of leaning on the light level. Frames stay uint8 in memory; a batch is
augmented in float32 pixel units (0..255) and normalized with lanenet.MEAN/STD, as the deployed graph expects.

Seeded and deterministic on one machine (torch.manual_seed, a seeded generator for batches and augmentation,
``threads`` intra-op threads, deterministic algorithms).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import lanenet
import numpy as np
import torch
from torch import nn

# labels are trained in 0.1 rad (steering spans about ±0.3 rad); the export divides the output layer back
LABEL_SCALE = 10.0
CROP_ROWS_FULL = 304  # camera rows below the horizon (480 - ground row 176) at the default 640×480 camera


class RoadConditions:
    """Random drift conditions for a batch of float32 (B, 3, 66, 200) crops in pixel units, in place.

    ``distance_m`` float32 (66, 200): the ground distance (m) of each crop pixel (fog weight
    ``1 - exp(-density * distance)``, as sim/effects.py computes it)."""

    def __init__(self, distance_m: np.ndarray, gen: torch.Generator) -> None:
        self.dist = torch.from_numpy(np.ascontiguousarray(distance_m, np.float32))
        self.gen = gen
        h, w = lanenet.INPUT_HW
        # crop pixel centres in full-frame pixel coordinates (640×480, crop starting at row 176)
        self.cols = ((torch.arange(w, dtype=torch.float32) + 0.5) * (640.0 / w)).view(1, 1, w)
        self.rows = (176.0 + (torch.arange(h, dtype=torch.float32) + 0.5) * (CROP_ROWS_FULL / h)).view(1, h, 1)

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) * (hi - lo) + lo

    def _pick(self, n: int, p: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) < p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        # fog: up to 25 m visibility (density 3 / visibility), a light grey colour
        fog = self._pick(b, 0.25)
        if fog.any():
            k = int(fog.sum())
            density = 3.0 / self._u(k, 25.0, 150.0)
            weight = 1.0 - torch.exp(-density.view(k, 1, 1) * self.dist)
            colour = (self._u(k, 150.0, 235.0).view(k, 1) + self._u(3 * k, -8.0, 8.0).view(k, 3)).view(k, 3, 1, 1)
            xf = x[fog]
            x[fog] = xf + (colour - xf) * weight.unsqueeze(1)
        # glare: a bloom (radius a fraction of the frame width) plus a faint veil, strength up to 0.95 × 255
        glare = self._pick(b, 0.25)
        if glare.any():
            k = int(glare.sum())
            cx = self._u(k, 0.0, 640.0).view(k, 1, 1)
            cy = self._u(k, 0.0, 300.0).view(k, 1, 1)
            radius = self._u(k, 0.1, 0.4).view(k, 1, 1) * 640.0
            r2 = ((self.cols - cx) ** 2 + (self.rows - cy) ** 2) / radius**2
            bloom = torch.exp(-r2) * 0.85 + 0.15
            strength = self._u(k, 0.1, 0.95).view(k, 1, 1) * 255.0
            x[glare] = x[glare] + (bloom * strength).unsqueeze(1)
        # exposure, contrast around mid-grey, white balance: ((x * brightness - m) * contrast + m) * bias
        light = self._pick(b, 0.7)
        if light.any():
            k = int(light.sum())
            brightness = self._u(k, 0.3, 1.4).view(k, 1, 1, 1)
            contrast = torch.where(self._pick(k, 0.5), self._u(k, 0.4, 1.3), torch.ones(k)).view(k, 1, 1, 1)
            bias = torch.where(self._pick(k, 0.5).view(k, 1), self._u(3 * k, 0.65, 1.4).view(k, 3), torch.ones(k, 3))
            x[light] = ((x[light] * brightness - 127.5) * contrast + 127.5) * bias.view(k, 3, 1, 1)
        blur = self._pick(b, 0.15)
        if blur.any():
            x[blur] = nn.functional.avg_pool2d(x[blur], 3, stride=1, padding=1, count_include_pad=False)
        noise = self._pick(b, 0.4)
        if noise.any():
            k = int(noise.sum())
            sigma = self._u(k, 1.0, 8.0).view(k, 1, 1, 1)
            x[noise] = x[noise] + torch.randn(x[noise].shape, generator=self.gen) * sigma
        return x.clamp_(0.0, 255.0)


def crop_distance_m() -> np.ndarray:
    """float32 (66, 200): the ground distance (m) of each model-input pixel at the default camera (nearest sample
    of the camera's per-pixel fog distance below the horizon)."""
    from edge.sim.camera import CameraGeometry, CameraSpec

    geo = CameraGeometry(CameraSpec())
    full = geo.distance_m.reshape(geo.spec.height, geo.spec.width)[geo.ground_row :]
    h, w = lanenet.INPUT_HW
    rows = ((np.arange(h) + 0.5) * full.shape[0] / h).astype(int)
    cols = ((np.arange(w) + 0.5) * full.shape[1] / w).astype(int)
    return full[np.ix_(rows, cols)].astype(np.float32)


def network(arch: lanenet.Architecture, seed: int) -> nn.Sequential:
    """The torch network of ``arch``, its initial weights drawn from ``seed`` (PyTorch's default init)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    cin = 3
    for cout, k, s in arch.convs:
        layers += [nn.Conv2d(cin, cout, k, s), nn.ReLU()]
        cin = cout
    layers.append(nn.Flatten())
    fin = arch.flat_features()
    for width in arch.dense:
        layers += [nn.Linear(fin, width), nn.ReLU()]
        fin = width
    layers.append(nn.Linear(fin, 1))
    return nn.Sequential(*layers)


def export_weights(net: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """The network's weights in ONNX layouts (conv (out, in, k, k); dense (in, out)), the output layer rescaled
    from training units to rad."""
    mods = [m for m in net if isinstance(m, nn.Conv2d | nn.Linear)]
    out = []
    for i, m in enumerate(mods):
        w = m.weight.detach().numpy().astype(np.float32)
        b = m.bias.detach().numpy().astype(np.float32)
        if isinstance(m, nn.Linear):
            w = w.T
        if i == len(mods) - 1:
            w, b = w / LABEL_SCALE, b / LABEL_SCALE
        out.append((np.ascontiguousarray(w), np.ascontiguousarray(b)))
    return out


def _normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(lanenet.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(lanenet.STD).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def _nchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))


def rmse_rad(net: nn.Sequential, frames: np.ndarray, steering_rad: np.ndarray, batch: int = 256) -> float:
    """Root-mean-square steering error (rad) of ``net`` on clean uint8 (N, 66, 200, 3) frames."""
    net.eval()
    x = _nchw(frames)
    with torch.no_grad():
        pred = torch.cat([net(_normalize(x[i : i + batch].float())) for i in range(0, len(x), batch)]).view(-1)
    net.train()
    return float(torch.sqrt(torch.mean((pred.double() / LABEL_SCALE - torch.from_numpy(steering_rad).double()) ** 2)))


def fit(
    net: nn.Sequential,
    frames: np.ndarray,
    steering_rad: np.ndarray,
    *,
    epochs: int,
    seed: int,
    lr: float = 1e-3,
    batch: int = 64,
    augment: float = 0.8,
    threads: int = 2,
    log: Callable[[str], None] = print,
    evaluate: Callable[[nn.Sequential], str] | None = None,
) -> nn.Sequential:
    """Train ``net`` in place on uint8 (N, 66, 200, 3) frames and steering labels (rad): Adam, cosine learning
    rate from ``lr`` (to 2 % of it), Huber loss in 0.1-rad units, a fraction ``augment`` of every batch
    augmented with :class:`RoadConditions`."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    gen = torch.Generator().manual_seed(seed)
    conditions = RoadConditions(crop_distance_m(), gen)
    x_all = _nchw(frames)
    y_all = torch.from_numpy(steering_rad.astype(np.float32) * LABEL_SCALE).view(-1, 1)
    steps = epochs * (len(x_all) // batch)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    loss_fn = nn.SmoothL1Loss(beta=0.5)
    net.train()
    t0 = time.monotonic()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(len(x_all) // batch):
            idx = order[i * batch : (i + 1) * batch]
            x = x_all[idx].float()
            aug = torch.rand(batch, generator=gen) < augment
            if aug.any():
                x[aug] = conditions(x[aug])
            opt.zero_grad()
            loss = loss_fn(net(_normalize(x)), y_all[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        extra = f", {evaluate(net)}" if evaluate is not None else ""
        log(f"epoch {epoch + 1}/{epochs}: loss {total / max(1, len(x_all) // batch):.4f}{extra} "
            f"({time.monotonic() - t0:.0f} s)")  # fmt: skip
    net.eval()
    return net
