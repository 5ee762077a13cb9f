"""The reference profile: what a model's inputs and outputs looked like on the data it was validated on.

A profile names the drift features of a model, where each comes from on the device (the preprocessing pass's
per-channel statistics, or a model output), the bin edges the device sketches it on, and the reference counts and
moments the collector compares live windows with. It is a JSON file named by the model package's manifest
(``[reference_profile] file = "profile.json"``); the format is described in docs/PROTOCOL.md ("Reference profile").
A package without one gets :func:`default_profile`: per-channel pixel mean and std on fixed bins over 0..255,
with no reference counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.contracts import Model
from edge.errors import ConfigError

__all__ = [
    "PROFILE_SCHEMA",
    "FeatureSpec",
    "PcaBasis",
    "ReferenceProfile",
    "default_profile",
    "load_profile",
    "profile_for_model",
    "save_profile",
]

PROFILE_SCHEMA = 1
SOURCE_KINDS = ("stats", "confidence", "output", "output_max", "pca_error", "detection_count", "detection_score")
MAX_EDGES = 256
MAX_CLASSES = 4096  # reference prediction counts, as window.predictions (PROTOCOL.md §6)


@dataclass(frozen=True)
class FeatureSpec:
    """One drift feature: ``name``; ``source`` (``{"kind": "stats", "stat": "mean"|"std", "channel": c}``,
    ``{"kind": "confidence"}``, ``{"kind": "output", "output": i, "index": j}`` (one element of output ``i``,
    dequantized), ``{"kind": "output_max", "output": i}`` (its largest element, e.g. the top-1 score) or
    ``{"kind": "pca_error", "output": i}`` (the squared reconstruction error of output ``i`` in the profile's
    PCA basis), ``{"kind": "detection_count", "class": c}`` (a detection policy's detections of class ``c`` this
    frame) or ``{"kind": "detection_score", "class": c}`` (the best score among them; NaN when there is none, so
    the NaN bin counts the frames without one)); ``edges`` float64 (E,), strictly increasing; ``counts`` int64
    (E + 2,) reference counts in the sketch kernel's layout (underflow, E - 1 bins, overflow, NaN), all zero when
    unknown; ``moments`` float64 (5,) = (count, mean, M2, min, max)."""

    name: str
    source: Mapping[str, Any]
    edges: np.ndarray
    counts: np.ndarray
    moments: np.ndarray


@dataclass(frozen=True)
class PcaBasis:
    """An embedding output's PCA: ``mean`` float64 (D,), ``basis`` float64 (K, D) with orthonormal rows."""

    output: int
    mean: np.ndarray
    basis: np.ndarray


