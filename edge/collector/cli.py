"""``edge collector``: run the fleet drift collector as a service until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

__all__ = ["SWITCH_INTERVAL_S", "register"]

SWITCH_INTERVAL_S = 0.0005  # the interpreter's switch interval while `edge collector` runs (s)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
    return host or "127.0.0.1", int(port)


def _horizons(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected window counts like 10,60, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected window counts >= 1, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _run(args: argparse.Namespace) -> int:
    from edge.collector.server import CollectorServer, CollectorSettings
    from edge.errors import ConfigError

    if (args.role == "all") != (args.bus is None):
        raise ConfigError(f"collector --bus: expected with --role gateway or worker only, got --role {args.role}")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = CollectorSettings(
        bind=args.bind,
        db=args.db,
        http=None if args.no_http else args.http,
        keys=None if args.keys is None else Path(args.keys),
        profiles=None if args.profiles is None else Path(args.profiles),
        horizons=args.horizons,
        **({} if args.max_tracks is None else {"max_tracks": args.max_tracks}),
        latency_budget_us=args.latency_budget_us,
        webhook=args.webhook,
        pub=args.pub,
        role="gateway" if args.role == "gateway" else "all",
        bus=args.bus if args.role == "gateway" else None,
    )
    # The ingest and commit threads hold the GIL only briefly between I/O waits; with the default 5 ms switch
    # interval they may wait that long for the scoring thread at every wake-up. Process-wide, so the program sets
    # it, not the library.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.role == "worker":
        from edge.collector.worker import FleetWorker

        # errors: edge.cli.main reports them
        worker = FleetWorker(settings, args.bus, batch=args.fetch_batch, ack_wait_s=args.ack_wait_s)
        print(f"edge collector: worker on {args.bus}, db {settings.db} (scores while it holds the lease)", flush=True)
        try:
            stop.wait()
        finally:
            worker.close()
        return 0
    server = CollectorServer(settings)
    http = f", dashboard {server.http.url}/" if server.http is not None else ""
    bus = f", publishing to {args.bus}" if args.bus else ""
    print(f"edge collector: ingest on {server.endpoint}, db {settings.db}{bus}{http}", flush=True)
    try:
        stop.wait()
    finally:
        server.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("collector", help="run the fleet drift collector (ingest, store, drift, alerts, HTTP)")
    p.add_argument("--bind", default="tcp://127.0.0.1:7450", help="ZeroMQ endpoint devices connect to")
    p.add_argument("--db", default="collector.db", metavar="URL",
                   help="the store: a SQLite file (PATH, sqlite:///PATH) or postgresql://USER@HOST/DB")  # fmt: skip
    p.add_argument("--http", type=_host_port, default=("127.0.0.1", 8080), metavar="HOST:PORT",
                   help="dashboard, JSON API and /metrics")  # fmt: skip
    p.add_argument("--no-http", action="store_true", help="no HTTP server")
    p.add_argument("--keys", metavar="DIR", help="collector.key_secret and the allowed devices' *.key (CURVE)")
    p.add_argument("--profiles", metavar="DIR", help="model packages / profile JSON files with reference profiles")
    p.add_argument("--horizons", type=_horizons, default=(10, 60), help="rolling horizons in windows (first alerts)")
    p.add_argument("--max-tracks", type=_positive_int, default=None, metavar="N",
                   help="device tracks (rolling horizons) kept in memory (default 4096); the least recently active "
                   "beyond N are evicted and rebuilt from the store when their device sends again")  # fmt: skip
    p.add_argument("--latency-budget-us", type=float, default=None, help="per-frame latency budget (µs)")
    p.add_argument("--webhook", metavar="URL", help="POST alert events as JSON to URL")
    p.add_argument("--role", choices=("all", "gateway", "worker"), default="all",
                   help="all: one process, no NATS (default); gateway: ZeroMQ ingest to the bus; worker: bus to store, "
                   "scoring (docs/FLEET.md)")  # fmt: skip
    p.add_argument(
        "--bus", metavar="URL", help="NATS JetStream servers for --role gateway|worker: nats://HOST:PORT[,...]"
    )
    p.add_argument("--fetch-batch", type=int, default=512, metavar="N", help="--role worker: messages fetched at once")
    p.add_argument("--ack-wait-s", type=float, default=10.0, metavar="S",
                   help="--role worker: seconds JetStream waits for a worker's ack before redelivering")  # fmt: skip
    p.add_argument("--pub", metavar="ENDPOINT", help="publish alert events on a ZeroMQ PUB socket")
    p.set_defaults(handler=_run)
