"""A model made ready for the loop: preprocessing tables built once, input view, bound policy, version.

:func:`build_stage` runs off the loop thread (at start-up and for every hot-swap): it reads the package's
``[preprocess]`` spec (``mean``, ``std``, ``channel_order``, ``layout``; config values override it), builds the
lookup table and resize plan from :mod:`edge.kernels.tables` for the configured camera frame size, and binds the
policy to the model's outputs. The loop thread then calls :meth:`ModelStage.preprocess`, :meth:`ModelStage.infer`
and :meth:`ModelStage.decide`, which allocate nothing: the kernel writes straight into ``model.input_buffers[0]``
and ``model.run()`` reads it in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge import kernels
from edge.contracts import LAYOUTS, Model, image_dims, input_layout
from edge.errors import ConfigError
from edge.kernels import tables
from edge.loop.decision import Decision
from edge.loop.policy import BoundPolicy, Policy

__all__ = ["ModelStage", "PreprocessSpec", "build_stage", "model_version"]


@dataclass(frozen=True)
class PreprocessSpec:
    """How camera bytes become the model input. ``None`` fields come from the package's ``[preprocess]`` table,
    then these defaults: mean 0, std 1 (so ``v / 255``), the model's channel order = the frame's, layout from the
    input shape (``NCHW`` when dimension 1 is the channel count)."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str | None = None
    layout: str | None = None


def model_version(model: Model, fallback_name: str = "model") -> str:
    """``"name@version"`` from the model's package manifest, else ``"<fallback_name>@unversioned"``."""
    pkg = getattr(model, "package", None)
    if pkg is not None:
        m = pkg.manifest.get("model", {})
        return f"{m.get('name', fallback_name)}@{m.get('version', '?')}"
    return f"{fallback_name}@unversioned"


class ModelStage:
    """One model bound for the loop (built by :func:`build_stage`). Owns nothing the model does not: the input
    buffer and output buffers are the model's, the lookup table, plan and channel map are built here."""

    def __init__(
        self,
        model: Model,
        policy: BoundPolicy,
        lut: np.ndarray,
        plan: tables.ResizePlan | None,
        channel_map: np.ndarray,
        layout: str,
        version: str,
    ) -> None:
        self.model = model
        self.policy = policy
        self.lut, self.plan, self.channel_map, self.layout = lut, plan, channel_map, layout
        self.input = model.input_buffers[0]
        self.outputs = model.output_buffers
        self.version = version
        self._preprocess = kernels.preprocess_frame
        self._run = model.run
        self._postprocess = policy.postprocess
        self._decide = policy.decide

    def preprocess(self, frame: np.ndarray, stats: np.ndarray) -> None:
        """Frame (uint8 HWC, read-only is fine) → the model's input buffer; per-channel mean/std into ``stats``."""
        self._preprocess(frame, self.input, self.layout, self.lut, self.plan, self.channel_map, stats)

    def infer(self) -> None:
        """Run the model on its input buffer (zero-copy); outputs land in :attr:`outputs`."""
        self._run()

    def postprocess(self) -> bool:
        """Decode the outputs (dequantize, softmax/top-k, finiteness); False when they are invalid."""
        return self._postprocess()

    def decide(self, decision: Decision) -> bool:
        """The policy writes ``decision`` in place; False when it cannot."""
        return self._decide(self.outputs, decision)


def build_stage(
    model: Model,
    policy: Policy,
    frame_shape: tuple[int, ...],
    frame_order: str = "RGB",
    spec: PreprocessSpec | None = None,
    name: str = "model",
) -> ModelStage:
    """Bind ``model`` for camera frames of ``frame_shape`` (H, W, channels) in ``frame_order``."""
    spec = spec or PreprocessSpec()
    if len(model.inputs) != 1:
        raise ConfigError(f"model: expected a model with one image input, got {len(model.inputs)} inputs")
    if len(frame_shape) != 3:
        raise ConfigError(f"sensors (primary): expected an (H, W, channels) camera shape, got {list(frame_shape)}")
    pkg = getattr(model, "package", None)
    pre = dict(pkg.manifest.get("preprocess", {})) if pkg is not None else {}
    ins = model.inputs[0]
    channels = len(spec.channel_order or pre.get("channel_order") or frame_order)
    layout = (spec.layout or pre.get("layout") or input_layout(ins.shape, channels)).upper()
    if layout not in LAYOUTS:
        raise ConfigError(f"preprocess.layout: expected NCHW or NHWC, got {layout!r}")
    h, w, c = image_dims(ins.shape, layout)
    model_order = spec.channel_order or pre.get("channel_order") or frame_order[:c]
    if len(model_order) != c:
        raise ConfigError(f"preprocess.channel_order: expected {c} channels for {ins.describe()}, got {model_order!r}")
    cmap = tables.channel_map(frame_order, model_order)
    mean = spec.mean if spec.mean is not None else pre.get("mean", 0.0)
    std = spec.std if spec.std is not None else pre.get("std", 1.0)
    if ins.quantized:
        lut = tables.quantized_lut(mean, std, ins.scale, ins.zero_point, ins.dtype, channels=c)
    elif ins.dtype == np.float32:
        lut = tables.normalize_lut(mean, std, channels=c)
    elif ins.dtype == np.uint8:
        lut = np.tile(np.arange(256, dtype=np.uint8), (c, 1))  # raw bytes
    else:
        raise ConfigError(f"model input: expected float32, uint8 or a quantized int8/uint8 input, got {ins.describe()}")
    plan = tables.resize_plan(tuple(frame_shape[:2]), (h, w))
    return ModelStage(model, policy.bind(model), lut, plan, cmap, layout, model_version(model, name))
