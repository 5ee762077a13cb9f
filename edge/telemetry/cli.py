"""``edge keys gen|allow``: CURVE key pairs for the telemetry link (a device's, or the collector's), each device key
bound to the device id (or pattern) it may send as; enrolling a device's public key at a collector."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _gen(args: argparse.Namespace) -> int:
    from edge.telemetry.security import generate_keypair

    public, secret = generate_keypair(args.out, args.name, device=args.device)  # errors: edge.cli.main reports them
    print(f"public key: {public}\nsecret key: {secret} (mode 0600)\nbound to device: {args.device or args.name}")
    return 0


def _allow(args: argparse.Namespace) -> int:
    from edge.telemetry.security import device_binding, enroll_device_key

    target = enroll_device_key(args.key, args.keys, device=args.device)  # errors: edge.cli.main reports them
    binding = device_binding(target)
    print(f"allowed: {target} (may send as device {binding!r}; a running collector reads it at its next start)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="CURVE key pairs for the encrypted telemetry link")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    gen = sub.add_parser("gen", help="write NAME.key (public) and NAME.key_secret (secret, 0600) into DIR")
    gen.add_argument("--out", required=True, metavar="DIR", help="folder for the key files (created if missing)")
    gen.add_argument("--name", required=True, help="file stem, e.g. the device id or 'collector'")
    gen.add_argument("--device", metavar="ID", help="the device id (or pattern, e.g. 'robot-*') the key may send "
                     "as (default: --name)")  # fmt: skip
    gen.set_defaults(handler=_gen)
    allow = sub.add_parser("allow", help="enrol a device's public key at a collector: KEYS/devices/NAME.key, bound "
                           "to its device id")  # fmt: skip
    allow.add_argument("key", metavar="KEY", help="the device's NAME.key (public key file)")
    allow.add_argument("--keys", required=True, metavar="DIR", help="the collector's --keys folder")
    allow.add_argument("--device", metavar="ID", help="the device id or pattern it may send as (default: the one "
                       "the key file names, else its file stem)")  # fmt: skip
    allow.set_defaults(handler=_allow)
    keys.set_defaults(handler=lambda _args: (keys.print_help(), 2)[1])
