"""Chi-square on the prediction mix, live: a real classification model (edge.tooling.model_builders) packaged with a
reference profile that holds its top-1 class counts, run by the real loop with the telemetry tap, over real sockets to a
CollectorServer. A shifted class mix opens a ``chi2_p`` alert on the device; the same mix as the reference does not.
The alert's value is checked against ``scipy.stats.chi2_contingency`` on the windows the collector stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from collector_support import wait_for
from scipy import stats

from edge.collector.server import CollectorServer, CollectorSettings
from edge.drift.profile import save_profile
from edge.loop.clock import LockstepClock
from edge.loop.policy import ClassificationPolicy
from edge.loop.runner import Loop, Timing
from edge.loop.sensors import SensorSlot
from edge.loop.sinks import CallableSink
from edge.models import load_model
from edge.models.manage import pack_model
from edge.telemetry import tap_from_config
from edge.tooling.model_builders import float_cnn_onnx
from edge.tooling.toolchain import reference_profile

HW = 16
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CLASSES = 10
RATE_HZ = 100
WINDOW_S = 0.5  # 50 frames a window; the collector's horizon of 10 windows holds 500 frames
HORIZON = 10


def tinted_frames(rng: np.random.Generator, n: int) -> np.ndarray:
    """Camera frames: a random colour per frame plus pixel noise (the model's top-1 class follows the colour)."""
    tint = rng.uniform(0, 255, (n, 1, 1, 3))
    return np.clip(tint + rng.normal(0, 30, (n, HW, HW, 3)), 0, 255).astype(np.uint8)


def pixel_stats(frames: np.ndarray) -> np.ndarray:
    """Per frame, per channel mean (row 0) and population std (row 1) of the pixels: float64 (N, 2, 3)."""
    f = frames.astype(np.float64)
    return np.stack([f.mean(axis=(1, 2)), f.std(axis=(1, 2))], axis=1)


def ort_top1(model_file: Path, frames: np.ndarray) -> np.ndarray:
    """Top-1 classes by onnxruntime directly, with the normalization written out here (not edge's kernels)."""
    sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    x = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - np.float32(0.5)) / np.float32(0.25)
    return np.array([int(np.argmax(sess.run(None, {"images": x[i : i + 1]})[0])) for i in range(len(x))])


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("chisq")
    model_file = float_cnn_onnx(tmp / "classifier.onnx", hw=HW, classes=CLASSES, seed=3)
    rng = np.random.default_rng(20261122)
    held_out = tinted_frames(rng, 1500)
    profile = reference_profile(
        load_model(model_file, warmup=0), held_out, pixel_stats(held_out), mean=MEAN, std=STD, predictions=True
    )
    pkg = pack_model(
        model_file,
        tmp / "classifier-pkg",
        name="classifier",
        version="1.0.0",
        preprocess={"mean": list(MEAN), "std": list(STD)},
        reference_profile=save_profile(profile, tmp / "profile.json"),
    )
    pool = tinted_frames(np.random.default_rng(7), 3000)  # live frames: the same distribution, other draws
    return {"file": model_file, "pkg": pkg, "profile": profile, "held_out": held_out, "pool": pool,
            "pool_top1": ort_top1(model_file, pool)}  # fmt: skip


def test_reference_counts_are_the_models_top1_classes(classifier) -> None:
    expected = np.bincount(ort_top1(classifier["file"], classifier["held_out"]), minlength=CLASSES)
    profile = classifier["profile"]
    assert profile.prediction_output == 0
    np.testing.assert_array_equal(profile.prediction_counts, expected)
    assert np.count_nonzero(expected) >= 3, "the test model should spread the frames over several classes"


