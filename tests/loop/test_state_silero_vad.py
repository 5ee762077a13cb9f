"""A real public stateful non-image model in the loop: silero-vad (MIT), the ONNX file inside its pip wheel (a dev
dependency installed with ``pip install --no-deps silero-vad==6.2.3``; never downloaded at run time).

The model takes an audio window (``input``: 64 samples of context and a 512-sample chunk, dynamic
``[batch x samples]``), its recurrent ``state`` (``[2 x batch x 128]``) and the sample rate ``sr`` (an int64
scalar), and returns the speech probability ``output`` and the next state ``stateN`` (all output dimensions
dynamic). The loop runs it from ``device.toml`` — ``[model.shapes]``, ``[model.state]``, ``[model.inputs.input]``
fed by an int16 microphone slot scaled to [-1, 1) and ``[model.inputs.sr]`` a constant — on a seeded synthetic
signal; its outputs must equal bare onnxruntime's exactly, with the same state carry done by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "models"))  # dynamic_models.py
from dynamic_models import SILERO_INSTALL, silero_vad_path

from edge.device.service import build_service
from edge.loop.clock import LockstepClock
from edge.loop.config import load_config

VAD = silero_vad_path()
pytestmark = pytest.mark.skipif(VAD is None, reason=f"the silero-vad wheel is not installed: {SILERO_INSTALL}")

SR, CHUNK, CONTEXT, FRAMES = 16000, 512, 64, 48
WINDOW = CONTEXT + CHUNK  # silero-vad 5+ reads each 512-sample chunk after the last 64 samples of the one before
SCALE = 1.0 / 32768.0

CONFIG = """
[loop]
rate_hz = 31.25

[model]
package = "{model}"
threads = 1

[model.shapes]
input = "1x{window}"
state = [2, 1, 128]

[model.state]
stateN = "state"

[model.inputs.input]
sensor = "mic"
scale = {scale!r}

[model.inputs.sr]
value = {sr}

[sensors.mic]
source = "push"
shape = [{window}]
dtype = "int16"

[policy]
kind = "regression"
size = 1
"""


def synthetic_speechlike(seed: int = 7) -> np.ndarray:
    """``FRAMES`` windows (``WINDOW`` samples) of int16 audio at 16 kHz: quiet noise, then a voiced-like burst (a
    140 Hz glottal pulse train through two formant-like resonances, amplitude-modulated at 4 Hz), then noise again.
    Seeded."""
    rng = np.random.default_rng(seed)
    n = FRAMES * CHUNK
    t = np.arange(n) / SR
    noise = rng.normal(0, 0.003, n)
    pulses = np.zeros(n)
    pulses[:: SR // 140] = 1.0
    kernel_t = np.arange(400) / SR
    formants = np.exp(-kernel_t * 300) * (
        np.sin(2 * np.pi * 700 * kernel_t) + 0.6 * np.sin(2 * np.pi * 1200 * kernel_t)
    )
    voiced = np.convolve(pulses, formants)[:n] * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    envelope = np.zeros(n)
    envelope[12 * CHUNK : 36 * CHUNK] = 1.0
    x = noise + 0.3 * envelope * voiced / np.abs(voiced).max()
    samples = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    windows = np.zeros((FRAMES, WINDOW), np.int16)  # the microphone source's windows: 64 old + 512 new samples
    for i in range(FRAMES):
        start = i * CHUNK - CONTEXT
        windows[i, max(0, -start) :] = samples[max(0, start) : (i + 1) * CHUNK]
    return windows


class OutputTap:
    """Records the model's outputs of every frame (copies; the test's own buffers)."""

    def __init__(self) -> None:
        self.prob = np.full(FRAMES, np.nan, np.float32)
        self.state = np.zeros((2, 1, 128), np.float32)
        self.n = 0

    def bind(self, ctx, model) -> None:
        self.model = model

    def on_frame(self, ctx) -> None:
        if self.n < FRAMES and ctx.outputs[0].size:
            self.prob[self.n] = ctx.outputs[0].reshape(-1)[0]
            np.copyto(self.state, ctx.outputs[1])
            self.n += 1

    def on_event(self, kind, fields) -> None:
        pass

    def close(self) -> None:
        pass


def _bare(audio: np.ndarray, carry: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Bare onnxruntime, one thread, the state carried by hand (or not)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(VAD), so, providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(SR, np.int64)
    probs = np.zeros(FRAMES, np.float32)
    for i, chunk in enumerate(audio):
        x = (chunk.astype(np.float32) * np.float32(SCALE))[None]
        out, state_next = sess.run(None, {"input": x, "state": state, "sr": sr})
        probs[i] = out[0, 0]
        if carry:
            state = state_next
    return probs, state_next


def test_silero_vad_in_the_loop_equals_bare_onnxruntime(tmp_path: Path) -> None:
    audio = synthetic_speechlike()
    cfg_path = tmp_path / "device.toml"
    cfg_path.write_text(CONFIG.format(model=VAD, window=WINDOW, scale=SCALE, sr=SR))
    tap = OutputTap()
    service = build_service(load_config(cfg_path), clock=LockstepClock(), taps=[tap])
    try:
        loop = service.loop
        model = loop.model
        assert model.outputs_pending and model.report.warmup_runs == 0  # nothing was run at load
        mic = loop.slot("mic")
        for chunk in audio:
            mic.push(chunk, loop.schedule.next_ns)
            d = loop.step()
            assert not d.fallback, d.snapshot()
        assert model.outputs[0].shape == (1, 1) and model.outputs[1].shape == (2, 1, 128)
        assert loop.model_errors == 0 and tap.n == FRAMES
    finally:
        service.close()
    want, want_state = _bare(audio)
    np.testing.assert_array_equal(tap.prob, want)
    np.testing.assert_array_equal(tap.state, want_state)
    stateless, _ = _bare(audio, carry=False)
    assert not np.array_equal(stateless, want)  # the carried state matters: this test would see it missing
    # and the real model hears the burst (chunks 12 to 35) and not the noise around it
    assert want[12:36].min() > 0.5 and want[:12].max() < 0.2 and want[40:].max() < 0.2


def test_silero_vad_bad_state_mapping_is_refused_at_load(tmp_path: Path) -> None:
    cfg_path = tmp_path / "device.toml"
    cfg_path.write_text(
        CONFIG.format(model=VAD, window=WINDOW, scale=SCALE, sr=SR).replace('stateN = "state"', 'stateN = "sr"')
    )
    with pytest.raises(
        Exception, match=r"state\.stateN: expected output stateN\[-1x-1x-1\] float32 to match input sr\[\] int64"
    ):
        build_service(load_config(cfg_path), clock=LockstepClock())
