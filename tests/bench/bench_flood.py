"""Device-id flood benchmark: one sender claims N distinct device ids (one window each, 32 features) while one good
device sends a window every 20 ms; the embedded collector (SQLite, horizons 10 and 60) with its device tracks
bounded (``max_tracks`` 4096, each track's ring grown as windows arrive) against the same collector as it was
before the bound (every track kept, each with a ring of the longest horizon: emulated by ``max_tracks`` 10**9 and
rings allocated full), same records, same run.

    python tests/bench/bench_flood.py [--quick] [--devices N] [--json PATH]

Each configuration runs in its own process (so that its peak RSS is its own). Figures (``{"figures": ...}``):
  * ``rss_growth_mb``: the collector process's RSS after the flood is scored, less before the flood (MB);
  * ``track_bytes_mb``: the bytes of the engine's track rings and sums after the flood (MB);
  * ``flood_records_per_s``: flood records acked / s;
  * ``good_p99_ms``: the good device's p99 round trip (send → ack) during the flood;
  * ``drain_s``: end of the flood → every window scored.
Medians over the runs; the ratio is ours / before for memory, before / ours for time. The good device's
stalls are the collector's backpressure (ingest waits while scoring is 8192 windows behind): it is not fair
per device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "collector"))
sys.path.insert(0, str(REPO / "tests" / "bench"))

import _report  # noqa: E402

FLOOD = r"""
import sys, time, json
sys.path.insert(0, sys.argv[3])
import numpy as np, zmq
import collector_streams as streams
from edge.telemetry.protocol import Record, encode_record
endpoint, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
bodies = [streams.window_body(rng, n_features=32) for _ in range(50)]
frames = [encode_record(Record("window", f"flood-{i:06d}", "boot-1", 1, 1, time.time_ns(), bodies[i % 50]))
          for i in range(n)]
ctx = zmq.Context(); sock = ctx.socket(zmq.DEALER); sock.linger = 0; sock.connect(endpoint)
msgs = [frames[i:i + 64] for i in range(0, n, 64)]
print("ready", flush=True); sys.stdin.readline()
t0 = time.perf_counter(); nxt = done = 0
while done < len(msgs):
    while nxt < len(msgs) and nxt - done < 8:
        sock.send_multipart(msgs[nxt]); nxt += 1
    sock.recv(); done += 1
print(json.dumps({"records_per_s": n / (time.perf_counter() - t0)}), flush=True)
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def child(config: str, n: int) -> dict[str, float]:
    """One flood against an in-process collector; ``config``: ``"before"`` or ``"ours"``."""
    import collector_streams as streams
    import zmq

    from edge.collector import rolling
    from edge.collector.cli import SWITCH_INTERVAL_S
    from edge.collector.server import CollectorServer, CollectorSettings
    from edge.drift.profile import save_profile
    from edge.telemetry.protocol import Record, encode_record

    if config == "before":  # every track kept, its ring allocated at the longest horizon
        grow = rolling.RollingSums.__init__

        def full(self: rolling.RollingSums, horizons: tuple[int, ...], shape: tuple[int, ...], start: int = 2) -> None:
            grow(self, horizons, shape, start=max(horizons))

        rolling.RollingSums.__init__ = full  # type: ignore[method-assign]
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    rng = np.random.default_rng(20261121)
    prof = streams.profile(rng, n_features=32)
    with tempfile.TemporaryDirectory() as tmp:
        pdir = Path(tmp) / "profiles"
        pdir.mkdir()
        save_profile(prof, pdir / "p.json")
        settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=Path(tmp) / "f.db", http=None, profiles=pdir,
                                     horizons=(10, 60), max_tracks=10**9 if config == "before" else 4096)  # fmt: skip
        with CollectorServer(settings) as server:
            cmd = [sys.executable, "-c", FLOOD, server.endpoint, str(n), str(REPO / "tests" / "collector")]
            flood = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            assert flood.stdout is not None and flood.stdin is not None
            assert flood.stdout.readline().strip() == "ready"
            ctx = zmq.Context()
            good = ctx.socket(zmq.DEALER)
            good.linger = 0
            good.connect(server.endpoint)
            good.send_multipart(
                [encode_record(Record("hello", "good", "b", 0, 0, time.time_ns(), streams.hello_body(prof)))]
            )
            good.recv()
            before = rss_mb()
            stop, lat = threading.Event(), []

            def run_good() -> None:
                seq, body = 1, streams.window_body(np.random.default_rng(1), n_features=32)
                while not stop.is_set():
                    t = time.perf_counter()
                    good.send_multipart([encode_record(Record("window", "good", "b", seq, seq, time.time_ns(), body))])
                    good.recv()
                    lat.append(time.perf_counter() - t)
                    seq += 1
                    stop.wait(0.02)

            thread = threading.Thread(target=run_good)
            thread.start()
            flood.stdin.write("go\n")
            flood.stdin.flush()
            rate = json.loads(flood.stdout.readline())["records_per_s"]
            flood.wait(30)
            stop.set()
            thread.join()
            t = time.perf_counter()
            assert server.drain(300.0)
            drain_s = time.perf_counter() - t
            tracks = server.engine._tracks.values()
            track_bytes = sum(r.ring.nbytes + sum(s.nbytes for s in r.sums.values())
                              for track in tracks for r in track.values() if r is not None)  # fmt: skip
            out = {"rss_growth_mb": rss_mb() - before, "track_bytes_mb": track_bytes / 1e6,
                   "flood_records_per_s": rate, "good_p99_ms": float(np.percentile(np.array(lat) * 1e3, 99)),
                   "drain_s": drain_s, "tracks": server.engine.tracks}  # fmt: skip
            good.close()
            ctx.term()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer devices, one run (under a minute)")
    ap.add_argument("--devices", type=int, help="device ids in the flood (default 8000, 2000 with --quick)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.devices or (2000 if args.quick else 8000)
    if args.child:
        print(json.dumps(child(args.child, n)))
        return 0
    machine = _report.start()
    runs = 1 if args.quick else 3
    results: dict[str, list[dict[str, float]]] = {"before": [], "ours": []}
    for _ in range(runs):
        for config in results:  # interleaved: the load drifts over both alike
            out = subprocess.run([sys.executable, __file__, "--child", config, "--devices", str(n)],
                                 capture_output=True, text=True, cwd=REPO, check=True)  # fmt: skip
            results[config].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("rss_growth_mb", "track_bytes_mb", "flood_records_per_s", "good_p99_ms", "drain_s")
    med = {c: {k: float(np.median([r[k] for r in rs])) for k in keys} for c, rs in results.items()}
    print(f"\n{n} flood device ids, one good device every 20 ms; medians of {runs} run(s)")
    print(f"{'figure':<22}{'before':>12}{'ours':>12}{'ratio':>10}")
    figures: dict[str, float] = {"devices": n, "runs": runs}
    for k in keys:
        a, b = med["before"][k], med["ours"][k]
        better_low = k != "flood_records_per_s"
        ratio = (a / b if better_low else b / a) if a and b else float("nan")
        print(f"{k:<22}{a:>12.1f}{b:>12.1f}{ratio:>9.2f}x")
        figures[f"before_{k}"], figures[f"ours_{k}"], figures[f"{k}_improvement"] = a, b, ratio
    print("(ratio: before / ours for memory and time, ours / before for records/s: above 1 is better)")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
