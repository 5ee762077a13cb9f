"""Benchmark: a ROS 2 image from publish to the sensor slot, over DDS on loopback.

    python tests/bench/bench_ros2.py [--json PATH] [--quick]

* ``ros2_image_latency_us`` p50 / p99: a 640×480 rgb8 ``sensor_msgs/Image`` written by a DDS writer in this process
  (its own participant, Cyclone restricted to 127.0.0.1) until it is in a :class:`SensorSlot` through
  :class:`edge.io.ros2_source.Ros2Source` (reader thread, deserialize, convert, slot copy). One image in flight at a
  time (the next is written once the previous landed), so this is latency, not throughput.
* Baseline in the same run: a bare cyclonedds reader thread on the same message type (its own participant, wait
  set, ``take``, nothing else), timed the same way, in blocks of 10 images alternating with the source's.
  ``ros2_source_vs_bare_time_ratio`` (< 1 is better) = source p50 / bare p50. The source does strictly more work,
  so >= 1 was expected; on the 2-core development machine it measured 0.55 (p50 2.0 ms vs 3.7 ms) whichever path
  ran first in each block, which is not explained yet: read the absolute p50/p99 first.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import _report
import numpy as np
from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.util import duration

from edge.io.ros2_dds import command_qos, loopback_config, participant, ros2_topic, sensor_data_qos
from edge.io.ros2_msgs import Image
from edge.io.ros2_source import Ros2Source
from edge.loop.sensors import SensorSlot

H, W = 480, 640


class TimedSlot(SensorSlot):
    """A slot that records when each value landed (monotonic ns) and signals it."""

    def __init__(self) -> None:
        super().__init__("camera", (H, W, 3))
        self.landed = threading.Event()
        self.at = 0

    def push(self, value: np.ndarray, capture_ns: int) -> None:
        super().push(value, capture_ns)
        self.at = time.monotonic_ns()
        self.landed.set()


def _wait(cond, what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"bench_ros2: timed out waiting for {what}")
        time.sleep(0.001)


def _measure(writer: DataWriter, msg: Image, landed: threading.Event, at, n: int) -> list[float]:
    out = []
    for _ in range(n):
        landed.clear()
        t0 = time.monotonic_ns()
        writer.write(msg)
        if not landed.wait(5.0):
            continue  # best effort may lose one on a loaded host; it is not timed
        out.append((at() - t0) / 1e3)
    return out


def run(n: int) -> dict[str, float]:
    domain = 200 + os.getpid() % 30
    config = loopback_config(domain)
    dp, dom = participant(domain, config)
    msg = Image(height=H, width=W, encoding="rgb8", step=W * 3, data=bytes(np.arange(H * W * 3, dtype=np.uint8)))

    # edge: the source on /bench/image
    writer = DataWriter(dp, ros2_topic(dp, "/bench/image", Image), qos=command_qos(1))
    slot = TimedSlot()
    src = Ros2Source("camera", "/bench/image", "image", slot, domain_id=domain, config=config, poll_ms=100)
    src.start()

    # baseline: a bare reader thread on /bench/bare, its own participant as the source has
    dp2, _ = participant(domain, config)
    reader = DataReader(dp2, ros2_topic(dp2, "/bench/bare", Image), qos=sensor_data_qos())
    writer2 = DataWriter(dp, ros2_topic(dp, "/bench/bare", Image), qos=command_qos(1))
    landed, stamp, stop = threading.Event(), [0], threading.Event()

    def bare() -> None:
        cond = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        ws = WaitSet(dp2)
        ws.attach(cond)
        while not stop.is_set():
            ws.wait(duration(milliseconds=100))
            if reader.take(16, condition=cond):
                stamp[0] = time.monotonic_ns()
                landed.set()

    t = threading.Thread(target=bare, daemon=True)
    t.start()
    _wait(lambda: writer.get_matched_subscriptions(), "the source to match")
    _wait(lambda: writer2.get_matched_subscriptions(), "the bare reader to match")
    edge: list[float] = []
    base: list[float] = []
    for _ in range(0, n, 10):  # alternating blocks, so both see the same machine load
        edge += _measure(writer, msg, slot.landed, lambda: slot.at, 10)
        base += _measure(writer2, msg, landed, lambda: stamp[0], 10)
    stop.set()
    t.join(2.0)
    src.close()
    del dom

    e50, e99 = np.percentile(edge, [50, 99])
    b50, b99 = np.percentile(base, [50, 99])
    print(f"\nROS 2 Image 640x480 rgb8, publish -> slot on loopback ({len(edge)} / {len(base)} images)")
    print(f"{'path':24}{'p50 µs':>10}{'p99 µs':>10}")
    print(f"{'edge Ros2Source':24}{e50:10.1f}{e99:10.1f}")
    print(f"{'bare cyclonedds take':24}{b50:10.1f}{b99:10.1f}")
    print(f"ros2_source_vs_bare_time_ratio = {e50 / b50:.3f}")
    return {
        "ros2_image_latency_us_p50": float(e50),
        "ros2_image_latency_us_p99": float(e99),
        "ros2_bare_take_latency_us_p50": float(b50),
        "ros2_source_vs_bare_time_ratio": float(e50 / b50),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer images (under a minute)")
    args = ap.parse_args()
    machine = _report.start()
    figures = run(100 if args.quick else 1000)
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
