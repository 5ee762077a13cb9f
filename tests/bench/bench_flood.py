"""Device-id flood benchmark: one connection claims N new device ids (one window each, 32 features, 64 records a
message, 4 messages in flight as PROTOCOL.md allows, counting acked records) while one good device sends a window
every 20 ms and times each round trip; the embedded collector (SQLite, horizons 10 and 60) of this tree against the
same collector at an earlier commit (``--baseline``, default ``c6706fd``: before device state was bounded and
backpressure made fair), same records, same run.

    python tests/bench/bench_flood.py [--quick] [--devices N] [--baseline REF] [--json PATH]

The baseline runs from a temporary ``git worktree`` of REF with this tree's compiled kernels (refused when a native
source the collector runs differs between REF and HEAD; the frame preprocessing kernel, which no collector path calls,
may). Each run is its own process (its RSS is its own). Figures
(``{"figures": ...}``), medians over the runs, for ``baseline_*`` and ``ours_*``:
  * ``flood_acked_per_s``: flood records acked / s (the flood is slowed on purpose when scoring is behind);
  * ``good_p99_ms`` and ``good_max_ms``: the good device's round trip (send -> ack) during the flood;
  * ``good_stalls_over_500ms``: its round trips over 0.5 s;
  * ``rss_growth_mb``: the collector process's RSS after every window is scored, less before the flood (MB);
  * ``drain_s``: end of the flood -> every window scored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))

import _report  # noqa: E402

# the sender: a separate process, one DEALER, each record a new device id and boot (so acks name it)
FLOOD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4]); sys.path.insert(0, sys.argv[3])
import numpy as np, zmq
import collector_streams as streams
from edge.telemetry.protocol import Record, decode_reply, encode_record
endpoint, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
bodies = [streams.window_body(rng, n_features=32) for _ in range(50)]
frames = [encode_record(Record("window", f"flood-{i:06d}", f"b{i}", 1, 1, time.time_ns(), bodies[i % 50]))
          for i in range(n)]
ctx = zmq.Context(); sock = ctx.socket(zmq.DEALER); sock.linger = 0; sock.connect(endpoint)
todo = [frames[i:i + 64] for i in range(0, n, 64)]
acked = inflight = 0
t0 = time.perf_counter()
while todo or inflight:
    while todo and inflight < 4:
        sock.send_multipart(todo.pop(0)); inflight += 1
    reply = decode_reply(sock.recv()); inflight -= 1
    acked += sum(a.last - a.first + 1 for a in reply.acks)
print(json.dumps({"acked": acked, "flood_acked_per_s": acked / (time.perf_counter() - t0)}))
"""

# one run against the collector of the tree at $EDGE_TREE (only APIs the baseline has too)
CHILD = r"""
import json, logging, os, subprocess, sys, tempfile, threading, time
from pathlib import Path
tree = Path(os.environ["EDGE_TREE"])
sys.path.insert(0, str(tree)); sys.path.insert(0, str(tree / "tests" / "collector"))
import numpy as np, zmq
import collector_streams as streams
import edge
assert Path(edge.__file__).resolve().is_relative_to(tree.resolve()), edge.__file__
from edge.collector.server import CollectorServer, CollectorSettings
from edge.drift.profile import save_profile
from edge.telemetry.protocol import Record, encode_record
n, flood_code = int(sys.argv[1]), sys.argv[2]
logging.disable(logging.WARNING)  # the flood's drift opens alerts
sys.setswitchinterval(0.0005)  # as `edge collector` runs it
def rss_mb():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024
prof = streams.profile(np.random.default_rng(20261121), n_features=32)
with tempfile.TemporaryDirectory() as tmp:
    pdir = Path(tmp) / "profiles"; pdir.mkdir(); save_profile(prof, pdir / "p.json")
    settings = CollectorSettings(bind="tcp://127.0.0.1:0", db=Path(tmp) / "f.db", http=None, profiles=pdir,
                                 horizons=(10, 60))
    with CollectorServer(settings) as server:
        ctx = zmq.Context(); good = ctx.socket(zmq.DEALER); good.linger = 0; good.connect(server.endpoint)
        hello = Record("hello", "good", "b", 0, 0, time.time_ns(), streams.hello_body(prof))
        good.send_multipart([encode_record(hello)]); good.recv()
        before = rss_mb()
        stop, lat = threading.Event(), []
        def run_good():
            seq, body = 1, streams.window_body(np.random.default_rng(1), n_features=32)
            while not stop.is_set():
                t = time.perf_counter()
                good.send_multipart([encode_record(Record("window", "good", "b", seq, seq, time.time_ns(), body))])
                good.recv()
                lat.append(time.perf_counter() - t); seq += 1
                stop.wait(0.02)
        thread = threading.Thread(target=run_good); thread.start()
        args = [server.endpoint, str(n), str(tree / "tests" / "collector"), str(tree)]
        out = subprocess.run([sys.executable, "-c", flood_code, *args], capture_output=True, text=True, check=True)
        stop.set(); thread.join()
        flood = json.loads(out.stdout.strip().splitlines()[-1])
        t = time.perf_counter(); assert server.drain(600); drain_s = time.perf_counter() - t
        lat = np.array(lat) * 1e3
        print(json.dumps({**flood, "good_p99_ms": float(np.percentile(lat, 99)), "good_max_ms": float(lat.max()),
                          "good_stalls_over_500ms": int((lat > 500).sum()), "rss_growth_mb": rss_mb() - before,
                          "drain_s": drain_s}))
        good.close(); ctx.term()
"""

