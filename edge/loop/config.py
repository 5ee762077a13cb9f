"""``device.toml`` → frozen dataclasses, validated; every error names the key, what was expected and what arrived.

See README.md ("Loop") for a complete sample. Tables: ``[device]`` (``id``); ``[loop]`` (``rate_hz``,
``deadline_ms``, ``cpus``, ``fifo_priority``, and ``[loop.budgets_ms]`` with a budget per stage); ``[model]``
(``package``, ``threads``, ``providers``, ``mean``, ``std``, ``channel_order``, ``layout``; ``[model.shapes]``
input name = "1x512"; ``[model.state]`` output name = "input name"; ``[model.inputs.<input name>]`` with ``sensor``,
``scale``, ``offset`` or a constant ``value``); ``[sensors.<name>]``
(``source`` = "zmq" | "push" | "video" | "camera" | "v4l2" | "mcap", ``endpoint``, ``bind``, ``stamp``,
``shape``, ``dtype``, ``channel_order``, ``stale_ms``, ``min``, ``max``, ``frozen_frames``, ``primary``); ``[sync]``
(``mode``, ``max_skew_ms``); ``[policy]``
(``kind`` = "classification" | "regression" | "detection" and their keys; detection's are
:data:`DETECTION_KEYS` and an optional ``[policy.anchors]`` table, see edge.loop.detect); ``[fallback]``;
``[sinks]`` (``zmq_endpoint``, ``log_every``); ``[watchdog]`` (``timeout_ms``, ``endpoint``); ``[swap]``;
``[shadow]``; and ``[telemetry]`` (opaque here: handed to ``edge.telemetry.tap_from_config``); ``[record]``
(``path``, ``max_bytes``, ``keep``, ``queue_frames``: the MCAP recorder of edge.io.record). The keys of the
robot I/O sources (``path``, ``rate``, ``loop``, ``fps``, ``drop_probability``, ``seed``, ``resolution``,
``pixel_format``) are kept together in ``SensorConfig.options`` for ``edge.io.factory``. Relative paths are
relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import read_toml
from edge.contracts import STAGES
from edge.errors import ConfigError
from edge.loop.feeds import InputBinding
from edge.loop.settings import Timing
from edge.models.shapes import parse_shape
from edge.schema import (
    Field,
    Schema,
    boolean,
    in_file,
    integer,
    number,
    numbers,
    opaque_table,
    string,
    strings,
    table,
    table_of,
)

__all__ = [
    "DETECTION_KEYS",
    "DeviceConfig",
    "LoopConfig",
    "ModelConfig",
    "PolicyConfig",
    "RecordConfig",
    "SensorConfig",
    "ShadowConfig",
    "load_config",
    "parse_config",
]


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float
    deadline_ms: float | None
    cpus: tuple[int, ...] | None
    fifo_priority: int
    budgets_ms: dict[str, float]  # per-stage budgets by STAGES name (ms); empty: none

    def timing(self) -> Timing:
        """The loop's :class:`~edge.loop.settings.Timing` (budgets in µs; the first tick at the first frame)."""
        budgets = {k: v * 1e3 for k, v in self.budgets_ms.items()}
        return Timing(rate_hz=self.rate_hz, deadline_ms=self.deadline_ms, stage_budgets_us=budgets or None)


@dataclass(frozen=True)
class ModelConfig:
    package: Path
    threads: int | None
    providers: tuple[str, ...] | None
    mean: tuple[float, ...] | float | None
    std: tuple[float, ...] | float | None
    channel_order: str | None
    layout: str | None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # [model.shapes]: input name → shape
    state: dict[str, str] = field(default_factory=dict)  # [model.state]: output name → input name
    inputs: dict[str, InputBinding] = field(default_factory=dict)  # [model.inputs.<input>]: what feeds it


@dataclass(frozen=True)
class SensorConfig:
    name: str
    source: str  # "zmq" | "push"
    endpoint: str | None
    bind: bool
    stamp: str
    shape: tuple[int, ...]
    dtype: str
    channel_order: str
    stale_ms: float | None
    lo: float | None
    hi: float | None
    frozen_frames: int
    primary: bool
    options: dict[str, Any] = field(default_factory=dict)  # the robot I/O source's keys (_IO_KEYS), by key
    ros2: Ros2SensorConfig | None = None  # source "ros2": its topic, message type and DDS domain


