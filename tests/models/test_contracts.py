"""The shared contracts: every loaded model is an ``edge.contracts.Model``; image layouts read one way everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.contracts import LoadReport, Model, image_dims, input_layout
from edge.errors import ShapeError
from edge.models import load_model


def test_every_backend_loads_a_model_that_meets_the_model_protocol(model_path: Path) -> None:
    model = load_model(model_path, warmup=2)
    assert isinstance(model, Model)
    assert isinstance(model.report, LoadReport)
    assert len(model.input_buffers) == len(model.inputs) and len(model.output_buffers) == len(model.outputs)
    assert model.run() is model.output_buffers


def test_an_object_without_buffers_is_not_a_model() -> None:
    class NoBuffers:
        backend = provider = "x"
        inputs = outputs = ()
        report = None

        def run(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
            return ()

    assert not isinstance(NoBuffers(), Model)


@pytest.mark.parametrize(
    ("shape", "channels", "layout", "dims"),
    [
        ((1, 3, 32, 48), 3, "NCHW", (32, 48, 3)),
        ((1, 32, 48, 3), 3, "NHWC", (32, 48, 3)),
        ((3, 32, 48), 3, "NCHW", (32, 48, 3)),
        ((32, 48, 3), 3, "NHWC", (32, 48, 3)),
        ((1, 3, 5, 3), 3, "NHWC", (3, 5, 3)),  # channel-sized last dimension: read as channels last
        ((1, 1, 8, 8), 1, "NCHW", (8, 8, 1)),
    ],
)
def test_input_layout_and_image_dims(shape: tuple[int, ...], channels: int, layout: str, dims: tuple[int, ...]) -> None:
    assert input_layout(shape, channels) == layout
    assert image_dims(shape, layout) == dims


@pytest.mark.parametrize(("shape", "layout"), [((1, 10), "NHWC"), ((1, 2, 3, 4, 5), "NCHW"), ((1, 3, 8, 8), "NHCW")])
def test_image_dims_refuses_what_is_not_an_image_tensor(shape: tuple[int, ...], layout: str) -> None:
    with pytest.raises(ShapeError, match=r"expected a 3-D or 4-D shape in NCHW or NHWC, got \["):
        image_dims(shape, layout)
