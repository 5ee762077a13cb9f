"""The reference prediction histogram: the profile format (``prediction.counts``; old profiles keep loading and keep
their id), the engine's ``chi2_p`` against scipy on the same counts, the default alert rule on it, and the
``edge model profile --predictions`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from edge.cli import main
from edge.collector.alerts import DEFAULT_RULES, AlertPolicy
from edge.collector.engine import DriftEngine, Evaluation, ModelReference
from edge.drift.profile import FeatureSpec, ReferenceProfile, load_profile
from edge.errors import ConfigError
from edge.models import load_model
from edge.tooling.model_builders import float_cnn_onnx
from edge.tooling.toolchain import run_frames

# a profile as written before prediction counts existed, byte for byte (canonical JSON)
OLD_PROFILE = (
    b'{"features":[{"counts":[0,5,5,0,0],"edges":[0.0,0.5,1.0],"moments":[10.0,0.5,0.8,0.0,1.0],'
    b'"name":"confidence","source":{"kind":"confidence"}}],"prediction":{"output":0},"schema":1}'
)


def _profile(counts: list[int] | None) -> ReferenceProfile:
    f = FeatureSpec("confidence", {"kind": "confidence"}, np.array([0.0, 0.5, 1.0]), np.array([0, 5, 5, 0, 0]),
                    np.array([10.0, 0.5, 0.8, 0.0, 1.0]))  # fmt: skip
    return ReferenceProfile((f,), prediction_output=0, prediction_counts=None if counts is None else np.array(counts))


def test_old_profile_loads_without_counts_and_keeps_its_id() -> None:
    import hashlib

    old = load_profile(OLD_PROFILE)
    assert old.prediction_output == 0 and old.prediction_counts is None
    assert old.to_bytes() == OLD_PROFILE and old.profile_id == hashlib.sha256(OLD_PROFILE).hexdigest()[:16]
    assert ModelReference.from_profile("m@1", old).predictions is None


def test_prediction_counts_round_trip_and_change_the_id() -> None:
    p = _profile([40, 0, 7])
    doc = json.loads(p.to_bytes())
    assert doc["prediction"] == {"output": 0, "counts": [40, 0, 7]}
    back = load_profile(p.to_bytes())
    np.testing.assert_array_equal(back.prediction_counts, [40, 0, 7])
    assert back.prediction_counts.dtype == np.int64 and back.profile_id == p.profile_id
    assert p.profile_id != load_profile(OLD_PROFILE).profile_id
    np.testing.assert_array_equal(ModelReference.from_profile("m@1", back).predictions, [40, 0, 7])


@pytest.mark.parametrize(
    "prediction,message",
    [
        ({"counts": [1, 2]}, "prediction.output: expected the output the counts are of"),
        ({"output": 0, "counts": [1]}, "prediction.counts: expected a list of 2..4096 integer counts"),
        ({"output": 0, "counts": [1, -2]}, "prediction.counts: expected a list of 2..4096 integer counts"),
        ({"output": 0, "counts": [1, 2.5]}, "prediction.counts: expected a list of 2..4096 integer counts"),
        ({"output": 0, "counts": "12"}, "prediction.counts: expected a list"),
        ({"output": 0, "counts": [1] * 4097}, "prediction.counts: expected a list of 2..4096"),
        ([0], "prediction: expected a table with output"),
    ],
)
def test_bad_prediction_tables_are_refused(prediction: object, message: str) -> None:
    doc = json.loads(OLD_PROFILE)
    doc["prediction"] = prediction
    with pytest.raises(ConfigError, match=message):
        load_profile(json.dumps(doc).encode())


def test_counts_need_an_output() -> None:
    f = _profile(None).features
    with pytest.raises(ConfigError, match=r"prediction\.counts: expected a prediction output"):
        ReferenceProfile(f, prediction_counts=np.array([1, 2]))


# ------------------------------------------------------------------------------------------------ engine


def _window(i: int, predictions: list[int]) -> dict:
    return {"model": "m@1", "profile": "0" * 16, "start_ns": i, "end_ns": i + 1,
            "features": {"confidence": {"c": [0, 3, 3, 0, 0], "m": [6.0, 0.5, 0.3, 0.1, 0.9]}},
            "latency": {}, "predictions": predictions, "counters": {"frames": sum(predictions)}}  # fmt: skip


def _scipy_p(live: np.ndarray, ref: np.ndarray) -> float:
    seen = (live > 0) | (ref > 0)
    return float(stats.chi2_contingency(np.stack([live[seen], ref[seen]]), correction=False).pvalue)


def test_engine_chi2_p_is_scipys_test_of_homogeneity_on_the_horizon(rng: np.random.Generator) -> None:
    ref = np.array([400, 0, 250, 90, 0, 60])
    engine = DriftEngine(horizons=(4,))
    engine.set_reference(ModelReference.from_profile("m@1", _profile(ref.tolist())))
    sent = []
    for i in range(9):
        probs = [0.4, 0.0, 0.2, 0.1, 0.05 * (i > 5), 0.25]  # class 4: unseen in the reference, live from window 6
        counts = rng.multinomial(60, np.array(probs) / sum(probs))
        sent.append(counts)
        evs = engine.observe_window("dev", _window(i, counts.tolist()), i + 1)
        device = next(e for e in evs if e.scope == "dev")
        live = np.sum(sent[-4:], axis=0)
        assert device.ops["chi2_p"] == pytest.approx(_scipy_p(live, ref), rel=1e-9, abs=1e-300)
    fleet = next(e for e in evs if e.scope == "fleet")
    assert fleet.ops["chi2_p"] == pytest.approx(_scipy_p(np.sum(sent[-4:], axis=0), ref), rel=1e-9, abs=1e-300)
    assert device.ops["chi2_p"] < 1e-6  # the class the reference never saw is drift


def test_engine_chi2_p_edge_cases() -> None:
    engine = DriftEngine(horizons=(1,))
    engine.set_reference(ModelReference.from_profile("m@1", _profile([0, 30, 0])))
    (dev, _) = engine.observe_window("a", _window(0, [0, 12, 0]), 1)
    assert dev.ops["chi2_p"] == 1.0  # one class seen on both sides: nothing to test
    (dev, _) = engine.observe_window("b", _window(0, [1, 2]), 1)  # another length than the reference: not tested
    assert "chi2_p" not in dev.ops
    engine.set_reference(ModelReference.from_profile("m@1", _profile(None)))
    (dev, _) = engine.observe_window("c", _window(0, [5, 5, 5]), 1)
    assert "chi2_p" not in dev.ops  # no reference counts, no test


# ------------------------------------------------------------------------------------------------ alerts


def _ev(p: float, frames: int, t: int) -> Evaluation:
    return Evaluation("dev", "m@1", t, 10, 10, ("confidence",), np.array([frames]), {}, {"chi2_p": p})


def test_default_rule_alerts_on_chi2_p_below_001_with_200_frames_for_3_windows() -> None:
    rule = next(r for r in DEFAULT_RULES if r.metric == "chi2_p")
    assert (rule.threshold, rule.clear, rule.min_samples, rule.persistence, rule.above) == (0.01, 0.05, 200, 3, False)
    policy = AlertPolicy()
    assert [policy.evaluate(_ev(1e-5, 199, t)) for t in range(5)] == [[]] * 5  # too few frames: nothing
    assert policy.evaluate(_ev(0.009, 300, 5)) == [] and policy.evaluate(_ev(0.01, 300, 6)) == []
    (opened,) = policy.evaluate(_ev(0.001, 300, 7))
    assert (opened.state, opened.metric, opened.value, opened.threshold) == ("open", "chi2_p", 0.001, 0.01)
    assert [policy.evaluate(_ev(p, 300, 8 + i)) for i, p in enumerate([0.04, 0.2, 0.2])] == [[]] * 3  # 0.04: not clear
    (resolved,) = policy.evaluate(_ev(0.3, 300, 11))
    assert resolved.state == "resolved" and resolved.alert_id == opened.alert_id


# ------------------------------------------------------------------------------------------------ the CLI


def test_model_profile_command_stores_the_top1_counts(tmp_path: Path, rng: np.random.Generator) -> None:
    model_file = float_cnn_onnx(tmp_path / "c.onnx", hw=8, classes=5, seed=1)
    frames = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)
    f = frames.astype(np.float64)
    np.savez(tmp_path / "d.npz", frames=frames, pixel_stats=np.stack([f.mean(axis=(1, 2)), f.std(axis=(1, 2))], 1))
    args = ["model", "profile", str(model_file), "--frames", str(tmp_path / "d.npz"), "--mean", "0.5", "--std", "0.25"]
    assert main([*args, "-o", str(tmp_path / "plain.json")]) == 0
    assert load_profile(tmp_path / "plain.json").prediction_counts is None  # off by default
    assert main([*args, "--predictions", "-o", str(tmp_path / "p.json")]) == 0
    profile = load_profile(tmp_path / "p.json")
    logits = run_frames(load_model(model_file, warmup=0), frames, (0.5,) * 3, (0.25,) * 3)
    assert profile.prediction_output == 0 and profile.prediction_counts.sum() == 60
    np.testing.assert_array_equal(profile.prediction_counts, np.bincount(logits.argmax(axis=1), minlength=5))


def test_a_tap_refuses_counts_that_do_not_match_the_classification_output(tmp_path: Path) -> None:
    from edge.contracts import FrameContext
    from edge.telemetry import TelemetryTap, parse_telemetry

    table = {"spool_dir": "spool", "endpoint": "tcp://127.0.0.1:9", "fsync": "never"}
    tap = TelemetryTap(parse_telemetry(table, tmp_path), device_id="dev", profile=_profile([5, 5, 5]))
    ctx = FrameContext(3)
    ctx.outputs = (np.zeros((1, 4), np.float32),)
    try:
        with pytest.raises(ConfigError, match=r"prediction\.counts: expected 4 counts .*output 0\), got 3"):
            tap.bind(ctx, None)
    finally:
        tap.close(timeout_s=0.5)
        tap.publisher._thread.join(5.0)
    assert not tap.publisher.alive