@dataclass(frozen=True)
class RecordConfig:
    """``[record]``: the MCAP recorder (``edge run --record PATH`` sets ``path``)."""

    path: Path
    max_bytes: int = 256 * 1024 * 1024  # one file's size before it is rotated (bytes)
    keep: int = 4  # rotated files kept, the current one included (older ones are deleted)
    queue_frames: int = 16  # frames handed to the writer before it drops (counted); each a frame buffer


@dataclass(frozen=True)
class PolicyConfig:
    kind: str  # "classification" | "regression" | "detection"
    actions: tuple[str, ...]
    min_confidence: float
    low_confidence_action: str | None
    size: int
    lo: tuple[float, ...] | float | None
    hi: tuple[float, ...] | float | None
    max_rate: tuple[float, ...] | float | None
    detection: dict[str, Any] | None = None  # kind "detection": DETECTION_KEYS and "anchors" (edge.loop.detect)


@dataclass(frozen=True)
class ShadowConfig:
    package: Path
    every: int
    mode: str | None
    tolerance: float


@dataclass(frozen=True)
class DeviceConfig:
    path: Path
    device_id: str | None
    loop: LoopConfig
    model: ModelConfig
    sensors: tuple[SensorConfig, ...]
    sync_mode: str
    max_skew_ms: float | None
    policy: PolicyConfig
    hold_frames: int
    recover_frames: int
    safe_action: str | None
    safe_command: tuple[float, ...]
    zmq_endpoint: str | None
    log_every: int
    watchdog_ms: float | None
    watchdog_endpoint: str | None
    swap_failure_frames: int
    swap_probation_frames: int
    shadow: ShadowConfig | None
    telemetry: dict[str, Any] | None
    record: RecordConfig | None = None
    ros2_sink: dict[str, Any] | None = None  # [sinks.ros2] (edge.io.ros2_sink.Ros2SinkSettings keys)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_config(path: str | Path) -> DeviceConfig:
    """Read and validate ``device.toml`` (errors name the file, then the key)."""
    path = Path(path).resolve()
    doc = read_toml(path, "config")
    with in_file(path):
        return parse_config(doc, path)