KEYS = ("flood_acked_per_s", "good_p99_ms", "good_max_ms", "good_stalls_over_500ms", "rss_growth_mb", "drain_s")


# Native sources no collector path runs: the camera frame's preprocessing (and its AVX2 build).
NOT_COLLECTOR = {"native/preprocess.pyx", "native/preprocess_avx2.pyx"}


def baseline_tree(ref: str, into: Path) -> Path:
    """A worktree of ``ref`` at ``into`` with this tree's compiled kernels (the same native sources, but for
    :data:`NOT_COLLECTOR`)."""
    diff = subprocess.run(["git", "diff", "--name-only", ref, "HEAD", "--", "native/"], cwd=REPO,
                          capture_output=True, text=True, check=True)  # fmt: skip
    if differ := sorted(set(diff.stdout.split()) - NOT_COLLECTOR):
        raise SystemExit(f"--baseline {ref}: {differ} differ from HEAD, so this tree's kernels do not fit it")
    subprocess.run(["git", "worktree", "add", "--detach", str(into), ref], cwd=REPO, check=True, capture_output=True)
    for so in (REPO / "edge" / "_native").glob("*.so"):
        shutil.copy2(so, into / "edge" / "_native" / so.name)
    return into


def run(tree: Path, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), FLOOD], capture_output=True, text=True,
                         env={**os.environ, "EDGE_TREE": str(tree)}, cwd=tree)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"the run against {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer devices, one run")
    ap.add_argument("--devices", type=int, help="device ids in the flood (default 8000, 3000 with --quick)")
    ap.add_argument("--baseline", default="c6706fd", metavar="REF", help="the commit to compare with")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    n = args.devices or (3000 if args.quick else 8000)
    runs = 1 if args.quick else 3
    machine = _report.start()
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="edge-flood-") as tmp:
        base = baseline_tree(args.baseline, Path(tmp) / "baseline")
        try:
            for _ in range(runs):  # interleaved: the machine's load drifts over both alike
                results["baseline"].append(run(base, n))
                results["ours"].append(run(REPO, n))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    med = {c: {k: float(np.median([r[k] for r in rs])) for k in KEYS} for c, rs in results.items()}
    print(f"\n{n} flood device ids on one connection, one good device every 20 ms; medians of {runs} run(s)")
    print(f"{'figure':<26}{args.baseline:>12}{'ours':>12}{'ratio':>10}")
    figures: dict[str, object] = {"devices": n, "runs": runs, "baseline": args.baseline}
    for k in KEYS:
        a, b = med["baseline"][k], med["ours"][k]
        ratio = (b / a if k == "flood_acked_per_s" else a / b) if a and b else float("nan")
        shown = f"{ratio:>9.2f}x" if ratio == ratio else f"{'-':>10}"  # NaN: a zero on either side
        print(f"{k:<26}{a:>12.1f}{b:>12.1f}{shown}")
        figures[f"baseline_{k}"], figures[f"ours_{k}"] = a, b
    print("(ratio: baseline / ours for times, memory and stalls; ours / baseline for acked records/s: > 1 is better)")
    _report.write_json(args.json, figures, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
