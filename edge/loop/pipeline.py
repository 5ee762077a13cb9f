"""A model made ready for the loop: preprocessing tables built once, input feeds, bound policy, version.

:func:`build_stage` runs off the loop thread (at start-up and for every hot-swap): it binds every model input to
what feeds it (:mod:`edge.loop.feeds`: the primary camera, another sensor slot, a constant; inputs carried as state
feed themselves), reads the package's ``[preprocess]`` spec (``mean``, ``std``, ``channel_order``, ``layout``;
config values override it), builds the lookup table and resize plan from :mod:`edge.kernels.tables` for the
configured camera frame size, and binds the policy to the model's outputs (for a model whose outputs have dynamic
dimensions: at its first run, when their shapes are known). The loop thread then calls
:meth:`ModelStage.preprocess`, :meth:`ModelStage.infer` and :meth:`ModelStage.decide`, which allocate nothing in
steady state: the kernel and the vector feeds write straight into ``model.input_buffers`` and ``model.run()`` reads
them in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edge import kernels
from edge.contracts import LAYOUTS, Model, TensorSpec, image_dims, input_layout
from edge.errors import ConfigError
from edge.kernels import tables
from edge.loop.decision import Decision
from edge.loop.feeds import InputBinding, VectorFeed, fill_constant, resolve_bindings
from edge.loop.policy import BoundPolicy, Policy
from edge.loop.sensors import SensorSlot

__all__ = ["InputBinding", "ModelStage", "PreprocessSpec", "build_stage", "is_camera", "model_version"]


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
    and output buffers are the model's; the lookup table, plan, channel map and feeds are built here.

    ``lut``/``plan``/``channel_map``/``layout`` describe the primary camera's image feed (``image`` is True when
    there is one); ``vectors`` are the non-image feeds (:class:`~edge.loop.feeds.VectorFeed`), the primary's
    first when it is not a camera. ``channels`` is the number of drift-stat columns :meth:`preprocess` writes:
    the image's channels, else one per vector feed.
    """

    def __init__(
        self,
        model: Model,
        policy: BoundPolicy | None,
        lut: np.ndarray,
        plan: tables.ResizePlan | None,
        channel_map: np.ndarray,
        layout: str,
        version: str,
        *,
        image_input: int | None = 0,
        vectors: tuple[VectorFeed, ...] = (),
        primary_vector: bool = False,
        policy_spec: Policy | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.lut, self.plan, self.channel_map, self.layout = lut, plan, channel_map, layout
        self.image = image_input is not None
        self.image_buffer = model.input_buffers[image_input] if image_input is not None else None
        self.input = model.input_buffers[0]
        self.outputs = model.output_buffers
        self.version = version
        self.vectors = vectors
        self._others = vectors[1:] if primary_vector else vectors
        self._primary_vector = vectors[0] if primary_vector else None
        self.channels = len(channel_map) if self.image else max(len(vectors), 1)
        self._preprocess = kernels.preprocess_frame
        self._run = model.run
        self._policy_spec = policy_spec
        self._bind_policy(policy)
        self.reset_state = getattr(model, "reset_state", _nothing)

    def _bind_policy(self, policy: BoundPolicy | None) -> None:
        self.policy = policy
        if policy is not None:
            self._postprocess, self._decide = policy.postprocess, policy.decide

    def preprocess(self, frame: np.ndarray, stats: np.ndarray) -> None:
        """The primary sensor's value (a uint8 HWC camera frame through the kernel, or a vector through its
        normalisation) and every other bound sensor's latest value into the model's inputs; drift stats into
        ``stats`` (per-channel mean/std of the camera frame, else mean/std of each vector input)."""
        if self.image:
            self._preprocess(frame, self.image_buffer, self.layout, self.lut, self.plan, self.channel_map, stats)
        elif self._primary_vector is not None:
            self._primary_vector.write(frame)
            self._primary_vector.stats(stats, 0)
        column = 0 if self.image else (1 if self._primary_vector is not None else 0)
        for feed in self._others:
            value = feed.slot.value
            if value is not None:
                feed.write(value)
            if not self.image:
                feed.stats(stats, column)
                column += 1

    def infer(self) -> None:
        """Run the model on its input buffers (zero-copy); outputs land in :attr:`outputs`. A stateful model carries
        its state inside ``run``. On the first run of a model whose outputs had dynamic dimensions (and whenever the
        model re-binds an output), the policy is bound to the outputs as they now are (allocates, that frame only)."""
        self._run()
        if self.model.output_buffers is not self.outputs:
            self.outputs = self.model.output_buffers
            if self._policy_spec is not None:
                self._bind_policy(self._policy_spec.bind(self.model))

    def postprocess(self) -> bool:
        """Decode the outputs (dequantize, softmax/top-k, finiteness); False when they are invalid."""
        return self._postprocess()

    def decide(self, decision: Decision) -> bool:
        """The policy writes ``decision`` in place; False when it cannot."""
        return self._decide(self.outputs, decision)


def _nothing() -> None:
    return None


def _image_tables(
    model: Model, ins: TensorSpec, frame_shape: tuple[int, ...], frame_order: str, spec: PreprocessSpec
) -> tuple[np.ndarray, tables.ResizePlan | None, np.ndarray, str]:
    """Lookup table, resize plan, channel map and layout for camera frames of ``frame_shape`` into ``ins``."""
    if len(frame_shape) != 3:
        raise ConfigError(f"sensors (primary): expected an (H, W, channels) camera shape, got {list(frame_shape)}")
    pkg = getattr(model, "package", None)
    pre = dict(pkg.manifest.get("preprocess", {})) if pkg is not None else {}
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
    return lut, plan, cmap, layout


def is_camera(slot: SensorSlot) -> bool:
    """A slot the preprocessing kernel takes: uint8 ``(H, W, C)``."""
    return slot.dtype == np.uint8 and len(slot.shape) == 3


def build_stage(
    model: Model,
    policy: Policy,
    frame_shape: tuple[int, ...],
    frame_order: str = "RGB",
    spec: PreprocessSpec | None = None,
    name: str = "model",
    *,
    slots: Mapping[str, SensorSlot] | None = None,
    primary: str | None = None,
    bindings: Mapping[str, InputBinding] | None = None,
) -> ModelStage:
    """Bind ``model`` for the loop.

    Without ``bindings`` the model's one input (besides inputs carried as state) is fed by the primary sensor:
    camera frames of ``frame_shape`` (H, W, channels) in ``frame_order`` through the kernel, or — given ``slots``
    and a non-camera ``primary`` — a vector. With ``bindings`` (``{input name: InputBinding}``, the
    ``[model.inputs.*]`` tables) every other input must be bound to a sensor in ``slots`` or a constant. Errors
    name the key (``model.inputs.<input>``) and the model's input specs."""
    spec = spec or PreprocessSpec()
    implicit = not bindings
    bindings = resolve_bindings(model, bindings, primary)
    specs = ", ".join(s.describe() for s in model.inputs)
    slots = slots or {}
    image_input: int | None = None
    lut, plan, cmap, layout = np.zeros((1, 256), np.float32), None, np.zeros(0, np.int32), "NCHW"
    vectors: list[VectorFeed] = []
    primary_vector = False
    index = {s.name: i for i, s in enumerate(model.inputs)}
    for in_name, b in bindings.items():
        i, key = index[in_name], f"model.inputs.{in_name}"
        ins, buf = model.inputs[i], model.input_buffers[i]
        if b.value is not None:
            fill_constant(key, ins, buf, b.value)
            continue
        is_primary = b.sensor in ("", primary)
        slot = slots.get(primary or "") if is_primary else slots.get(b.sensor or "")
        if slot is None and not (is_primary and not slots):
            raise ConfigError(f"{key}.sensor: expected one of the sensors {list(slots)}, got {b.sensor!r}")
        if slot is None or is_camera(slot):
            if not is_primary:
                raise ConfigError(f"{key}.sensor: expected the primary camera for an image input, got {b.sensor!r}")
            if image_input is not None:
                raise ConfigError(f"{key}: expected one image input fed by the primary camera, got a second one")
            shape = frame_shape if slot is None else slot.shape
            lut, plan, cmap, layout = _image_tables(model, ins, shape, frame_order, spec)
            image_input = i
        else:
            if len(ins.shape) == 4 and (implicit or buf.size != int(np.prod(slot.shape))):
                raise ConfigError(
                    f"sensors.{slot.name}: expected a uint8 (H, W, channels) camera for the image input "
                    f"{ins.describe()}, got {list(slot.shape)} {slot.dtype.name}"
                )
            feed = VectorFeed(key, slot, ins, buf, b.scale, b.offset)
            if is_primary:
                vectors.insert(0, feed)
                primary_vector = True
            else:
                vectors.append(feed)
    if image_input is None and not primary_vector:
        raise ConfigError(
            f"model.inputs: expected the primary sensor {primary!r} to feed one of the model's inputs ({specs})"
        )
    pending = bool(getattr(model, "outputs_pending", False))
    bound = None if pending else policy.bind(model)
    return ModelStage(
        model,
        bound,
        lut,
        plan,
        cmap,
        layout,
        model_version(model, name),
        image_input=image_input,
        vectors=tuple(vectors),
        primary_vector=primary_vector,
        policy_spec=policy,
    )
