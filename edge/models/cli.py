"""``edge model pack|verify|sign|inspect|select`` and ``edge bench``. Handlers raise ``edge`` errors;
:func:`edge.cli.main` prints them and picks the exit code."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _pack(args: argparse.Namespace) -> int:
    from edge.models.manage import pack_model

    pre: dict[str, Any] = {}
    if args.mean:
        pre["mean"] = [float(x) for x in args.mean.split(",")]
    if args.std:
        pre["std"] = [float(x) for x in args.std.split(",")]
    if args.channel_order:
        pre["channel_order"] = args.channel_order
    if args.layout:
        pre["layout"] = args.layout
    out = pack_model(
        args.model,
        args.out,
        name=args.name,
        version=args.version,
        preprocess=pre,
        extra_files=tuple(args.file),
        reference_profile=args.reference_profile,
        signing_key=args.key,
    )
    print(f"packed {args.model} -> {out}{' (signed)' if args.key else ''}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge.models.integrity import trust_key_from_env
    from edge.models.manage import verify_package

    key = args.trust_key or trust_key_from_env()
    pkg = verify_package(args.package, key)
    who = f", signature by key {pkg.signed_by}" if pkg.signed_by else " (signature not checked: no trust key)"
    m = pkg.manifest["model"]
    print(f"OK {args.package}: {m.get('name')} {m.get('version')}, {len(pkg.files)} file(s) match{who}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from edge.models.manage import sign_package

    print(f"signed {sign_package(args.package, args.key)}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from edge.models.inspect import inspect_path
    from edge.models.shapes import parse_shape_items

    info = inspect_path(args.path, args.trust_key, parse_shape_items(args.shape))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['format']}, {info['size_bytes']} bytes, sha256 {info['sha256']}")
    if "package" in info:
        p = info["package"]
        print(f"package   {p['name']} {p['version']}, signed: {p['signed']}, files: {', '.join(p['files'])}")
    print(f"opset     {info['opset']}   quantization: {info['quantization']}")
    for kind in ("inputs", "outputs"):
        for s in info[kind]:
            q = f" scale={s['scale']:.6g} zero_point={s['zero_point']}" if "scale" in s else ""
            print(f"{kind[:-1]:9} {s['name']} {s['shape']} {s['dtype']}{q}")
    print("operators " + ", ".join(f"{k}×{v}" for k, v in info["operators"].items()))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from edge.models import load_model
    from edge.models.bench import bench_model, format_report
    from edge.models.shapes import parse_shape_items

    values = _values(args.value)
    model = load_model(
        args.model,
        shapes=parse_shape_items(args.shape),
        profile=args.profile,
        providers=[args.provider] if args.provider else None,
        threads=args.threads,
        strict=bool(args.provider and args.strict),
        warmup=0 if values else max(args.warmup, 1),  # constant inputs: warm up on them, in bench_model
    )
    fig = bench_model(model, runs=args.runs, warmup=args.warmup, threads=model.options.threads, values=values)
    print(json.dumps(fig, indent=2) if args.json else format_report(fig))
    return 0


def _select(args: argparse.Namespace) -> int:
    from edge.models.integrity import trust_key_from_env
    from edge.models.machine import cpu_info, format_features
    from edge.models.package import read_package
    from edge.models.select import select_variant, write_selection

    pkg = read_package(args.package, args.trust_key or trust_key_from_env())
    trials, chosen = select_variant(pkg, threads=args.threads, runs=args.runs, min_agreement=args.min_agreement)
    print(format_features(cpu_info()))
    print(f"{'variant':28}{'options':22}{'p50 µs':>10}{'top-1 agree':>13}  gate")
    for t in trials:
        if t.error:
            print(f"{t.file:28}{t.options:22}{'-':>10}{'-':>13}  error: {t.error[:60]}")
        else:
            print(f"{t.file:28}{t.options:22}{t.p50_us:10.1f}{t.agreement:13.3f}  {'pass' if t.passed else 'FAIL'}")
    if chosen is None:
        from edge.errors import ModelError

        raise ModelError(
            f"{args.package}: no variant passed the accuracy gate (top-1 agreement >= {args.min_agreement})"
        )
    out = write_selection(args.package, pkg, trials, chosen)
    print(f"chose {chosen.file} ({chosen.options}, {chosen.p50_us:.1f} µs) -> {out}")
    return 0


def _values(items: list[str]) -> dict[str, float]:
    """``--value NAME=NUMBER`` items → ``{name: number}``."""
    from edge.errors import ConfigError

    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            out[name.strip()] = float(text)
        except ValueError:
            raise ConfigError(f"--value: expected NAME=NUMBER such as sr=16000, got {item!r}") from None
        if not sep or not name.strip():
            raise ConfigError(f"--value: expected NAME=NUMBER such as sr=16000, got {item!r}")
    return out


def _shape_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="shape of a dynamic input, e.g. input=1x512 (repeatable; checked against the graph)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``model`` (pack, verify, sign, inspect, select) and ``bench``."""
    model = subparsers.add_parser("model", help="prepare and check a model package")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    p = sub.add_parser("pack", help="build a package (folder, or .tar/.tar.gz/.tgz archive) from a model file")
    p.add_argument("model", help=".onnx or .tflite file")
    p.add_argument("-o", "--out", required=True, help="package folder, or archive path ending in .tar.gz/.tgz/.tar")
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--mean", help="preprocessing mean per channel, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", help="preprocessing std per channel")
    p.add_argument("--channel-order", help="model channel order, e.g. RGB")
    p.add_argument("--layout", choices=("NCHW", "NHWC"))
    p.add_argument("--reference-profile", help="drift reference profile file to put in the package")
    p.add_argument("--file", action="append", default=[], help="extra file to include (repeatable)")
    p.add_argument("--key", help="Ed25519 private key (PEM) to sign with")
    p.set_defaults(handler=_pack)

    p = sub.add_parser("verify", help="check every file against the manifest (and the signature with a trust key)")
    p.add_argument("package")
    p.add_argument("--trust-key", help="Ed25519 public key (PEM); default $EDGE_TRUST_KEY")
    p.set_defaults(handler=_verify)

    p = sub.add_parser("sign", help="sign a package's manifest with an Ed25519 private key")
    p.add_argument("package")
    p.add_argument("--key", required=True, help="Ed25519 private key (PEM)")
    p.set_defaults(handler=_sign)

    p = sub.add_parser("inspect", help="IO spec, quantization, operators, opset and size of a model or package")
    p.add_argument("path")
    p.add_argument("--trust-key", help="Ed25519 public key (PEM) to check a package's signature with")
    p.add_argument("--json", action="store_true")
    _shape_option(p)
    p.set_defaults(handler=_inspect)

    p = sub.add_parser("select", help="time the package's variants on this machine and record the fastest that passes")
    p.add_argument("package")
    p.add_argument("--runs", type=int, default=200, help="timed runs per candidate")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-agreement", type=float, default=0.95, help="accuracy gate: top-1 agreement with the model")
    p.add_argument("--trust-key", help="Ed25519 public key (PEM); default $EDGE_TRUST_KEY")
    p.set_defaults(handler=_select)

    from edge.tooling.cli import register_model_actions

    register_model_actions(sub)  # quantize, profile

    b = subparsers.add_parser("bench", help="latency of a model through edge and bare through its runtime")
    b.add_argument("model", metavar="MODEL_OR_PACKAGE")
    b.add_argument("--runs", type=int, default=1000)
    b.add_argument("--warmup", type=int, default=50)
    b.add_argument("--threads", type=int)
    b.add_argument("--provider", help="tensorrt, cuda, xnnpack or cpu (falls back with a logged reason)")
    b.add_argument("--strict", action="store_true", help="fail when --provider is not available")
    b.add_argument("--profile", help="provider profile TOML, e.g. toolchains/jetson/profile.toml")
    b.add_argument("--json", action="store_true")
    _shape_option(b)
    b.add_argument("--value", action="append", default=[], metavar="NAME=NUMBER",
                   help="a constant input instead of random values, e.g. sr=16000 (repeatable)")  # fmt: skip
    b.set_defaults(handler=_bench)