@dataclass(frozen=True)
class ReferenceProfile:
    """A model's drift features and their reference distributions. ``profile_id``: the first 16 hex digits of
    the sha256 of the canonical JSON (what window records name in ``profile``). ``prediction_output``: the
    classification output whose top-1 class the device counts (``window.predictions``); ``prediction_counts``:
    int64 (K,), the reference frames per top-1 class of that output (what the collector's chi-square compares
    the live class mix with), or None when unknown."""

    features: tuple[FeatureSpec, ...]
    pca: PcaBasis | None = None
    prediction_output: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    prediction_counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.prediction_counts is not None and self.prediction_output is None:
            raise ConfigError("reference profile prediction.counts: expected a prediction output they count, got none")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def n_edges(self) -> int:
        """The widest feature's edge count (the sketch arrays are padded to it)."""
        return max(len(f.edges) for f in self.features)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": PROFILE_SCHEMA,
            "features": [
                {
                    "name": f.name,
                    "source": dict(f.source),
                    "edges": [float(e) for e in f.edges],
                    "counts": [int(c) for c in f.counts],
                    "moments": [float(m) for m in f.moments],
                }
                for f in self.features
            ],
        }
        if self.pca is not None:
            doc["pca"] = {
                "output": self.pca.output,
                "mean": self.pca.mean.tolist(),
                "basis": self.pca.basis.tolist(),
            }
        if self.prediction_output is not None:
            doc["prediction"] = {"output": self.prediction_output}
            if self.prediction_counts is not None:  # absent, not null: a profile without counts keeps its id
                doc["prediction"]["counts"] = [int(c) for c in self.prediction_counts]
        return doc

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces; non-finite moments as null), UTF-8."""
        doc = self.to_json()
        for f in doc["features"]:
            f["moments"] = [m if np.isfinite(m) else None for m in f["moments"]]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @property
    def profile_id(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]


def _bad(where: str, expected: str, got: object) -> ConfigError:
    shown = repr(got)
    return ConfigError(f"reference profile {where}: expected {expected}, got {shown[:80]}")


def _array(where: str, x: object, dtype: type, ndim: int) -> np.ndarray:
    try:
        a = np.asarray([np.nan if v is None else v for v in x] if ndim == 1 else x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _bad(where, f"an array of {np.dtype(dtype).name}", x) from exc
    if a.ndim != ndim:
        raise _bad(where, f"a {ndim}-d array", x)
    return a


def _source(where: str, s: object, n_outputs: int | None) -> dict[str, Any]:
    if not isinstance(s, Mapping) or s.get("kind") not in SOURCE_KINDS:
        raise _bad(f"{where}.source", f"a table with kind one of {SOURCE_KINDS}", s)
    kind = s["kind"]
    if kind == "stats":
        if s.get("stat") not in ("mean", "std") or type(s.get("channel")) is not int or s["channel"] < 0:
            raise _bad(f"{where}.source", "stat 'mean' or 'std' and an integer channel >= 0", s)
    elif kind in ("output", "output_max", "pca_error"):
        if type(s.get("output")) is not int or s["output"] < 0:
            raise _bad(f"{where}.source", "an integer output index >= 0", s)
        if kind == "output" and (type(s.get("index")) is not int or s["index"] < 0):
            raise _bad(f"{where}.source", "an integer element index >= 0", s)
    elif kind in ("detection_count", "detection_score"):
        if type(s.get("class")) is not int or s["class"] < 0:
            raise _bad(f"{where}.source", "an integer class index >= 0", s)
    return dict(s)


def profile_from_json(doc: object) -> ReferenceProfile:
    """Validate a decoded profile document (:class:`ConfigError` naming the field on anything wrong)."""
    if not isinstance(doc, Mapping):
        raise _bad("", "a JSON object", doc)
    if doc.get("schema") != PROFILE_SCHEMA:
        raise _bad("schema", str(PROFILE_SCHEMA), doc.get("schema"))
    raw = doc.get("features")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 256:
        raise _bad("features", "a list of 1..256 features", raw)
    features, names = [], set()
    for i, f in enumerate(raw):
        where = f"features[{i}]"
        if not isinstance(f, Mapping) or not isinstance(f.get("name"), str) or not f["name"]:
            raise _bad(where, "a table with a non-empty name", f)
        if f["name"] in names:
            raise _bad(f"{where}.name", "a unique name", f["name"])
        names.add(f["name"])
        edges = _array(f"{where}.edges", f.get("edges", ()), np.float64, 1)
        if not 2 <= len(edges) <= MAX_EDGES or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise _bad(f"{where}.edges", f"2..{MAX_EDGES} finite, strictly increasing edges", f.get("edges"))
        counts = _array(f"{where}.counts", f.get("counts", [0] * (len(edges) + 2)), np.int64, 1)
        if counts.shape != (len(edges) + 2,) or np.any(counts < 0):
            raise _bad(f"{where}.counts", f"{len(edges) + 2} counts >= 0 (underflow, bins, overflow, NaN)", counts)
        moments = _array(f"{where}.moments", f.get("moments", [0, 0, 0, None, None]), np.float64, 1)
        if moments.shape != (5,):
            raise _bad(f"{where}.moments", "5 numbers (count, mean, M2, min, max)", f.get("moments"))
        features.append(FeatureSpec(f["name"], _source(where, f.get("source"), None), edges, counts, moments))
    pca = None
    if "pca" in doc:
        p = doc["pca"]
        if not isinstance(p, Mapping) or type(p.get("output")) is not int:
            raise _bad("pca", "a table with output, mean, basis", p)
        mean = _array("pca.mean", p.get("mean", ()), np.float64, 1)
        basis = _array("pca.basis", p.get("basis", ()), np.float64, 2)
        if basis.shape[1:] != mean.shape or basis.shape[0] < 1:
            raise _bad("pca.basis", f"K x {mean.shape[0]} rows", list(basis.shape))
        pca = PcaBasis(p["output"], mean, basis)
    if any(f.source["kind"] == "pca_error" for f in features) and pca is None:
        raise _bad("pca", "a PCA basis for the pca_error feature", None)
    pred, pred_counts = _prediction(doc.get("prediction"))
    return ReferenceProfile(tuple(features), pca, pred, prediction_counts=pred_counts)


def _prediction(p: object) -> tuple[int | None, np.ndarray | None]:
    """``prediction``: ``{"output": i}`` and, optionally, ``"counts"``: the reference top-1 class counts."""
    if p is None:
        return None, None
    if not isinstance(p, Mapping):
        raise _bad("prediction", "a table with output (and optionally counts)", p)
    pred = p.get("output")
    if pred is not None and (type(pred) is not int or pred < 0):
        raise _bad("prediction.output", "an integer output index >= 0", pred)
    if "counts" not in p:
        return pred, None
    raw = p["counts"]
    if pred is None:
        raise _bad("prediction.output", "the output the counts are of (counts given without it)", pred)
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_CLASSES or any(type(c) is not int or c < 0 for c in raw):
        raise _bad("prediction.counts", f"a list of 2..{MAX_CLASSES} integer counts >= 0 (frames per class)", raw)
    return pred, np.asarray(raw, dtype=np.int64)


def load_profile(source: str | Path | bytes) -> ReferenceProfile:
    """A profile from a JSON file path or its bytes."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"reference profile: expected UTF-8 JSON, got undecodable bytes ({exc})") from exc
    return profile_from_json(doc)


