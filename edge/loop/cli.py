"""``edge run device.toml`` and ``edge service unit [--config PATH] [--user U]``."""

from __future__ import annotations

import argparse
import logging

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from edge.device.service import run_service

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return run_service(args.config, record=args.record)  # errors: edge.cli.main prints them and picks the exit code


def _unit(args: argparse.Namespace) -> int:
    from edge.device.service import systemd_unit

    print(systemd_unit(args.config, args.user), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the on-device loop described by a device.toml until SIGTERM")
    p.add_argument("config", help="path to device.toml")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--record", metavar="OUT.mcap", help="record frames, decisions, health and timings to MCAP")
    p.set_defaults(handler=_run)
    s = subparsers.add_parser("service", help="service helpers (systemd)")
    sub = s.add_subparsers(dest="service_command", metavar="SUBCOMMAND", required=True)
    u = sub.add_parser("unit", help="print a systemd unit for `edge run`")
    u.add_argument("--config", default="/etc/edge/device.toml", help="device.toml path (default %(default)s)")
    u.add_argument("--user", help="run the service as this user")
    u.set_defaults(handler=_unit)
