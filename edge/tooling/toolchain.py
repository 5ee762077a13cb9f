"""The model toolchain behind ``edge model quantize`` and ``edge model profile``: calibrate and quantize a float ONNX
model to U8S8 QDQ, and compute a model's drift reference profile on held-out frames.

* :func:`quantize_u8s8` runs ``onnxruntime.quantization.quantize_static`` (QDQ, uint8 activations, int8 weights,
  per output channel by default) calibrated on model-sized uint8 frames preprocessed exactly as the loop does (the
  package's ``mean``/``std``), then gives the graph a uint8 input (the input ``QuantizeLinear`` removed) so the loop's
  preprocessing kernel quantizes a camera frame straight into the model's input buffer.
* :func:`reference_profile` builds a :class:`~edge.drift.profile.ReferenceProfile`: per-channel pixel mean and std
  of the camera frames (the statistics the loop's preprocessing pass emits) on bins centred on the reference, and
  optionally each element of the model's output (the model run on the frames the same way) on quantile bins, with
  the reference counts and moments, and optionally the top-1 class counts of a classification output.

Frames are uint8 (N, H, W, 3) RGB at the model's input size; pixel statistics are float64 (N, 2, 3): per frame the
per-channel mean (row 0) and std (row 1) of the source camera frame, in pixel units (0..255).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.contracts import Model, image_dims, input_layout
from edge.errors import ConfigError, ShapeError

__all__ = ["centred_edges", "normalize_frames", "quantize_u8s8", "reference_profile", "run_frames", "top1_counts"]

IR_VERSION = 10  # onnxruntime 1.31 rejects the IR 14 onnx 1.23 writes by default


def _check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or len(frames) == 0:
        raise ShapeError(f"frames: expected uint8 (N, H, W, 3) with N >= 1, got {frames.dtype} {frames.shape}")


def normalize_frames(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, H, W, 3) → float32 (N, 3, H, W) ``(x / 255 - mean) / std`` (a new array)."""
    _check_frames(frames)
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return ((frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0) - m) / s