def _run_device(classifier: dict[str, Any], server: CollectorServer, frames: np.ndarray, tmp_path: Path) -> list[int]:
    """Run the loop over ``frames`` (one per tick, 100 Hz lockstep) with a telemetry tap to ``server``; returns the
    loop's decided classes. Waits until the collector has stored and scored every window."""
    tap = tap_from_config(
        {"spool_dir": "spool", "endpoint": server.endpoint, "window_s": WINDOW_S, "fsync": "never"},
        device_id="dev-chisq",
        base_dir=tmp_path,
    )
    decided: list[int] = []
    camera = SensorSlot("camera", (HW, HW, 3))
    loop = Loop(
        load_model(classifier["pkg"], threads=1),
        ClassificationPolicy([f"c{i}" for i in range(CLASSES)]),
        [camera],
        clock=LockstepClock(),
        timing=Timing(rate_hz=RATE_HZ, start_ns=0),
        taps=[tap],
        sinks=[CallableSink(lambda d: decided.append(d.action))],
    )
    per_window = int(RATE_HZ * WINDOW_S)
    try:
        for i, frame in enumerate(frames):
            camera.push(frame, loop.schedule.next_ns)
            loop.step()
            if i == 0:  # the hello went out at bind: the profile is uploaded before the first window closes
                pid = classifier["profile"].profile_id
                wait_for(lambda: server.engine.has_reference("classifier@1.0.0"), what=f"profile {pid} uploaded")
            if i % per_window == per_window - 1:  # pace: the publisher takes each closed window (no drops)
                ring = tap._ring
                wait_for(lambda r=ring: all(s != 2 for s in r.state), what="the publisher to take the window")
    finally:
        loop.close()
    assert tap.drops == 0 and tap.publisher.profile_uploads == 1
    windows = len(frames) // per_window
    wait_for(lambda: server.counters["records"] >= windows, what=f"{windows} windows stored")
    assert server.drain(30.0)
    return decided


def _stored_windows(server: CollectorServer) -> list[dict[str, Any]]:
    rows = server.store.iter_records("window")
    return [body for _, body in sorted((seq, body) for device, _, seq, _, body in rows if device == "dev-chisq")]


@pytest.mark.parametrize("shifted", [False, True], ids=["same-mix", "shifted-mix"])
def test_chi_square_alerts_on_a_shifted_class_mix_only(classifier, tmp_path: Path, shifted: bool) -> None:
    pool, top1 = classifier["pool"], classifier["pool_top1"]
    ref = classifier["profile"].prediction_counts
    if shifted:  # the reference's most common class loses about half its share to the others
        weights = np.where(top1 == np.argmax(ref), 1.0, 4.0)
        picks = np.random.default_rng(8).choice(len(pool), 1000, replace=False, p=weights / weights.sum())
    else:  # fresh frames of the reference's distribution, in order
        picks = np.arange(1000)
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=tmp_path / "collector.db", http=None, horizons=(HORIZON,))
    with CollectorServer(settings) as server:
        decided = _run_device(classifier, server, pool[picks], tmp_path)
        windows = _stored_windows(server)
        alerts = [a for a in server.store.alerts(limit=1000) if a.metric == "chi2_p" and a.scope == "dev-chisq"]
        assert server.engine.windows_skipped == 0
    # the device counted the loop's own decisions, window by window
    counted = np.sum([w["predictions"] for w in windows], axis=0)
    np.testing.assert_array_equal(counted, np.bincount(decided[: int(counted.sum())], minlength=CLASSES))
    np.testing.assert_array_equal(np.bincount(decided, minlength=CLASSES), np.bincount(top1[picks], minlength=10))
    if not shifted:
        assert alerts == []
        return
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert.state == "open" and alert.model == "classifier@1.0.0" and alert.threshold == 0.01
    # the p-value at the window that opened it: Pearson's chi-square test of homogeneity of the horizon's class counts
    # and the reference's (2 x K table over the classes either side has seen, no continuity correction)
    end = next(i for i, w in enumerate(windows) if w["end_ns"] == alert.opened_ns)
    live = np.sum([w["predictions"] for w in windows[max(0, end + 1 - HORIZON) : end + 1]], axis=0)
    seen = (ref > 0) | (live > 0)
    expected = stats.chi2_contingency(np.stack([live[seen], ref[seen]]), correction=False)
    assert alert.value == pytest.approx(expected.pvalue, rel=1e-9) and alert.value <= 0.01
