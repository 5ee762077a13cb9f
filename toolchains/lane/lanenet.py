"""The lane-keeping network: a PilotNet-shaped CNN (strided 5×5 and 3×3 convolutions + ReLU, features divided by
their mean level, then a dense steering head) mapping a 66×200 RGB crop of the road below the horizon to a steering
angle (rad, left > 0).

Training without PyTorch: the convolutional trunk is fixed (seeded zero-mean He-scaled filters; random features
keep where in the image a lane line is, which is what steering depends on) and the dense head is fitted in closed
form by ridge regression on the trunk's features of expert-driven frames, with the ridge strength picked on a
held-out split. The graph is written with ``onnx.helper``; batch size is symbolic for feature extraction and 1 in
the deployed model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IR_VERSION = 10
OPSET = 17
INPUT_HW = (66, 200)
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
# (out channels, kernel, stride): PilotNet's first three layers, narrower
TRUNK = ((12, 5, 2), (16, 5, 2), (24, 3, 2))


def trunk_weights(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    layers, cin = [], 3
    for cout, k, _ in TRUNK:
        w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        w -= w.mean(axis=(1, 2, 3), keepdims=True)  # zero-mean filters: respond to edges and lines, not to light level
        w *= np.float32(np.sqrt(2.0 / (cin * k * k)))
        b = np.zeros(cout, np.float32)
        layers.append((w, b))
        cin = cout
    return layers


def feature_count() -> int:
    h, w = INPUT_HW
    for _, k, s in TRUNK:
        h, w = (h - k) // s + 1, (w - k) // s + 1
    return h * w * TRUNK[-1][0]


def build_graph(
    path: str | Path, trunk: list[tuple[np.ndarray, np.ndarray]], head: tuple[np.ndarray, float] | None
) -> Path:
    """Write the ONNX graph: ``images`` float32 [N,3,66,200] → trunk → ``features`` [N,F] (``head`` None, N
    symbolic) or → Gemm → ``steering_rad`` [1,1] (with ``head`` = (weights (F,), bias))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    batch: int | str = 1 if head is not None else "N"
    inits, nodes, x = [], [], "images"
    for i, ((w, b), (_, _, s)) in enumerate(zip(trunk, TRUNK, strict=True)):
        inits += [numpy_helper.from_array(w, f"conv{i}_w"), numpy_helper.from_array(b, f"conv{i}_b")]
        nodes.append(helper.make_node("Conv", [x, f"conv{i}_w", f"conv{i}_b"], [f"conv{i}"], strides=[s, s]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x = f"relu{i}"
    nodes.append(helper.make_node("Flatten", [x], ["raw"], axis=1))
    # divide by the mean activation: with zero-mean filters and no bias the trunk is linear in the light level, so
    # this makes the features (and the steering) independent of brightness and contrast gain (dusk, glare, fog)
    inits.append(numpy_helper.from_array(np.array([1e-3], np.float32), "eps"))
    nodes.append(helper.make_node("ReduceMean", ["raw"], ["level"], axes=[1], keepdims=1))
    nodes.append(helper.make_node("Add", ["level", "eps"], ["level_eps"]))
    nodes.append(helper.make_node("Div", ["raw", "level_eps"], ["features"]))
    if head is None:
        out = helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, feature_count()])
    else:
        wh, bh = head
        inits += [
            numpy_helper.from_array(wh.reshape(-1, 1).astype(np.float32), "head_w"),
            numpy_helper.from_array(np.array([bh], np.float32), "head_b"),
        ]
        nodes.append(helper.make_node("Gemm", ["features", "head_w", "head_b"], ["steering_rad"]))
        out = helper.make_tensor_value_info("steering_rad", TensorProto.FLOAT, [1, 1])
    graph = helper.make_graph(
        nodes,
        "lane_keeper",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *INPUT_HW])],
        [out],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="toolchains/lane"
    )
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save_model(model, path)
    return path


def trunk_features(features_onnx: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Features float64 (N, F) of normalized frames ``x`` float32 (N, 3, 66, 200)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(features_onnx), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"images": x[i : i + batch]})[0] for i in range(0, len(x), batch)]).astype(
        np.float64
    )


def fit_ridge(
    f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, y_val: np.ndarray, lambdas: tuple[float, ...]
) -> tuple[np.ndarray, float, float, float]:
    """Ridge head on standardized features, the strength chosen on the validation split; returns (weights in raw
    feature units, bias, lambda, validation RMSE in rad)."""
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    z = (f_train - mu) / sd
    zv = (f_val - mu) / sd
    ym = float(y_train.mean())
    gram = z.T @ z
    rhs = z.T @ (y_train - ym)
    best = None
    for lam in lambdas:
        beta = np.linalg.solve(gram + lam * len(z) * np.eye(len(gram)), rhs)
        rmse = float(np.sqrt(np.mean((zv @ beta + ym - y_val) ** 2)))
        if best is None or rmse < best[3]:
            best = (beta, ym, lam, rmse)
    beta, ym, lam, rmse = best
    w = beta / sd
    return w, ym - float(w @ mu), lam, rmse