def quantize_u8s8(
    float_model: str | Path,
    out: str | Path,
    calibration: np.ndarray,
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    uint8_input: bool = True,
    per_channel: bool = True,
) -> Path:
    """Write the U8S8 QDQ model of ``float_model`` (one NCHW float input) calibrated on ``calibration`` frames
    (uint8 (N, H, W, 3)); with ``uint8_input`` the graph input becomes the quantized uint8 tensor; ``per_channel``:
    one weight scale per output channel (else per tensor)."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    float_model, out = Path(float_model), Path(out)
    model = onnx.load_model(float_model)
    in_name = model.graph.input[0].name
    want = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    x = normalize_frames(calibration, mean, std)
    if want[1:] != x.shape[1:]:
        raise ShapeError(f"calibration frames: expected (N, {want[2]}, {want[3]}, 3) for {in_name}, got {x.shape}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(range(len(x)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self.it, None)
            return None if i is None else {in_name: x[i : i + 1]}

    tmp = out.with_name(out.name + ".qdq.partial")
    try:
        quantize_static(
            float_model,
            tmp,
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
        )
        q = onnx.load_model(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    if uint8_input:
        g = q.graph
        q_in = next((n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == in_name), None)
        if q_in is None:
            raise ConfigError(f"{float_model}: expected a QuantizeLinear on input {in_name!r} after quantization")
        for n in g.node:
            for i, name in enumerate(n.input):
                if name == q_in.output[0]:
                    n.input[i] = in_name
        g.node.remove(q_in)
        g.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    q.ir_version = IR_VERSION
    onnx.checker.check_model(q)
    onnx.save_model(q, out)
    return out


def run_frames(model: Model, frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """The model's first output, dequantized, for each frame: float64 (N, size). Frames go through the loop's
    preprocessing kernel into ``model.input_buffers[0]`` (the model owns that buffer)."""
    from edge.kernels import preprocess_frame, tables

    _check_frames(frames)
    spec = model.inputs[0]
    layout = input_layout(spec.shape, 3)
    if spec.quantized:
        lut = tables.quantized_lut(mean, std, spec.scale, spec.zero_point, spec.dtype, channels=3)
    else:
        lut = tables.normalize_lut(mean, std, channels=3)
    cmap = tables.channel_map("RGB", "RGB")
    h, w, _ = image_dims(spec.shape, layout)
    plan = tables.resize_plan(frames.shape[1:3], (h, w))
    stats = np.zeros((2, 3), np.float64)
    o = model.outputs[0]
    vals = np.zeros((len(frames), int(np.prod(o.shape))), np.float64)
    for i, f in enumerate(frames):
        preprocess_frame(f, model.input_buffers[0], layout, lut, plan, cmap, stats)
        model.run()
        raw = model.output_buffers[0].reshape(-1).astype(np.float64)
        vals[i] = (raw - (o.zero_point or 0)) * o.scale if o.quantized else raw
    return vals


def centred_edges(values: np.ndarray, bins: int, spread: float, min_width: float) -> np.ndarray:
    """``bins`` equal bins (``bins + 1`` edges) centred on the median of ``values``, each ``spread`` standard
    deviations of ``values`` wide (at least ``min_width``): the reference fills the middle bins, and a window has to
    move by a real shift, not by autocorrelated noise, to change bins (quantile bins of a narrow reference would
    turn a 0.1-pixel wobble into drift)."""
    width = max(spread * float(np.std(values)), min_width)
    return float(np.median(values)) + width * (np.arange(bins + 1) - bins / 2)


def _feature(name: str, source: dict[str, Any], values: np.ndarray, edges: np.ndarray | int) -> Any:
    from edge.drift.profile import FeatureSpec

    v = values[np.isfinite(values)]
    if isinstance(edges, int):  # quantile bins
        edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, edges + 1)))
        if len(edges) < 2:
            edges = np.array([v.min() - 0.5, v.max() + 0.5])
    # sketch layout: underflow see edge.kernels.sketch_update, NaN
    idx = np.searchsorted(edges, v, side="right")
    counts = np.zeros(len(edges) + 2, np.int64)
    np.add.at(counts, idx, 1)
    counts[-1] = int(np.count_nonzero(~np.isfinite(values)))
    mean = float(v.mean())
    moments = np.array([len(v), mean, float(((v - mean) ** 2).sum()), float(v.min()), float(v.max())])
    return FeatureSpec(name, source, edges.astype(np.float64), counts, moments)


def reference_profile(
    model: Model,
    frames: np.ndarray,
    pixel_stats: np.ndarray,
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    bins: int = 13,
    spread: float = 6.0,
    min_width: tuple[float, float] = (3.0, 3.0),
    outputs: bool = True,
    output_names: Sequence[str] = (),
    predictions: bool = False,
) -> Any:
    """The reference profile of ``model`` (a loaded model) on held-out ``frames`` and their source ``pixel_stats``
    (see the module doc). Pixel statistics get ``bins`` centred bins (:func:`centred_edges`, ``min_width`` in pixel
    units for the mean and the std); with ``outputs``, one feature per element of the first output (named by
    ``output_names``, default ``output_<j>``) on ``bins`` quantile bins. With ``predictions`` the first output is a
    classification output (2..4096 classes): the profile names it (``prediction.output`` = 0) and holds its
    reference top-1 class counts over ``frames`` (``prediction.counts``, the argmax the device counts), which the
    collector's chi-square compares the live class mix with."""
    from edge.drift.profile import ReferenceProfile

    _check_frames(frames)
    pixel_stats = np.asarray(pixel_stats, np.float64)
    if pixel_stats.shape != (len(frames), 2, 3):
        raise ShapeError(f"pixel_stats: expected float (N, 2, 3) with N = {len(frames)}, got {pixel_stats.shape}")
    if not 2 <= bins <= 254:
        raise ConfigError(f"bins: expected 2..254, got {bins}")
    feats = []
    for row, stat in enumerate(("mean", "std")):
        for c in range(3):
            src = {"kind": "stats", "stat": stat, "channel": c}
            v = pixel_stats[:, row, c]
            edges = centred_edges(v, bins, spread, min_width[row])
            feats.append(_feature(f"pixel_{stat}_c{c}", src, v, edges))
    if not (outputs or predictions):
        return ReferenceProfile(tuple(feats))
    outs = run_frames(model, frames, mean, std)
    if outputs:
        for j in range(outs.shape[1]):
            name = output_names[j] if j < len(output_names) else f"output_{j}"
            feats.append(_feature(name, {"kind": "output", "output": 0, "index": j}, outs[:, j], bins))
    if not predictions:
        return ReferenceProfile(tuple(feats))
    return ReferenceProfile(tuple(feats), prediction_output=0, prediction_counts=top1_counts(outs))


def top1_counts(outputs: np.ndarray) -> np.ndarray:
    """Frames per top-1 class: int64 (K,) from the classification output of each frame, float (N, K) (dequantized
    with a positive scale, so its argmax is the raw buffer's, as the device counts it; ties go to the lower class)."""
    from edge.drift.profile import MAX_CLASSES

    if outputs.ndim != 2 or not 2 <= outputs.shape[1] <= MAX_CLASSES:
        raise ShapeError(
            f"predictions: expected a classification output of 2..{MAX_CLASSES} classes, got output shape "
            f"{outputs.shape[1:]}"
        )
    return np.bincount(np.argmax(outputs, axis=1), minlength=outputs.shape[1]).astype(np.int64)
