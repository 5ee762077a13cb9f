"""``edge replay REC.mcap --package candidate.tgz``: run a candidate model through the real loop in lockstep from a
recording made by ``edge run --record`` and report how its decisions differ from the recorded ones.

The loop is the one ``edge run`` builds (:func:`~edge.device.service.build_service`) from the recording's own
device.toml (stored in the recording, see :mod:`edge.io.mcap_schema`) or from ``--config``, with these changes:
the model package is the candidate; every sensor is fed by pushes (only the primary sensor is recorded, so the
others stay empty and go stale: a multi-sensor loop replays its primary only); no telemetry, recorder, watchdog,
shadow, ZeroMQ or ROS 2 sink. :class:`~edge.io.replay.ReplayDriver` steps it on a lockstep clock at the recorded
ticks with the recorded images and capture times, so the same model and configuration give the recorded decisions.

The report (:meth:`ReplayReport.write`, into ``--report DIR``): ``summary.json`` (the numbers printed),
``frames.csv`` (one row per compared frame) and ``commands.png`` (recorded and replayed commands or actions per
frame) when matplotlib is installed; it is optional on a device, and the report says when the plot was left out.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.device.service import build_service
from edge.errors import ConfigError
from edge.io.replay import DecisionDiff, Recording, ReplayDriver, compare_decisions, frame_difference
from edge.loop.clock import LockstepClock
from edge.loop.config import DeviceConfig, load_config, parse_config

__all__ = ["ReplayReport", "recorded_config", "replay", "replay_config"]

CSV_COLUMNS = (
    "seq",
    "tick_ns",
    "agree",
    "command_diff",
    "recorded_action",
    "replayed_action",
    "recorded_label",
    "replayed_label",
    "recorded_health",
    "replayed_health",
    "recorded_fallback",
    "replayed_fallback",
    "recorded_command",
    "replayed_command",
)


@dataclass
class ReplayReport:
    """The outcome of one replay: the recorded and replayed decisions (plain dicts, frame order), their
    :class:`~edge.io.replay.DecisionDiff`, the model versions, and the replay's speed (frames per wall second)."""

    recording: Path
    package: Path
    recorded_model: str
    replayed_model: str
    recorded: list[dict[str, Any]]
    replayed: list[dict[str, Any]]
    diff: DecisionDiff
    tolerance: float
    wall_s: float

    @property
    def frames_per_s(self) -> float:
        return len(self.replayed) / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers of the report (``summary.json``)."""
        d = self.diff
        return {
            "recording": str(self.recording),
            "package": str(self.package),
            "recorded_model": self.recorded_model,
            "replayed_model": self.replayed_model,
            "frames": d.frames,
            "agreement": d.agreement,
            "max_command_diff": d.max_command_diff,
            "rms_command_diff": d.rms_command_diff,
            "first_difference": d.first_difference,
            "tolerance": self.tolerance,
            "replay_frames_per_s": self.frames_per_s,
        }

    def lines(self) -> list[str]:
        """The human-readable summary ``edge replay`` prints."""
        d = self.diff
        first = "none" if d.first_difference < 0 else f"seq {d.first_difference}"
        return [
            f"edge replay: {self.recording.name}: {d.frames} frames, recorded by {self.recorded_model}, "
            f"replayed with {self.replayed_model}",
            f"  agreement {100 * d.agreement:.2f} % (action, fallback, health; command within {self.tolerance:g})",
            f"  command difference: max {d.max_command_diff:.6g}, RMS {d.rms_command_diff:.6g}; "
            f"first difference: {first}",
            f"  replayed at {self.frames_per_s:.0f} frames/s",
        ]

    def rows(self) -> list[dict[str, Any]]:
        """One row per compared frame (matched by ``seq``), the columns of :data:`CSV_COLUMNS`."""
        by_seq = {d["seq"]: d for d in self.replayed}
        out = []
        for r in self.recorded:
            p = by_seq.get(r["seq"])
            if p is None:
                continue
            agree, worst = frame_difference(r, p, self.tolerance)
            out.append(
                {
                    "seq": r["seq"],
                    "tick_ns": r["tick_ns"],
                    "agree": int(agree),
                    "command_diff": worst,
                    **{f"recorded_{k}": _cell(r[k]) for k in ("action", "label", "health", "fallback", "command")},
                    **{f"replayed_{k}": _cell(p[k]) for k in ("action", "label", "health", "fallback", "command")},
                }
            )
        return out

    def write(self, folder: str | Path) -> list[Path]:
        """Write ``summary.json``, ``frames.csv`` and (with matplotlib) ``commands.png`` into ``folder`` (made if
        missing); returns the files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        rows = self.rows()
        with (folder / "frames.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        written = [folder / "frames.csv"]
        plot = folder / "commands.png"
        summary["plot"] = _plot(rows, plot, self.recorded_model, self.replayed_model)
        if summary["plot"]:
            written.append(plot)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return [folder / "summary.json", *written]


def _cell(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return " ".join(f"{x:.9g}" for x in v)
    return int(v) if isinstance(v, bool) else v


def _plot(rows: Sequence[dict[str, Any]], path: Path, recorded: str, replayed: str) -> str | None:
    """Recorded against replayed command elements (regression) or actions (classification), per frame; the
    file name, or ``None`` when matplotlib is not installed (optional on a device)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    seq = [r["seq"] for r in rows]
    commands = [
        (
            [float(x) for x in str(r["recorded_command"]).split()],
            [float(x) for x in str(r["replayed_command"]).split()],
        )
        for r in rows
    ]
    size = max((len(a) for a, _b in commands), default=0)
    series = (
        [(f"command[{i}]", [a[i] for a, _ in commands], [b[i] for _, b in commands]) for i in range(size)]
        if size
        else [("action", [r["recorded_action"] for r in rows], [r["replayed_action"] for r in rows])]
    )
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2.4 * len(series)), sharex=True, squeeze=False)
    for ax, (name, rec, rep) in zip(axes[:, 0], series, strict=True):
        ax.plot(seq, rec, label=f"recorded ({recorded})", lw=1.2)
        ax.plot(seq, rep, label=f"replayed ({replayed})", lw=1.0, ls="--")
        ax.set_ylabel(name)
        ax.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("frame (seq)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def recorded_config(recording: Recording, config: str | Path | None = None) -> DeviceConfig:
    """``config`` loaded if given, else the device.toml stored in ``recording`` (relative paths in it resolve
    against the folder it was read from when recorded)."""
    if config is not None:
        return load_config(config)
    stored = recording.config()
    if stored is None:
        raise ConfigError(
            f"recording {recording.path}: expected its device.toml (recorded by edge run --record), found none; "
            f"pass --config device.toml"
        )
    try:
        return parse_config(tomllib.loads(stored["toml"]), Path(stored["path"]))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recording {recording.path}: its stored device.toml does not parse: {exc}") from exc


def replay_config(cfg: DeviceConfig, package: Path) -> DeviceConfig:
    """``cfg`` changed for a replay with ``package`` (see the module docstring)."""
    if not package.exists():
        raise ConfigError(f"replay --package: expected a model package, got {package} (not found)")
    sensors = tuple(dataclasses.replace(s, source="push", options={}, ros2=None) for s in cfg.sensors)
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, package=package),
        sensors=sensors,
        telemetry=None,
        record=None,
        zmq_endpoint=None,
        ros2_sink=None,
        watchdog_ms=None,
        watchdog_endpoint=None,
        shadow=None,
        log_every=0,
    )


def replay(
    recording_path: str | Path,
    package: str | Path,
    *,
    config: str | Path | None = None,
    tolerance: float = 0.0,
    max_frames: int | None = None,
) -> ReplayReport:
    """Replay the recording at ``recording_path`` through the loop with ``package`` and compare with the recorded
    decisions (``tolerance``: the largest command difference that still agrees; ``config``: a device.toml to use
    instead of the recorded one)."""
    recording_path, package = Path(recording_path), Path(package).resolve()
    base = recorded_config(Recording(recording_path, ""), config)
    recording = Recording(recording_path, next(s.name for s in base.sensors if s.primary))
    recorded = recording.decisions()
    if not recorded:
        raise ConfigError(f"recording {recording_path}: expected recorded decisions on /edge/decision, found none")
    clock = LockstepClock()
    service = build_service(replay_config(base, package), clock=clock)
    try:
        t0 = time.perf_counter()
        replayed = ReplayDriver(service.loop, clock, recording).run(max_frames)
        wall = time.perf_counter() - t0
        version = service.loop.stage.version
    finally:
        service.close()
    return ReplayReport(
        recording_path,
        package,
        str(recorded[0].get("model", "")),
        str(version),
        recorded,
        replayed,
        compare_decisions(recorded, replayed, tolerance),
        tolerance,
        wall,
    )
