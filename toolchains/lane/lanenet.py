"""The lane-keeping network: a PilotNet-style CNN mapping a 66×200 RGB crop of the road below the horizon to a
steering angle (rad, left > 0).

Architecture (NVIDIA's PilotNet, Bojarski et al. 2016): three strided 5×5 convolutions and two 3×3 convolutions,
each followed by ReLU (VALID padding), flatten, then dense layers with ReLU down to one output. The exported ONNX
graph uses only Conv, Relu, Flatten and Gemm, so it quantizes cleanly to U8S8 QDQ (every tensor on the int8 chain)
and maps to a full-int8 TFLite model.

Weights are a list of ``(w, b)`` float32 pairs in ONNX layouts: conv ``w`` (out, in, k, k), dense ``w`` (in, out)
(Gemm ``A @ B + C``), ``b`` (out,). :mod:`train` fits them with PyTorch; :func:`random_weights` gives He-scaled
random ones (the architecture's latency does not depend on the values). The graph is written with ``onnx.helper``;
the batch size is symbolic (``"N"``) or fixed (1 in the deployed model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IR_VERSION = 10
OPSET = 17
INPUT_HW = (66, 200)
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class Architecture:
    """``convs``: (out channels, kernel, stride) per conv layer; ``dense``: the hidden dense widths (a final
    1-wide output layer follows, without ReLU)."""

    convs: tuple[tuple[int, int, int], ...]
    dense: tuple[int, ...]

    def conv_output_hw(self) -> tuple[int, int]:
        h, w = INPUT_HW
        for _, k, s in self.convs:
            h, w = (h - k) // s + 1, (w - k) // s + 1
        return h, w

    def flat_features(self) -> int:
        h, w = self.conv_output_hw()
        return h * w * self.convs[-1][0]

    def shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(weight shape, bias shape) per layer, in ONNX layouts."""
        out, cin = [], 3
        for cout, k, _ in self.convs:
            out.append(((cout, cin, k, k), (cout,)))
            cin = cout
        fin = self.flat_features()
        for width in (*self.dense, 1):
            out.append(((fin, width), (width,)))
            fin = width
        return out


# NVIDIA's PilotNet: 24/36/48 5×5 stride 2, 64/64 3×3, FC 100/50/10/1
PILOTNET = Architecture(convs=((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1)), dense=(100, 50, 10))
# the shipped network: PilotNet with 1.5× the channels. On a 2-core AVX2 (no VNNI) CPU, onnxruntime 1 thread, U8S8
# QDQ vs float p50 (probe_arch.py): PilotNet 533 vs 751 µs (1.41×), ×1.25 672 vs 1055 µs (1.57×), ×1.5 912 vs
# 1497 µs (1.64×), ×2 1284 vs 2301 µs (1.79×): int8 pays off once the convolutions are wide enough; ×1.5 is the
# smallest with margin over the 1.5× target
LANENET = Architecture(convs=((36, 5, 2), (54, 5, 2), (72, 5, 2), (96, 3, 1), (96, 3, 1)), dense=(100, 50, 10))


def random_weights(arch: Architecture, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-scaled random weights, zero biases."""
    rng = np.random.default_rng(seed)
    layers = []
    for wshape, bshape in arch.shapes():
        fan_in = int(np.prod(wshape[1:])) if len(wshape) == 4 else wshape[0]
        w = (rng.standard_normal(wshape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        layers.append((w, np.zeros(bshape, np.float32)))
    return layers


def build_graph(
    path: str | Path, arch: Architecture, weights: list[tuple[np.ndarray, np.ndarray]], batch: int | str = 1
) -> Path:
    """Write the float ONNX graph: ``images`` float32 [batch, 3, 66, 200] (normalized with MEAN/STD) →
    ``steering_rad`` float32 [batch, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shapes = arch.shapes()
    if len(weights) != len(shapes):
        raise ValueError(f"weights: expected {len(shapes)} layers for {arch}, got {len(weights)}")
    inits, nodes, x = [], [], "images"
    n_conv = len(arch.convs)
    for i, ((w, b), (wshape, bshape)) in enumerate(zip(weights, shapes, strict=True)):
        if w.shape != wshape or b.shape != bshape:
            raise ValueError(f"layer {i}: expected weights {wshape} and bias {bshape}, got {w.shape} and {b.shape}")
        last = i == len(shapes) - 1
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(w, np.float32), f"l{i}_w"),
            numpy_helper.from_array(np.ascontiguousarray(b, np.float32), f"l{i}_b"),
        ]
        if i < n_conv:
            _, k, s = arch.convs[i]
            nodes.append(helper.make_node("Conv", [x, f"l{i}_w", f"l{i}_b"], [f"conv{i}"], kernel_shape=[k, k],
                                          strides=[s, s]))  # fmt: skip
            x = f"conv{i}"
        else:
            if i == n_conv:
                nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
                x = "flat"
            y = "steering_rad" if last else f"fc{i}"
            nodes.append(helper.make_node("Gemm", [x, f"l{i}_w", f"l{i}_b"], [y]))
            x = y
        if not last:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"]))
            x = f"relu{i}"
    graph = helper.make_graph(
        nodes,
        "lane_keeper",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *INPUT_HW])],
        [helper.make_tensor_value_info("steering_rad", TensorProto.FLOAT, [batch, 1])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="toolchains/lane"
    )
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save_model(model, path)
    return path
