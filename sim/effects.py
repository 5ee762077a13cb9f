"""Environment and sensor effects on the rendered image, driven by the timeline.

:class:`Environment` turns the timeline's effect entries into an :class:`EnvironmentState` at a time (updated in
place, nothing allocated); :class:`ImageEffects` applies a state to a float32 scene and writes the uint8 frame.
The order is physical: fog (along the line of sight), glare (light into the lens), then the sensor's response —
brightness (exposure), contrast, per-channel colour bias (white balance) — then optics blur and sensor noise.
"""

from __future__ import annotations

import math

import numpy as np
from edge.sim.camera import CameraGeometry
from edge.sim.timeline import Timeline

__all__ = ["Environment", "EnvironmentState", "ImageEffects"]

MID_GREY = 127.5
NOISE_BANK_FRAMES = 2


class EnvironmentState:
    """The effects' combined magnitudes at one instant.

    ``gain``/``offset`` (float32 (3,)): the per-channel affine response ``x * gain + offset`` (brightness, contrast,
    bias combined); ``fog_density`` (1/m) and ``fog_colour`` (float32 (3,)); ``glare`` (bloom strengths, one per
    glare entry); ``noise_sigma`` (extra noise, pixel units); ``blur_radius`` (pixels); ``unit_gain``: every gain is 1.
    """

    def __init__(self, glare_entries: int) -> None:
        self.gain = np.ones(3, dtype=np.float32)
        self.offset = np.zeros(3, dtype=np.float32)
        self.fog_density = 0.0
        self.fog_colour = np.zeros(3, dtype=np.float32)
        self.glare = [0.0] * glare_entries
        self.noise_sigma = 0.0
        self.blur_radius = 0
        self.unit_gain = True


class Environment:
    """The timeline's effects, evaluated at a time into one reused :class:`EnvironmentState`."""

    def __init__(self, timeline: Timeline) -> None:
        self.entries = timeline.of("brightness", "contrast", "fog", "glare", "bias", "noise", "blur")
        self.glare_entries = timeline.of("glare")
        self.state = EnvironmentState(len(self.glare_entries))
        self.max_blur = max((e.params["radius_px"] for e in timeline.of("blur")), default=0)
        self._bias = np.ones(3, dtype=np.float64)

    def update(self, t_s: float) -> EnvironmentState:
        """The state at ``t_s`` (s); the same object every call, rewritten in place."""
        st, bias = self.state, self._bias
        brightness = contrast = 1.0
        bias.fill(1.0)
        st.fog_colour.fill(0.0)
        st.fog_density, st.noise_sigma, st.blur_radius = 0.0, 0.0, 0
        fog_weight = 0.0
        glare_i = 0
        for e in self.entries:
            level = e.intensity(t_s)
            p = e.params
            if e.kind == "glare":
                st.glare[glare_i] = level * p["value"] * 255.0
                glare_i += 1
            elif level <= 0.0:
                continue
            elif e.kind == "brightness":
                brightness *= 1.0 + level * p["value"]
            elif e.kind == "contrast":
                contrast *= 1.0 + level * p["value"]
            elif e.kind == "bias":
                for c in range(3):
                    bias[c] *= 1.0 + level * (p["gains"][c] - 1.0)
            elif e.kind == "fog":
                density = level * 3.0 / p["visibility_m"]
                st.fog_density += density
                fog_weight += density
                for c in range(3):  # several fogs: their colours mixed by density
                    st.fog_colour[c] += (p["colour"][c] - st.fog_colour[c]) * (density / fog_weight)
            elif e.kind == "noise":
                st.noise_sigma = math.hypot(st.noise_sigma, level * p["sigma"])
            elif e.kind == "blur":
                st.blur_radius = max(st.blur_radius, round(level * p["radius_px"]))
        # ((x * brightness - m) * contrast + m) * bias = x * (brightness * contrast * bias) + m * (1 - contrast) * bias
        for c in range(3):
            st.gain[c] = brightness * contrast * bias[c]
            st.offset[c] = MID_GREY * (1.0 - contrast) * bias[c]
        st.unit_gain = brightness == 1.0 and contrast == 1.0 and bool(bias[0] == bias[1] == bias[2] == 1.0)
        return st


