"""Print the decisions of a running ``edge run``: what a robot's controller would read.

    python examples/decision_subscriber.py                      # ZeroMQ, examples/device.toml's endpoint
    python examples/decision_subscriber.py --zmq tcp://robot:5600
    python examples/decision_subscriber.py --ros2 /cmd_vel      # ROS 2 geometry_msgs/Twist (examples/robot.toml)

ZeroMQ: a SUB socket connected to ``[sinks] zmq_endpoint``; each message is one msgpack map (``seq``, ``tick_ns``,
``action``, ``label``, ``command``, ``confidence``, ``health``, ``flags``, ``fallback``, ...; README "Loop").
ROS 2: a plain Cyclone DDS reader of the ``[sinks.ros2] cmd_topic`` with ROS 2's types and naming
(``edge.io.ros2_msgs``; no ROS install needed, ``pip install 'edge[ros2]'``); a ROS 2 node sees the same topic with
``ros2 topic echo /cmd_vel geometry_msgs/msg/Twist``. ``--count N`` stops after N decisions.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_ZMQ = "ipc:///tmp/edge-example-decisions"


def from_zmq(endpoint: str, count: int | None, timeout_s: float) -> int:
    import msgpack
    import zmq

    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    n = 0
    try:
        while count is None or n < count:
            try:
                d = msgpack.unpackb(sub.recv())
            except zmq.Again:
                print(f"no decision on {endpoint} for {timeout_s:g} s: is edge run running?", file=sys.stderr)
                return 1
            what = d["label"] or " ".join(f"{x:+.4f}" for x in d["command"])
            note = " (fallback)" if d["fallback"] else ""
            print(f"decision {d['seq']}: {what} {d['health']}{note}", flush=True)
            n += 1
    finally:
        sub.close()
    return 0


def from_ros2(topic: str, count: int | None, timeout_s: float) -> int:
    from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
    from cyclonedds.sub import DataReader
    from cyclonedds.util import duration

    from edge.io.ros2_dds import command_qos, participant, ros2_topic
    from edge.io.ros2_msgs import Twist

    dp, _domain = participant()
    reader = DataReader(dp, ros2_topic(dp, topic, Twist), qos=command_qos())
    cond = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
    waitset = WaitSet(dp)
    waitset.attach(cond)
    n = 0
    while count is None or n < count:
        waitset.wait(duration(seconds=timeout_s))
        samples = reader.take(16, condition=cond)
        if not samples:
            print(f"no Twist on {topic} for {timeout_s:g} s: is edge run running with [sinks.ros2]?", file=sys.stderr)
            return 1
        for msg in samples:
            print(f"{topic}: linear.x {msg.linear.x:+.3f} m/s, angular.z {msg.angular.z:+.4f}", flush=True)
            n += 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--zmq", default=DEFAULT_ZMQ, metavar="ENDPOINT", help="ZeroMQ endpoint (default %(default)s)")
    how.add_argument("--ros2", metavar="TOPIC", help="a ROS 2 Twist topic instead, such as /cmd_vel")
    parser.add_argument("--count", type=int, help="stop after this many decisions")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after this long without one (s)")
    args = parser.parse_args()
    if args.ros2:
        return from_ros2(args.ros2, args.count, args.timeout)
    return from_zmq(args.zmq, args.count, args.timeout)


if __name__ == "__main__":
    raise SystemExit(main())
