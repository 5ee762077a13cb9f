"""The README's sample device.toml (section "Loop") and its "Robot I/O" tables are valid configuration, and the
sample's model is one that ships with the repository and fits the sample's policy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from edge.loop.config import parse_config
from edge.models import load_model

REPO = Path(__file__).resolve().parents[2]


def toml_blocks() -> list[dict]:
    text = (REPO / "README.md").read_text()
    return [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", text, re.S)]


def test_the_readme_sample_runs_a_shipped_model_and_its_robot_io_tables_parse() -> None:
    blocks = toml_blocks()
    (sample,) = [b for b in blocks if "loop" in b and "model" in b]
    cfg = parse_config(sample, REPO / "device.toml")
    assert cfg.model.package.exists(), f"the README's sample points at {cfg.model.package}, which does not exist"
    model = load_model(cfg.model.package)
    assert cfg.policy.kind == "regression" and cfg.policy.size == model.outputs[0].shape[-1]
    (robot,) = [b for b in blocks if "record" in b]
    merged = {**sample, "sensors": {**sample["sensors"], **robot["sensors"]}, "record": robot["record"]}
    cfg = parse_config(merged, REPO / "device.toml")
    kinds = {s.name: s.source for s in cfg.sensors}
    assert kinds["camera"] == "video" and kinds["front"] == "camera" and kinds["replayed"] == "mcap"
    assert cfg.record is not None and cfg.record.path == REPO / "rec.mcap"