class ImageEffects:
    """Applies an :class:`EnvironmentState` to a float32 (H, W, 3) scene and writes the uint8 frame.

    Buffers (a scratch image, the glare blooms, the noise bank, the blur normalizers) are made once here; :meth:`apply`
    allocates nothing. ``base_noise_sigma`` (pixel units) is the camera's own noise, always on.
    """

    def __init__(
        self, geometry: CameraGeometry, environment: Environment, rng: np.random.Generator, base_noise_sigma: float
    ) -> None:
        spec = geometry.spec
        h, w = spec.height, spec.width
        self.shape = (h, w, 3)
        self._rng = rng
        self._base_noise = float(base_noise_sigma)
        self._scratch = np.empty(self.shape, dtype=np.float32)
        # per-pixel planes are kept with 3 channels so every per-frame operation runs on same-shaped arrays (a
        # broadcast (H, W, 1) operand makes NumPy allocate iterator buffers on every call)
        self._neg_distance = np.repeat(-geometry.distance_m.reshape(h, w, 1), 3, axis=2)
        self._fog = np.empty(self.shape, dtype=np.float32)
        self._fog_density = -1.0
        self._offset = np.zeros(3, dtype=np.float32)
        rows = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
        cols = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
        self._blooms = []
        for e in environment.glare_entries:  # a Gaussian bloom plus a faint veil over the whole image
            x, y, radius = e.params["position"]
            r2 = ((cols - x * w) ** 2 + (rows - y * h) ** 2) / max(radius * w, 1.0) ** 2
            self._blooms.append(np.repeat((np.exp(-r2) * 0.85 + 0.15)[:, :, None], 3, axis=2).astype(np.float32))
        n = h * w * 3
        # Gaussian noise drawn once, pre-scaled by the camera's own sigma; each frame reads it from a random offset
        self._bank_sigma = self._base_noise if self._base_noise > 0 else 1.0
        self._noise_bank = rng.standard_normal(n * NOISE_BANK_FRAMES, dtype=np.float32)
        self._noise_bank *= np.float32(self._bank_sigma)
        # 1 / (number of pixels averaged) per pixel and blur radius, full-shaped (see above)
        self._box = {
            r: np.ascontiguousarray(
                np.broadcast_to(
                    1.0 / (_box_counts(h, r)[:, None, None] * _box_counts(w, r)[None, :, None]), self.shape
                ),
                dtype=np.float32,
            )
            for r in range(1, environment.max_blur + 1)
        }

    def apply(self, img: np.ndarray, state: EnvironmentState, out: np.ndarray) -> None:
        """Apply ``state`` to ``img`` (float32 (H, W, 3), modified in place) and write the frame into ``out``
        (uint8 (H, W, 3), caller-owned), rounding and saturating."""
        scratch = self._scratch
        if state.fog_density > 0.0:
            fog = self._fog
            if state.fog_density != self._fog_density:  # the per-pixel weight only changes with the density
                np.multiply(self._neg_distance, state.fog_density, out=fog)
                np.exp(fog, out=fog)
                np.subtract(1.0, fog, out=fog)
                self._fog_density = state.fog_density
            np.subtract(state.fog_colour, img, out=scratch)
            np.multiply(scratch, fog, out=scratch)
            np.add(img, scratch, out=img)
        for bloom, strength in zip(self._blooms, state.glare, strict=True):
            if strength > 0.0:
                np.multiply(bloom, strength, out=scratch)
                np.add(img, scratch, out=img)
        blur = state.blur_radius > 0
        offset = self._offset
        np.copyto(offset, state.offset)
        if not blur:  # fold the rounding half-up into the offset
            offset += 0.5
        if not state.unit_gain:
            np.multiply(img, state.gain, out=img)
        np.add(img, offset, out=img)
        if blur:
            self._box_blur(img, state.blur_radius)
            np.add(img, 0.5, out=img)
        sigma = math.hypot(self._base_noise, state.noise_sigma)
        if sigma > 0.0:
            n = img.size
            start = int(self._rng.integers(0, len(self._noise_bank) - n))
            noise = self._noise_bank[start : start + n].reshape(self.shape)
            if sigma == self._bank_sigma:  # only the camera's own noise: one pass
                np.add(img, noise, out=img)
            else:
                np.multiply(noise, sigma / self._bank_sigma, out=scratch)
                np.add(img, scratch, out=img)
        np.clip(img, 0.0, 255.0, out=img)
        np.copyto(out, img, casting="unsafe")

    def _box_blur(self, img: np.ndarray, radius: int) -> None:
        """Separable box blur of ``radius`` pixels, in place; near the border it averages the pixels inside."""
        acc = self._scratch
        np.copyto(acc, img)
        flat_acc, flat_img = acc.reshape(-1), img.reshape(-1)
        w = img.shape[1]
        for k in range(1, radius + 1):
            # shift along the flattened image (contiguous, no iterator buffers), then take back what wrapped
            # around from the neighbouring row (small (H, k, 3) slices)
            flat_acc[3 * k :] += flat_img[: -3 * k]
            flat_acc[: -3 * k] += flat_img[3 * k :]
            acc[1:, :k] -= img[:-1, w - k :]
            acc[:-1, w - k :] -= img[1:, :k]
        np.copyto(img, acc)
        for k in range(1, radius + 1):
            img[k:] += acc[:-k]
            img[:-k] += acc[k:]
        np.multiply(img, self._box[radius], out=img)


def _box_counts(n: int, radius: int) -> np.ndarray:
    """How many of the 2 * radius + 1 neighbours of each of n positions lie inside [0, n)."""
    i = np.arange(n)
    return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(np.float64)
