"""Fixtures for the simulator tests: small scenarios built in code (small frames where the size does not matter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from edge.sim.scenario import Scenario, parse_scenario


@pytest.fixture
def make_scenario() -> Callable[..., Scenario]:
    """``make_scenario(timeline=[...], width=80, height=60, **world)``: a validated scenario on the circuit."""

    def make(timeline: list[dict[str, Any]] | None = None, width: int = 80, height: int = 60, **world: Any) -> Scenario:
        raw = {
            "name": "test",
            "world": {"seed": 3, "duration_s": 30.0, **world, "camera": {"width": width, "height": height}},
            "timeline": timeline or [],
        }
        return parse_scenario(raw)

    return make