def save_profile(profile: ReferenceProfile, path: str | Path) -> Path:
    """Write ``profile`` as canonical JSON (written to a temporary name, then renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(profile.to_bytes())
    tmp.replace(path)
    return path


def stats_feature(stat: str, channel: int, edges: Sequence[float]) -> FeatureSpec:
    e = np.asarray(edges, dtype=np.float64)
    return FeatureSpec(
        f"pixel_{stat}_c{channel}",
        {"kind": "stats", "stat": stat, "channel": channel},
        e,
        np.zeros(len(e) + 2, np.int64),
        np.array([0.0, 0.0, 0.0, np.nan, np.nan]),
    )


def default_profile(channels: int, bins: int = 16) -> ReferenceProfile:
    """Per-channel pixel mean (edges over 0..255) and std (edges over 0..128), ``bins`` equal bins each, no
    reference counts: what a package without a profile is sketched on."""
    if channels < 1:
        raise ConfigError(f"default_profile: expected channels >= 1, got {channels}")
    mean_edges = np.linspace(0.0, 255.0, bins + 1)
    std_edges = np.linspace(0.0, 128.0, bins + 1)
    feats = [stats_feature("mean", c, mean_edges) for c in range(channels)]
    feats += [stats_feature("std", c, std_edges) for c in range(channels)]
    return ReferenceProfile(tuple(feats))


def profile_for_model(model: Model | None, channels: int) -> ReferenceProfile:
    """The profile named by ``model.package``'s manifest (a model loaded from a package), or
    :func:`default_profile` for a bare model or an empty slot (``None``)."""
    pkg = getattr(model, "package", None)
    name = ""
    if pkg is not None:
        name = str(pkg.manifest.get("reference_profile", {}).get("file", "") or "")
    if not name:
        return default_profile(channels)
    if name not in pkg.files:
        raise ConfigError(f"reference_profile.file: expected a file of the package, got {name!r}")
    return load_profile(pkg.files[name])
