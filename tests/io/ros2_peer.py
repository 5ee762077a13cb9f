"""A second DDS participant in its own process, speaking plain cyclonedds with the ROS 2 types of edge.io.ros2_msgs:
what a ROS 2 camera driver, IMU driver or controller node would be on the robot.

Run as ``python ros2_peer.py DOMAIN``; it reads one JSON command per line on stdin and answers one JSON line on
stdout per command (``{"ok": ...}``); samples its readers receive are printed as ``{"sample": TOPIC, "msg": ...}``
lines in between. All traffic stays on 127.0.0.1 (edge.io.ros2_dds.loopback_config). Commands:

* ``{"op": "writer", "topic": T, "type": "image"|"compressed_image"|"imu", "reliable": bool}``
* ``{"op": "reader", "topic": T, "type": "twist"|"string"|"diagnostics"}``
* ``{"op": "wait_matched", "topic": T, "timeout": s (15)}``: until the writer/reader on T has matched a peer
* ``{"op": "image", "topic": T, "height", "width", "encoding", "step", "age_ms"}``: data ``arange(step*height) % 251``,
  header stamp ``age_ms`` before the wall clock now (``null``: zero stamp)
* ``{"op": "compressed", "topic": T, "format": "png"|"jpeg"|..., "height", "width"}``: a PNG/JPEG of the same pattern
  (``"garbage": true``: undecodable data)
* ``{"op": "imu", "topic": T, "values": [10 floats], "age_ms"}``
* ``{"op": "quit"}``
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import threading
import time

import numpy as np
from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from edge.io.ros2_dds import loopback_config
from edge.io.ros2_msgs import CompressedImage, DiagnosticArray, Image, Imu, String, Twist, dds_topic

TYPES = {
    "image": Image,
    "compressed_image": CompressedImage,
    "imu": Imu,
    "twist": Twist,
    "string": String,
    "diagnostics": DiagnosticArray,
}
OUT = threading.Lock()


def emit(obj: dict) -> None:
    with OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def pattern(height: int, step: int) -> np.ndarray:
    return (np.arange(step * height) % 251).astype(np.uint8)


def stamp(msg, age_ms):
    if age_ms is not None:
        t = time.time_ns() - int(age_ms * 1e6)
        msg.header.stamp.sec, msg.header.stamp.nanosec = t // 1_000_000_000, t % 1_000_000_000
    return msg


def plain(msg) -> dict:
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return conv(msg)


def read_forever(dp: DomainParticipant, topic: str, reader: DataReader, stop: threading.Event) -> None:
    cond = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
    ws = WaitSet(dp)
    ws.attach(cond)
    while not stop.is_set():
        ws.wait(duration(milliseconds=50))
        for s in reader.take(16, condition=cond):
            emit({"sample": topic, "msg": plain(s)})


def main() -> None:
    domain_id = int(sys.argv[1])
    domain = Domain(domain_id, loopback_config(domain_id))
    dp = DomainParticipant(domain_id)
    writers, readers, stop = {}, {}, threading.Event()
    threads = []
    for line in sys.stdin:
        cmd = json.loads(line)
        op, topic = cmd["op"], cmd.get("topic")
        if op == "quit":
            break
        if op == "writer":
            rel = Policy.Reliability.Reliable(duration(seconds=1)) if cmd["reliable"] else Policy.Reliability.BestEffort
            qos = Qos(rel, Policy.History.KeepLast(5), Policy.DataRepresentation(use_cdrv0_representation=True))
            writers[topic] = DataWriter(dp, Topic(dp, dds_topic(topic), TYPES[cmd["type"]]), qos=qos)
        elif op == "reader":
            qos = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(100))
            readers[topic] = DataReader(dp, Topic(dp, dds_topic(topic), TYPES[cmd["type"]]), qos=qos)
            t = threading.Thread(target=read_forever, args=(dp, topic, readers[topic], stop), daemon=True)
            t.start()
            threads.append(t)
        elif op == "wait_matched":
            end = time.monotonic() + cmd.get("timeout", 15.0)
            ent = writers.get(topic) or readers[topic]
            matched = ent.get_matched_subscriptions if topic in writers else ent.get_matched_publications
            while not matched() and time.monotonic() < end:
                time.sleep(0.005)
            emit({"ok": bool(matched())})
            continue
        elif op == "image":
            data = pattern(cmd["height"], cmd["step"]).tobytes()
            fields = {k: cmd[k] for k in ("height", "width", "encoding", "step")}
            writers[topic].write(stamp(Image(**fields, data=data), cmd.get("age_ms")))
        elif op == "compressed":
            from PIL import Image as PILImage

            h, w = cmd["height"], cmd["width"]
            buf = io.BytesIO()
            fmt = "PNG" if "png" in cmd["format"] else "JPEG"
            PILImage.fromarray(pattern(h, w * 3).reshape(h, w, 3)).save(buf, format=fmt)
            data = buf.getvalue() if not cmd.get("garbage") else b"\x00garbage"
            writers[topic].write(stamp(CompressedImage(format=cmd["format"], data=data), cmd.get("age_ms")))
        elif op == "imu":
            v = cmd["values"]
            msg = Imu()
            msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = v[:4]
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = v[4:7]
            msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = v[7:10]
            writers[topic].write(stamp(msg, cmd.get("age_ms")))
        emit({"ok": True})
    stop.set()
    for t in threads:
        t.join(2.0)
    del writers, readers, dp, domain


if __name__ == "__main__":
    main()
