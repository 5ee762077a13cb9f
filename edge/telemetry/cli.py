"""``edge keys gen``: CURVE key pairs for the telemetry link (a device's, or the collector's)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _gen(args: argparse.Namespace) -> int:
    from edge.telemetry.security import generate_keypair

    public, secret = generate_keypair(args.out, args.name)  # errors: edge.cli.main reports them
    print(f"public key: {public}\nsecret key: {secret} (mode 0600)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="CURVE key pairs for the encrypted telemetry link")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    gen = sub.add_parser("gen", help="write NAME.key (public) and NAME.key_secret (secret, 0600) into DIR")
    gen.add_argument("--out", required=True, metavar="DIR", help="folder for the key files (created if missing)")
    gen.add_argument("--name", required=True, help="file stem, e.g. the device id or 'collector'")
    gen.set_defaults(handler=_gen)
    keys.set_defaults(handler=lambda _args: (keys.print_help(), 2)[1])
