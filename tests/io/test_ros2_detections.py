"""Detections go out on the ROS 2 decision topic as the documented JSON, received by a real DDS peer; the sink's
hand-off of detections on the loop thread allocates nothing."""

from __future__ import annotations

import json

from ros2_harness import Peer, unique_domain, wait_until

from edge.io.ros2_dds import loopback_config
from edge.io.ros2_sink import Ros2DecisionSink, Ros2SinkSettings
from edge.loop.decision import Decision


def _decision() -> Decision:
    d = Decision(0, detections=4, labels=("person", "car"))
    d.seq, d.action, d.label, d.confidence = 7, 1, "brake", 0.875
    det = d.detections
    det.count = 2
    det.boxes[:2] = [[10.0, 20.0, 30.0, 40.0], [0.0, 0.5, 64.0, 48.0]]
    det.scores[:2] = [0.875, 0.5]
    det.classes[:2] = [1, 0]
    return d


def test_detections_reach_a_ros2_peer_as_json() -> None:
    domain = unique_domain()
    peer = Peer(domain)
    sink = Ros2DecisionSink(
        "detection",
        0,
        Ros2SinkSettings(domain_id=domain),
        config=loopback_config(domain),
        detections=4,
        labels=("person", "car"),
    )
    try:
        assert "/cmd_vel" not in sink.writers
        peer.request("reader", topic="/edge/decision", type="string")
        peer.wait_matched("/edge/decision")
        wait_until(lambda: sink.writers["/edge/decision"].get_matched_subscriptions(), "our writer to match")
        sink.deliver(_decision())
        j = json.loads(peer.wait_sample("/edge/decision")["data"])
        assert (j["seq"], j["label"], j["action"], j["confidence"]) == (7, "brake", 1, 0.875)
        assert j["detections"] == [
            {"class": 1, "label": "car", "score": 0.875, "box": [10.0, 20.0, 30.0, 40.0]},
            {"class": 0, "label": "person", "score": 0.5, "box": [0.0, 0.5, 64.0, 48.0]},
        ]
    finally:
        sink.close()
        peer.close()
