"""Detection policy: SSD- or YOLO-style detector outputs → NMS → detections in the Decision → an ROI rule → action.

* **SSD** (:class:`SsdDecoder`): a box tensor ``[1, N, K >= 4]`` (or ``[N, K]``) of anchor encodings and a score
  tensor ``[1, N, C]`` of class logits or scores; anchors are given, or generated from MediaPipe's
  ``SsdAnchorsCalculator`` options (:class:`SsdAnchorOptions`, :func:`ssd_anchors`). Boxes are decoded by
  :func:`edge.kernels.decode_anchors` (TF Object Detection convention, (y, x, h, w) or MediaPipe's (x, y, w, h)
  order, exponential or linear sizes), scores by :func:`edge.kernels.best_class` (optionally a sigmoid).
* **YOLO** (:class:`YoloDecoder`): one tensor ``[1, N, 4 + C]`` or ``[1, 4 + C, N]`` of (cx, cy, w, h, class
  scores) rows, decoded by :func:`edge.kernels.decode_yolo`.

Then :func:`edge.kernels.nms` keeps at most ``max_detections``; their boxes are mapped to frame pixels: the loop's
preprocessing is a plain bilinear resize of the whole frame (no crop, no letterbox), so undoing it is one scale per
axis (frame size / model input size; normalized boxes are scaled by the frame size). The :class:`RoiRule` then
turns detections into the action: ``actions[1]`` (e.g. "brake") once a detection of the rule's classes with score
``>= min_score`` has at least ``min_inside`` of its box area inside the ROI for ``frames`` consecutive frames, else
``actions[0]`` (e.g. "go"). Binding (off the loop thread) checks the config against the model's real output specs
and refuses a mismatch naming the ``policy.*`` key; the bound policy allocates nothing per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge import kernels
from edge.contracts import Model, TensorSpec, image_dims, input_layout
from edge.errors import ConfigError
from edge.loop.anchors import SsdAnchorOptions, ssd_anchors
from edge.loop.decision import Decision, Detections
from edge.loop.policy import _Dequant

__all__ = [
    "DetectionPolicy",
    "RoiRule",
    "SsdAnchorOptions",
    "SsdDecoder",
    "YoloDecoder",
    "policy_from_config",
    "ssd_anchors",
]


def _output(model: Model, key: str, ref: str | int) -> int:
    names = [s.name for s in model.outputs]
    if isinstance(ref, int):
        if not 0 <= ref < len(names):
            raise ConfigError(f"{key}: expected an output index < {len(names)} ({_specs(model)}), got {ref}")
        return ref
    if ref not in names:
        raise ConfigError(f"{key}: expected one of the model's outputs ({_specs(model)}), got {ref!r}")
    return names.index(ref)


def _specs(model: Model) -> str:
    return ", ".join(s.describe() for s in model.outputs)


def _rows(spec: TensorSpec, key: str) -> tuple[int, int]:
    """(N, K) of a ``[1, N, K]`` or ``[N, K]`` output."""
    shape = spec.shape
    if len(shape) == 3 and shape[0] == 1:
        return int(shape[1]), int(shape[2])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    raise ConfigError(f"{key}: expected an output of shape [1, N, K] or [N, K], got {spec.describe()}")


@dataclass(frozen=True)
class SsdDecoder:
    """SSD outputs: ``boxes_output``/``scores_output`` (name or index), ``anchors`` (float32 (N, 4) = (yc, xc, h, w),
    or the options to generate them), ``box_order`` "yxhw" (TF) or "xywh" (MediaPipe ``reverse_output_order``),
    ``scales`` in box order, ``exp_size`` (False: linear sizes), ``sigmoid`` (scores are logits)."""

    anchors: SsdAnchorOptions | np.ndarray
    boxes_output: str | int = 0
    scores_output: str | int = 1
    box_order: str = "yxhw"
    scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    exp_size: bool = True
    sigmoid: bool = True

    units = "normalized"


@dataclass(frozen=True)
class YoloDecoder:
    """YOLO outputs: ``output`` (name or index) ``[1, N, 4 + C]`` or ``[1, 4 + C, N]`` (``layout`` "auto", "rows"
    or "columns"); boxes (cx, cy, w, h) in model-input pixels (``units`` "pixels") or normalized."""

    output: str | int = 0
    layout: str = "auto"
    units: str = "pixels"


@dataclass(frozen=True)
class RoiRule:
    """``actions[1]`` when a detection of ``classes`` (names; empty: any) with score >= ``min_score`` has at least
    ``min_inside`` of its box area inside ``roi`` (x1, y1, x2, y2 in frame pixels; None: the whole frame) for
    ``frames`` consecutive frames."""

    classes: tuple[str, ...] = ()
    roi: tuple[float, float, float, float] | None = None
    min_inside: float = 0.5
    min_score: float = 0.0
    frames: int = 1


class DetectionPolicy:
    """Detector outputs → detections (``decision.detections``) → :class:`RoiRule` → ``decision.action``/``label``.

    ``frame_size`` = (H, W) of the camera frames (to map boxes to frame pixels); ``labels`` names the classes
    (default: their indices); ``actions`` = (clear, triggered)."""

    command_size = 0

    def __init__(
        self,
        decoder: SsdDecoder | YoloDecoder,
        frame_size: tuple[int, int],
        *,
        labels: Sequence[str] = (),
        score_threshold: float = 0.5,
        iou_threshold: float = 0.3,
        max_detections: int = 16,
        rule: RoiRule | None = None,
        actions: Sequence[str] = ("go", "brake"),
    ) -> None:
        self.decoder, self.rule = decoder, rule or RoiRule()
        self.frame_h, self.frame_w = (int(v) for v in frame_size)
        self.labels = tuple(str(v) for v in labels)
        self.actions = tuple(str(a) for a in actions)
        if len(self.actions) != 2:
            raise ConfigError(f"policy.actions: expected two names (clear, triggered), got {list(self.actions)}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise ConfigError(f"policy.iou_threshold: expected a number in [0, 1], got {iou_threshold!r}")
        if int(max_detections) < 1:
            raise ConfigError(f"policy.max_detections: expected an integer >= 1, got {max_detections!r}")
        if not 0.0 < self.rule.min_inside <= 1.0 or self.rule.frames < 1:
            raise ConfigError(
                f"policy.min_inside/frames: expected a fraction in (0, 1] and frames >= 1, got "
                f"{self.rule.min_inside!r} and {self.rule.frames!r}"
            )
        unknown = [c for c in self.rule.classes if c not in self.labels]
        if unknown:
            raise ConfigError(
                f"policy.trigger_classes: expected names from policy.labels {list(self.labels)}, got {unknown}"
            )
        if isinstance(decoder, SsdDecoder) and decoder.box_order not in ("yxhw", "xywh"):
            raise ConfigError(f"policy.box_order: expected 'yxhw' or 'xywh', got {decoder.box_order!r}")
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.max_detections = int(max_detections)

    def bind(self, model: Model) -> BoundDetection:
        return BoundDetection(self, model)


class BoundDetection:
    """The policy bound to one model: buffers for N candidates and ``max_detections`` kept ones (owned here)."""

    def __init__(self, p: DetectionPolicy, model: Model) -> None:
        self.p = p
        dec = p.decoder
        if isinstance(dec, SsdDecoder):
            self._bind_ssd(dec, model)
        else:
            self._bind_yolo(dec, model)
        n, c = self.n, self.n_classes
        if p.labels and len(p.labels) != c:
            raise ConfigError(
                f"policy.labels: expected {c} names (one per class of {_specs(model)}), got {len(p.labels)}"
            )
        self.boxes = np.zeros((n, 4), np.float32)
        self.scores = np.zeros(n, np.float32)
        self.classes = np.zeros(n, np.int32)
        self.scratch = np.zeros(n, np.int64)
        self.keep = np.zeros(p.max_detections, np.int64)
        self.sel = np.zeros((p.max_detections, 4), np.float32)
        self.count = 0
        self.streak = 0
        trig = p.rule.classes
        self.trigger = np.array([not trig or (p.labels[i] in trig) for i in range(c)], np.bool_)
        fw, fh = p.frame_w, p.frame_h
        if self.units == "pixels":
            self.scale = np.array([fw / self.in_w, fh / self.in_h] * 2, np.float32)
        else:
            self.scale = np.array([fw, fh] * 2, np.float32)
        self.limit = np.array([fw, fh] * 2, np.float32)
        roi = p.rule.roi if p.rule.roi is not None else (0.0, 0.0, float(fw), float(fh))
        self.roi = tuple(float(v) for v in roi)

    def _bind_ssd(self, dec: SsdDecoder, model: Model) -> None:
        bi = _output(model, "policy.boxes_output", dec.boxes_output)
        si = _output(model, "policy.scores_output", dec.scores_output)
        bspec, sspec = model.outputs[bi], model.outputs[si]
        n, k = _rows(bspec, "policy.boxes_output")
        ns, c = _rows(sspec, "policy.scores_output")
        if k < 4:
            raise ConfigError(f"policy.boxes_output: expected at least 4 values per box, got {bspec.describe()}")
        if ns != n:
            raise ConfigError(
                f"policy.scores_output: expected {n} rows like {bspec.describe()}, got {sspec.describe()}"
            )
        anchors = ssd_anchors(dec.anchors) if isinstance(dec.anchors, SsdAnchorOptions) else dec.anchors
        anchors = np.asarray(anchors, np.float32)
        if anchors.shape != (n, 4):
            raise ConfigError(
                f"policy.anchors: expected {n} anchors (rows of {bspec.describe()}), got {anchors.shape[0]} "
                f"from the anchor options {dec.anchors if isinstance(dec.anchors, SsdAnchorOptions) else ''}".rstrip()
            )
        if len(dec.scales) != 4 or min(dec.scales) <= 0:
            raise ConfigError(f"policy.box_scales: expected four values > 0, got {list(dec.scales)}")
        xy = dec.box_order == "xywh"  # anchors in the encodings' order: the decode is symmetric in (y, x)
        self.anchors = np.ascontiguousarray(anchors[:, [1, 0, 3, 2]] if xy else anchors)
        self.perm = np.array([0, 1, 2, 3] if xy else [1, 0, 3, 2], np.intp)  # decoded → (x1, y1, x2, y2)
        self.bdeq = _Dequant(bspec, model.output_buffers[bi])
        self.sdeq = _Dequant(sspec, model.output_buffers[si])
        self.enc = self.bdeq.values.reshape(n, k)[:, :4]
        self.logits = self.sdeq.values.reshape(n, c)
        self.n, self.n_classes, self.units, self.ssd = n, c, "normalized", dec
        self._decode = self._decode_ssd

    def _bind_yolo(self, dec: YoloDecoder, model: Model) -> None:
        oi = _output(model, "policy.output", dec.output)
        spec = model.outputs[oi]
        if len(spec.shape) != 3 or spec.shape[0] != 1:
            raise ConfigError(
                f"policy.output: expected [1, N, 4 + classes] or [1, 4 + classes, N], got {spec.describe()}"
            )
        a, b = int(spec.shape[1]), int(spec.shape[2])
        layout = dec.layout
        if layout == "auto":
            c_known = len(self.p.labels)
            if c_known:
                layout = "rows" if b == 4 + c_known else "columns" if a == 4 + c_known else "?"
            else:
                layout = "rows" if b < a else "columns"
        if layout not in ("rows", "columns") or (b if layout == "rows" else a) < 5:
            raise ConfigError(
                f"policy.layout: expected 'rows' ([1, N, 4 + classes]) or 'columns' ([1, 4 + classes, N]) matching "
                f"{len(self.p.labels) or '>= 1'} classes, got {dec.layout!r} for {spec.describe()}"
            )
        if dec.units not in ("pixels", "normalized"):
            raise ConfigError(f"policy.box_units: expected 'pixels' or 'normalized', got {dec.units!r}")
        self.deq = _Dequant(spec, model.output_buffers[oi])
        grid = self.deq.values.reshape(a, b)
        self.preds = grid if layout == "rows" else grid.T
        self.n, self.n_classes, self.units = int(self.preds.shape[0]), int(self.preds.shape[1]) - 4, dec.units
        self.perm = np.array([0, 1, 2, 3], np.intp)
        ins = model.inputs[0]
        self.in_h, self.in_w, _ = image_dims(ins.shape, input_layout(ins.shape, 3))
        self._decode = self._decode_yolo

    # ------------------------------------------------------------------------------------------- loop thread
    def _decode_ssd(self) -> int:
        self.bdeq.read()
        self.sdeq.read()
        kernels.decode_anchors(self.enc, self.anchors, self.ssd.scales, self.boxes, self.ssd.exp_size)
        return kernels.best_class(self.logits, self.ssd.sigmoid, self.scores, self.classes)

    def _decode_yolo(self) -> int:
        self.deq.read()
        return kernels.decode_yolo(self.preds, self.boxes, self.scores, self.classes)

    def postprocess(self) -> bool:
        """Decode and suppress; False when a score is NaN (a model fault)."""
        if self._decode():
            self.count = 0
            return False
        p = self.p
        self.count = kernels.nms(
            self.boxes, self.scores, self.classes, p.iou_threshold, p.score_threshold, self.keep, self.scratch
        )
        return True

    def decide(self, outputs: tuple[np.ndarray, ...], decision: Decision) -> bool:
        det, n = decision.detections, min(self.count, decision.detections.capacity)
        if n:
            idx = self.keep[:n]
            sel = self.sel[:n]
            np.take(self.boxes, idx, axis=0, out=sel, mode="clip")
            boxes = det.boxes[:n]
            np.take(sel, self.perm, axis=1, out=boxes, mode="clip")
            np.multiply(boxes, self.scale, out=boxes)
            np.clip(boxes, 0.0, self.limit, out=boxes)
            np.take(self.scores, idx, out=det.scores[:n], mode="clip")
            np.take(self.classes, idx, out=det.classes[:n], mode="clip")
        det.count = n
        hit = self._hit(det, n)
        self.streak = self.streak + 1 if hit >= 0.0 else 0
        on = self.streak >= self.p.rule.frames
        decision.action = 1 if on else 0
        decision.label = self.p.actions[decision.action]
        decision.confidence = hit if hit >= 0.0 else (det.scores.item(0) if n else math.nan)
        return True

    def _hit(self, det: Detections, n: int) -> float:
        """The best score of a detection the rule triggers on this frame; -1.0 when none."""
        rule, trigger = self.p.rule, self.trigger
        rx1, ry1, rx2, ry2 = self.roi
        best = -1.0
        boxes, scores, classes = det.boxes, det.scores, det.classes
        for i in range(n):
            s = scores.item(i)
            if s < rule.min_score or not trigger.item(classes.item(i)):
                continue
            x1, y1, x2, y2 = boxes.item(i, 0), boxes.item(i, 1), boxes.item(i, 2), boxes.item(i, 3)
            area = (x2 - x1) * (y2 - y1)
            inter = max(min(x2, rx2) - max(x1, rx1), 0.0) * max(min(y2, ry2) - max(y1, ry1), 0.0)
            if area > 0.0 and inter >= rule.min_inside * area and s > best:
                best = s
        return best


def policy_from_config(det: dict[str, Any], actions: Sequence[str], frame_size: tuple[int, int]) -> DetectionPolicy:
    """The policy of a ``[policy]`` table with ``kind = "detection"`` (``det``: its detection keys, as
    :func:`edge.loop.config.parse_config` read them) for camera frames of ``frame_size`` (H, W)."""
    decoder: SsdDecoder | YoloDecoder
    if det["format"] == "ssd":
        a = dict(det["anchors"])
        a["strides"], a["aspect_ratios"] = tuple(a["strides"]), tuple(a["aspect_ratios"])
        decoder = SsdDecoder(
            SsdAnchorOptions(**a),
            boxes_output=det["boxes_output"] if det["boxes_output"] is not None else 0,
            scores_output=det["scores_output"] if det["scores_output"] is not None else 1,
            box_order=det["box_order"],
            scales=tuple(det["box_scales"]),
            exp_size=det["exp_size"],
            sigmoid=det["sigmoid"],
        )
    else:
        out = det["output"] if det["output"] is not None else 0
        decoder = YoloDecoder(output=out, layout=det["layout"], units=det["box_units"])
    rule = RoiRule(
        classes=tuple(det["trigger_classes"] or ()),
        roi=det["roi"],
        min_inside=det["min_inside"],
        min_score=det["min_score"],
        frames=det["trigger_frames"],
    )
    return DetectionPolicy(
        decoder,
        frame_size,
        labels=det["labels"] or (),
        score_threshold=det["score_threshold"],
        iou_threshold=det["iou_threshold"],
        max_detections=det["max_detections"],
        rule=rule,
        actions=actions,
    )