def _path(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


_DTYPES = ("uint8", "int8", "int16", "int32", "float32", "float64")
# robot I/O sources (edge.io): their kinds and keys, gathered into SensorConfig.options
_IO_SOURCES = ("video", "camera", "v4l2", "mcap")
_IO_KEYS = {
    "path": string(None),  # video file, image folder, camera device or MCAP file
    "rate": string("native", choices=("native", "as_fast_as_loop")),
    "loop": boolean(False),
    "fps": number(None, gt=0),
    "drop_probability": number(0.0, ge=0, lt=1),
    "seed": integer(0),
    "resolution": numbers(None, ints=True, length=2, ge=1),
    "pixel_format": string(None),
}


# --- ROS 2 (edge.io.ros2_source, edge.io.ros2_sink) ------------------------------------------------------------------
# [sensors.<name>] with source = "ros2": ``topic`` (required, e.g. "/camera/image_raw"), ``type`` = "image" |
# "compressed_image" | "imu", ``domain_id`` (default: ROS_DOMAIN_ID, else 0); ``stamp`` and ``channel_order`` apply.
# [sinks.ros2]: decisions and health to ROS 2 topics (keys: edge.io.ros2_sink.Ros2SinkSettings; a plain dict here).
@dataclass(frozen=True)
class Ros2SensorConfig:
    topic: str
    type: str  # "image" | "compressed_image" | "imu"
    domain_id: int | None


_ROS2_KEYS = {
    "topic": string(None, nonempty=True),
    "type": string("image", choices=("image", "compressed_image", "imu")),
    "domain_id": integer(None, ge=0, le=232),
}
_ROS2_SINK = Schema(
    {
        "domain_id": integer(None, ge=0, le=232),
        "cmd_topic": string("/cmd_vel", nonempty=True),
        "decision_topic": string("/edge/decision"),
        "diagnostics_topic": string("/diagnostics", nonempty=True),
        "diagnostics_hz": number(1.0, gt=0),
        "steering_index": integer(0, ge=0),
        "steering_scale": number(1.0),
        "speed_index": integer(-1, ge=-1),
        "speed_scale": number(1.0),
        "cruise_speed": number(0.0),
        "queue": integer(64, ge=1),
    }
)


def _ros2_sensor(key: str, t: dict[str, Any]) -> Ros2SensorConfig | None:
    """Pop the ROS 2 keys of sensor table ``t``; the source's settings when it is "ros2"."""
    keys = {k: t.pop(k) for k in _ROS2_KEYS}
    if t["source"] != "ros2":
        if keys["topic"] is not None:
            raise ConfigError(f"{key}.topic: expected only with source 'ros2', got it with source {t['source']!r}")
        return None
    _required(f"{key}.topic", keys["topic"], "a ROS 2 topic name (source 'ros2'), e.g. '/camera/image_raw'")
    return Ros2SensorConfig(**keys)


# --- [model.shapes], [model.state], [model.inputs.<input name>] (edge.models.shapes, edge.loop.feeds) -----------------
_SHAPE = Field(
    "a shape such as '1x512' or [1, 512]",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(d, int) for d in v)),
)
_BINDING = Schema(
    {
        "sensor": string(None, nonempty=True),
        "scale": number(1.0),
        "offset": number(0.0),
        "value": Field(
            "a number or a list of numbers",
            lambda v: isinstance(v, int | float | list) and not isinstance(v, bool),
            default=None,
        ),
    },
    into=InputBinding,
)


def _model(mt: dict[str, Any], base: Path, sensors: tuple[SensorConfig, ...]) -> ModelConfig:
    """``[model]`` with its shapes parsed and its input bindings checked against the sensors (model specs are
    checked when the model is loaded)."""
    shapes = {n: parse_shape(f"model.shapes.{n}", v) for n, v in mt["shapes"].items()}
    names = [s.name for s in sensors]
    for n, b in mt["inputs"].items():
        b.check(f"model.inputs.{n}")
        if b.sensor is not None and b.sensor not in names:
            raise ConfigError(f"model.inputs.{n}.sensor: expected one of the sensors {names}, got {b.sensor!r}")
    return ModelConfig(**{**mt, "package": _path(base, mt["package"]), "shapes": shapes})


# --- [policy] kind = "detection" (edge.loop.detect.policy_from_config) ---------------------------------------------
_ANCHORS = Schema(
    {
        "input_size_height": integer(ge=1),
        "input_size_width": integer(ge=1),
        "num_layers": integer(ge=1),
        "strides": numbers(ints=True, ge=1),
        "min_scale": number(gt=0),
        "max_scale": number(gt=0),
        "aspect_ratios": numbers((1.0,), ge=0),
        "anchor_offset_x": number(0.5),
        "anchor_offset_y": number(0.5),
        "reduce_boxes_in_lowest_layer": boolean(False),
        "interpolated_scale_aspect_ratio": number(1.0),
        "fixed_anchor_size": boolean(False),
    }
)
DETECTION_KEYS = {
    "format": string("ssd", choices=("ssd", "yolo")),
    "labels": strings(None),
    "score_threshold": number(0.5),
    "iou_threshold": number(0.3, ge=0, le=1),
    "max_detections": integer(16, ge=1),
    # ssd
    "boxes_output": string(None),
    "scores_output": string(None),
    "box_order": string("yxhw", choices=("yxhw", "xywh")),
    "box_scales": numbers((10.0, 10.0, 5.0, 5.0), length=4, ge=0),
    "exp_size": boolean(True),
    "sigmoid": boolean(True),
    "anchors": table(_ANCHORS, optional=True),
    # yolo
    "output": string(None),
    "layout": string("auto", choices=("auto", "rows", "columns")),
    "box_units": string("pixels", choices=("pixels", "normalized")),
    # the rule
    "trigger_classes": strings(None),
    "roi": numbers(None, length=4),
    "min_inside": number(0.5, gt=0, le=1),
    "min_score": number(0.0),
    "trigger_frames": integer(1, ge=1),
}


# ---------------------------------------------------------------------------------------------------------------------
_SENSOR = Schema(
    {
        "source": string("push", choices=("zmq", "push", "ros2", *_IO_SOURCES)),
        "endpoint": string(None),
        "bind": boolean(False),
        "stamp": string("capture", choices=("capture", "receive")),
        "shape": numbers(ints=True),
        "dtype": string("uint8", choices=_DTYPES),
        "channel_order": string("RGB"),
        "stale_ms": number(None, gt=0),
        "min": number(None),
        "max": number(None),
        "frozen_frames": integer(0, ge=0),
        "primary": boolean(False),
        **_IO_KEYS,
        **_ROS2_KEYS,
    }
)
_SCHEMA = Schema(
    {
        "device": table(Schema({"id": string(None)})),
        "loop": table(
            Schema(
                {
                    "rate_hz": number(gt=0),
                    "deadline_ms": number(None, gt=0),
                    "cpus": numbers(None, ints=True),
                    "fifo_priority": integer(0, ge=0, le=99),
                    "budgets_ms": table_of(number(gt=0), keys=STAGES, default={}),
                },
                into=LoopConfig,
            )
        ),
        "model": table(
            Schema(
                {
                    "package": string(),
                    "threads": integer(None, ge=1),
                    "providers": strings(None),
                    "mean": numbers(None, scalar=True),
                    "std": numbers(None, scalar=True),
                    "channel_order": string(None),
                    "layout": string(None, choices=("NCHW", "NHWC")),
                    "shapes": table_of(_SHAPE, default={}),
                    "state": table_of(string(nonempty=True), default={}),
                    "inputs": table_of(table(_BINDING), default={}),
                }
            )
        ),
        "sensors": table_of(table(_SENSOR)),
        "sync": table(
            Schema({"mode": string("latest", choices=("latest", "approximate")), "max_skew_ms": number(None, gt=0)})
        ),
        "policy": table(
            Schema(
                {
                    "kind": string(choices=("classification", "regression", "detection")),
                    "actions": strings(None),
                    "min_confidence": number(0.0, ge=0),
                    "low_confidence_action": string(None),
                    "size": integer(1, ge=1),
                    "min": numbers(None, scalar=True),
                    "max": numbers(None, scalar=True),
                    "max_rate": numbers(None, scalar=True),
                    **DETECTION_KEYS,
                },
                rename={"min": "lo", "max": "hi"},
            )
        ),
        "fallback": table(
            Schema(
                {
                    "hold_frames": integer(3, ge=0),
                    "recover_frames": integer(5, ge=1),
                    "safe_action": string(None),
                    "safe_command": numbers(None, scalar=True),
                }
            )
        ),
        "sinks": table(
            Schema(
                {
                    "zmq_endpoint": string(None),
                    "log_every": integer(0, ge=0),
                    "ros2": table(_ROS2_SINK, optional=True),
                }
            )
        ),
        "watchdog": table(Schema({"timeout_ms": number(None, gt=0), "endpoint": string(None)})),
        "swap": table(Schema({"failure_frames": integer(3, ge=1), "probation_frames": integer(30, ge=1)})),
        "shadow": table(
            Schema(
                {
                    "package": string(),
                    "every": integer(10, ge=1),
                    "mode": string(None, choices=("argmax", "tolerance")),
                    "tolerance": number(0.0, ge=0),
                }
            ),
            optional=True,
        ),
        "telemetry": opaque_table(None),
        "record": table(
            Schema(
                {
                    "path": string(),
                    "max_bytes": integer(256 * 1024 * 1024, ge=1024 * 1024),
                    "keep": integer(4, ge=1),
                    "queue_frames": integer(16, ge=2),
                }
            ),
            optional=True,
        ),
    }
)


def _required(key: str, value: Any, expected: str) -> Any:
    if value is None:
        raise ConfigError(f"{key}: required, but missing; expected {expected}")
    return value


def _sensor(name: str, t: dict[str, Any], base: Path) -> SensorConfig:
    key = f"sensors.{name}"
    ros2 = _ros2_sensor(key, t)
    options = {k: t.pop(k) for k in _IO_KEYS}
    if t["source"] in _IO_SOURCES:
        what = "a camera device path" if t["source"] in ("camera", "v4l2") else f"a file path (source {t['source']!r})"
        options["path"] = _path(base, _required(f"{key}.path", options["path"], what))
    if any(d < 1 for d in t["shape"]):
        raise ConfigError(f"{key}.shape: expected positive dimensions, got {list(t['shape'])}")
    if t["source"] == "zmq":
        _required(f"{key}.endpoint", t["endpoint"], "a string (the ZeroMQ endpoint of source 'zmq')")
    lo, hi = t.pop("min"), t.pop("max")
    return SensorConfig(name=name, lo=lo, hi=hi, options=options, ros2=ros2, **t)


def parse_config(doc: dict[str, Any], path: Path) -> DeviceConfig:
    """Validate a parsed ``device.toml`` (``path``: where it came from, for relative paths and messages)."""
    v = _SCHEMA.read(doc)
    base = path.parent
    if not v["sensors"]:
        raise ConfigError(f"sensors: expected at least one [sensors.<name>] table, got {doc['sensors']!r}")
    sensors = tuple(_sensor(n, t, base) for n, t in v["sensors"].items())
    primaries = [s.name for s in sensors if s.primary]
    if len(primaries) > 1:
        raise ConfigError(f"sensors.*.primary: expected at most one primary sensor, got {primaries}")
    if not primaries:  # the first sensor is the primary
        sensors = (dataclasses.replace(sensors[0], primary=True), *sensors[1:])
    sync = v["sync"]
    if sync["mode"] != "latest":
        _required("sync.max_skew_ms", sync["max_skew_ms"], f"a number > 0 with mode {sync['mode']!r}")
    pt = v["policy"]
    det = {k: pt.pop(k) for k in DETECTION_KEYS}
    if pt["kind"] == "classification":
        _required("policy.actions", pt["actions"], "a non-empty list of strings")
    elif pt["kind"] == "detection":
        pt["actions"] = pt["actions"] or ("go", "brake")
        if det["format"] == "ssd":
            _required(
                "policy.anchors", det["anchors"], "a [policy.anchors] table (MediaPipe SsdAnchorsCalculator options)"
            )
    else:
        pt["actions"] = ()
    policy = PolicyConfig(**pt, detection=det if pt["kind"] == "detection" else None)
    fb, mt, sw, sh = v["fallback"], v["model"], v["swap"], v["shadow"]
    safe_command = fb["safe_command"]
    if isinstance(safe_command, float):
        safe_command = (safe_command,) * policy.size
    model = _model(mt, base, sensors)
    return DeviceConfig(
        path=path,
        device_id=v["device"]["id"],
        loop=v["loop"],
        model=model,
        sensors=sensors,
        sync_mode=sync["mode"],
        max_skew_ms=sync["max_skew_ms"],
        policy=policy,
        hold_frames=fb["hold_frames"],
        recover_frames=fb["recover_frames"],
        safe_action=fb["safe_action"],
        safe_command=tuple(safe_command or ()) or ((0.0,) * policy.size if policy.kind == "regression" else ()),
        zmq_endpoint=v["sinks"]["zmq_endpoint"],
        log_every=v["sinks"]["log_every"],
        watchdog_ms=v["watchdog"]["timeout_ms"],
        watchdog_endpoint=v["watchdog"]["endpoint"],
        swap_failure_frames=sw["failure_frames"],
        swap_probation_frames=sw["probation_frames"],
        shadow=None if sh is None else ShadowConfig(**{**sh, "package": _path(base, sh["package"])}),
        telemetry=v["telemetry"],
        record=None
        if v["record"] is None
        else RecordConfig(**{**v["record"], "path": _path(base, v["record"]["path"])}),
        ros2_sink=v["sinks"]["ros2"],
    )
