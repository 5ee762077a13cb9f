"""Drift: the reference profile a model ships with, and the window-sketch façade over the native kernel."""

from __future__ import annotations

from edge.drift.profile import FeatureSpec, PcaBasis, ReferenceProfile, default_profile, load_profile, save_profile
from edge.drift.sketch import WindowSketch, latency_edges_us, psi

__all__ = [
    "FeatureSpec",
    "PcaBasis",
    "ReferenceProfile",
    "WindowSketch",
    "default_profile",
    "latency_edges_us",
    "load_profile",
    "psi",
    "save_profile",
]
