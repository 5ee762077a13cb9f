"""The run report: ``summary.json`` and four PNG plots (matplotlib, the ``sim`` extra) — the track with the
trajectory, the lateral error over time, the loop latency histogram, and the drift scores over time with the alert
markers and the timeline's events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from edge.sim.harness_result import RunResult
from edge.sim.track import track_for

from edge.errors import UnavailableError

__all__ = ["write_report"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise UnavailableError(
            "report: expected matplotlib (pip install -e '.[sim]'), got an ImportError: " + str(exc)
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _events(ax, result: RunResult) -> None:
    for t, what in result.events:
        ax.axvline(t, color="0.5", lw=0.8, ls=":")
        ax.text(t, 1.0, f" {what}", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="0.35")
    for e in result.scenario.timeline.entries:
        if e.category != "event":
            end = e.end_s if e.end_s is not None else result.scenario.world.duration_s
            ax.axvspan(e.start_s, end, color="tab:orange", alpha=0.08, lw=0)


def write_report(result: RunResult, folder: Path) -> list[Path]:
    """Write ``summary.json``, ``trajectory.png``, ``lateral_error.png``, ``latency.png`` and ``drift.png`` into
    ``folder`` (created); returns their paths."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    tr, sc = result.trace, result.scenario
    paths = [folder / "summary.json"]
    paths[0].write_text(json.dumps(result.summary(), indent=2) + "\n")

    track, _ = track_for(sc.world.track)
    s = np.linspace(0.0, track.length_m, 2000)
    pts = np.array([track.point_at(v)[:3] for v in s])
    half = track.lane_width_m / 2
    fig, ax = plt.subplots(figsize=(7, 6))
    for side in (-1, 1):
        ax.plot(pts[:, 0] - side * half * np.sin(pts[:, 2]), pts[:, 1] + side * half * np.cos(pts[:, 2]),
                color="0.6", lw=1)  # fmt: skip
    ax.plot(pts[:, 0], pts[:, 1], color="0.8", lw=0.8, ls="--", label="centreline")
    x, y, lat = tr.view("x_m"), tr.view("y_m"), tr.view("lateral_m")
    sc_ = ax.scatter(x, y, c=np.abs(lat), s=3, cmap="viridis", vmin=0, vmax=max(0.3, float(np.abs(lat).max())))
    fig.colorbar(sc_, ax=ax, label="|lateral error| (m)")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{sc.name}: trajectory ({tr.n} frames, {result.lane_departures} lane departures)")
    ax.legend(loc="upper right", fontsize=8)
    paths.append(folder / "trajectory.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.6))
    t = tr.view("t_s")
    ax.plot(t, lat, lw=1, label="lateral error")
    limit = sc.assertions.max_lateral_error_m
    if limit is not None:
        ax.axhline(limit, color="tab:red", lw=0.8, ls="--", label=f"assertion ±{limit} m")
        ax.axhline(-limit, color="tab:red", lw=0.8, ls="--")
    fb = tr.view("fallback")
    if fb.any():
        ax.scatter(t[fb], lat[fb], s=6, color="tab:red", label="fallback frames", zorder=3)
    _events(ax, result)
    ax.set_xlabel("scenario time (s)")
    ax.set_ylabel("lateral error (m, left > 0)")
    ax.set_title(f"{sc.name}: lateral error (max {result.max_lateral_m:.2f} m, rms {result.rms_lateral_m:.3f} m)")
    ax.legend(loc="lower left", fontsize=8)
    paths.append(folder / "lateral_error.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.6))
    us = tr.view("latency_us")
    if len(us):
        ms = us / 1e3
        ax.hist(ms, bins=np.geomspace(max(ms.min(), 1e-3), max(ms.max(), 2e-3), 60), color="tab:blue")
        for q, ls in ((50, "-"), (99, "--")):
            v = np.percentile(us, q) / 1e3
            ax.axvline(v, color="k", lw=0.8, ls=ls, label=f"p{q} {v:.2f} ms")
        ax.axvline(1e3 / sc.world.rate_hz, color="tab:red", lw=0.8, label=f"period {1e3 / sc.world.rate_hz:.0f} ms")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel("loop.step() wall time per frame (ms)")
    ax.set_ylabel("frames")
    ax.set_title(f"{sc.name}: loop latency ({result.deadline_misses} deadline misses)")
    paths.append(folder / "latency.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.6))
    d = result.drift
    start_ns = d.get("start_ns", 0)
    if d.get("values"):
        tt = (np.array(d["t_ns"], dtype=np.float64) - start_ns) * 1e-9
        v = np.array([[np.nan if x is None else x for x in row] for row in d["values"]], dtype=np.float64)
        for j, name in enumerate(d["features"]):
            ax.plot(tt, v[:, j], lw=1, label=name)
    ax.axhline(0.25, color="tab:red", lw=0.8, ls="--", label="alert threshold (PSI 0.25)")
    opened: dict[float, list[str]] = {}
    for a in result.alerts:
        opened.setdefault(a.t_s, []).append(a.feature)
    for t_s, feats in opened.items():
        ax.axvline(t_s, color="tab:red", lw=1.2)
        label = feats[0] if len(feats) == 1 else f"{len(feats)} features"
        ax.text(t_s, 0.02, f" alert: {label}", transform=ax.get_xaxis_transform(), fontsize=7,
                color="tab:red", rotation=90, va="bottom")  # fmt: skip
    _events(ax, result)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0.0)
    ax.set_xlim(0, sc.world.duration_s)
    ax.set_xlabel("scenario time (s)")
    ax.set_ylabel("PSI vs reference (10-window horizon)")
    ax.set_title(f"{sc.name}: drift scores at the collector ({len(result.alerts)} alert events)")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    paths.append(folder / "drift.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths
