"""CURVE for the telemetry link: key pair files, and the collector's ZAP handler with an allow-list of devices.

Key files are ZeroMQ's certificate format (``zmq.auth``): ``NAME.key`` holds the public key, ``NAME.key_secret``
both keys (mode 0600). The device config names its own ``NAME.key_secret`` and the collector's ``.key``; the
collector loads the device public keys it accepts into a :class:`ZapAllowList`.

**Identity.** Each device key is bound to the device id (or an ``fnmatch`` pattern of ids, such as ``robot-*``) it
may send as: the ``device`` entry of the key file's ``metadata`` section, written by ``edge keys gen --device`` and
``edge keys allow --device``; a key file without one (made before this existed) is bound to its file stem, the
``--name`` it was made with. The collector rejects a record whose ``device`` does not match its connection's key
(code ``identity``, PROTOCOL.md §5), so one stolen or buggy device cannot write as another.

:class:`ZapAllowList` answers ZAP requests (RFC 27) for every socket of one :class:`zmq.Context`: a CURVE client
whose public key is in the allow-list is accepted (its messages carry the key, Z85, as their ``User-Id``), any
other is refused and counted. Server sockets set ``curve_server = True`` (:func:`make_curve_server`), so a
plaintext (NULL) peer fails the handshake before any message reaches the application.
"""

from __future__ import annotations

import datetime
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from edge.errors import ConfigError

__all__ = [
    "CurveKeys",
    "ZapAllowList",
    "check_binding",
    "device_binding",
    "enroll_device_key",
    "generate_keypair",
    "load_keypair",
    "load_public_key",
    "make_curve_server",
]

# what a device binding may be: a device id (1..256 bytes) or an fnmatch pattern of them, printable, no quotes
_BINDING = re.compile(r"[^\s\"'#]{1,256}")


@dataclass(frozen=True)
class CurveKeys:
    """A device's CURVE settings: its own key pair and the collector's public key (Z85 bytes, 40 characters)."""

    public: bytes
    secret: bytes
    server_public: bytes

    def apply_client(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE client of the collector (before ``connect``)."""
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret
        sock.curve_serverkey = self.server_public


def check_binding(device: str, where: str = "keys --device") -> str:
    """``device`` if it is a valid binding (a device id or an fnmatch pattern such as ``robot-*``)."""
    if not isinstance(device, str) or not _BINDING.fullmatch(device) or len(device.encode()) > 256:
        raise ConfigError(
            f"{where}: expected a device id or pattern (1..256 bytes, no spaces or quotes), got {device!r}"
        )
    return device


def _write_certificate(path: Path, public: bytes, secret: bytes | None, device: str) -> None:
    """One key file in ZeroMQ's certificate format, with the device binding in its ``metadata`` section."""
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ****  Generated on {datetime.datetime.now():%Y-%m-%d %H:%M:%S} by edge keys  ****",
        f"#   ZeroMQ CURVE {kind} Certificate (edge: the device it is bound to is metadata's device)",
        "",
        "metadata",
        f'    device = "{device}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def generate_keypair(out_dir: str | os.PathLike[str], name: str, device: str | None = None) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (both keys, mode 0600) into ``out_dir``, both bound to
    ``device`` (a device id or pattern; default ``name``)."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"keys gen --name: expected a plain file stem, got {name!r}")
    binding = check_binding(name if device is None else device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public_key, secret_key = zmq.curve_keypair()
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    old = os.umask(0o077)  # the secret file is never readable by others, not even between write and chmod
    try:
        _write_certificate(secret, public_key, secret_key, binding)
        _write_certificate(public, public_key, None, binding)
    finally:
        os.umask(old)
    os.chmod(public, 0o644)
    os.chmod(secret, 0o600)
    return public, secret


def device_binding(path: str | os.PathLike[str]) -> str:
    """The device id or pattern a key file is bound to: its ``metadata`` ``device``, else its file stem."""
    section = ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"keys: expected a readable ZeroMQ certificate file, got {str(path)!r} ({exc})") from exc
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            section = line.strip()
        elif section == "metadata" and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "device":
                return check_binding(value.strip("\"'"), where=f"{path}: metadata device")
    return check_binding(Path(path).name.split(".key")[0], where=f"{path}: file stem")


def enroll_device_key(
    key_file: str | os.PathLike[str], keys_dir: str | os.PathLike[str], device: str | None = None
) -> Path:
    """Allow a device's public key at a collector: write it, bound to ``device`` (default: the key file's own
    binding), as ``KEYS_DIR/devices/<stem>.key``. Refuses to replace another key enrolled under that name."""
    public = load_public_key(key_file, key="keys allow")
    binding = check_binding(device_binding(key_file) if device is None else device)
    target_dir = Path(keys_dir) / "devices"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{Path(key_file).name.split('.key')[0]}.key"
    if target.exists() and load_public_key(target, key="keys allow") != public:
        raise ConfigError(f"keys allow: {target} already holds another device's key (revoke it first)")
    _write_certificate(target, public, None, binding)
    return target


def _load(path: str | os.PathLike[str], key: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"telemetry.{key}: expected a ZeroMQ certificate file, got {str(path)!r} ({exc})") from exc


def load_keypair(path: str | os.PathLike[str], key: str = "curve_keypair") -> tuple[bytes, bytes]:
    """``(public, secret)`` from a ``.key_secret`` file; :class:`ConfigError` naming ``telemetry.<key>``."""
    public, secret = _load(path, key)
    if not secret:
        raise ConfigError(f"telemetry.{key}: expected a secret key file (NAME.key_secret), got a public one: {path}")
    return public, secret


def load_public_key(path: str | os.PathLike[str], key: str = "collector_public_key") -> bytes:
    """The public key of a ``.key`` (or ``.key_secret``) file."""
    return _load(path, key)[0]


def make_curve_server(sock: zmq.Socket, public: bytes, secret: bytes) -> None:
    """Make ``sock`` a CURVE server (before ``bind``); its context needs a running :class:`ZapAllowList`."""
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret


class ZapAllowList:
    """The collector's ZAP handler: accepts CURVE clients whose public key (Z85) is allowed, and knows which device
    ids each key may send as.

    ``keys``: a mapping public key → device id or pattern (see the module docstring), or an iterable of public keys,
    each bound to ``"*"`` (any device: for tests and tools that do not care). ``start()`` binds
    ``inproc://zeromq.zap.01`` in ``context`` (one handler per context) on its own thread; ``stop()`` ends it.
    ``allow``/``revoke`` change the list while it runs; ``refused`` counts handshakes refused for an unknown key.
    Usable as a context manager.
    """

    def __init__(self, context: zmq.Context, keys: Mapping[bytes, str] | Iterable[bytes] = ()) -> None:
        self._context = context
        self._lock = threading.Lock()
        pairs = keys.items() if isinstance(keys, Mapping) else ((k, "*") for k in keys)
        self._keys: dict[bytes, str] = {bytes(k): check_binding(d, "allow-list") for k, d in pairs}
        self.refused = 0
        self.accepted = 0
        self._auth: ThreadAuthenticator | None = None

    @classmethod
    def from_dir(cls, context: zmq.Context, directory: str | os.PathLike[str]) -> ZapAllowList:
        """Allow every public key in ``directory``'s ``*.key`` files, each bound as :func:`device_binding` says."""
        return cls(context, {load_public_key(p): device_binding(p) for p in sorted(Path(directory).glob("*.key"))})

    def allow(self, public_key: bytes, device: str = "*") -> None:
        with self._lock:
            self._keys[bytes(public_key)] = check_binding(device, "allow-list")

    def revoke(self, public_key: bytes) -> None:
        with self._lock:
            self._keys.pop(bytes(public_key), None)

    def binding(self, user_id: str | bytes | None) -> str | None:
        """The device id or pattern a connection's key (its messages' ``User-Id``, Z85) may send as; None when the
        key is not (or no longer) allowed."""
        if user_id is None:
            return None
        key = user_id.encode() if isinstance(user_id, str) else bytes(user_id)
        with self._lock:
            return self._keys.get(key)

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP decision for one CURVE client key (Z85); called on the handler thread."""
        with self._lock:
            ok = bytes(key) in self._keys
            if ok:
                self.accepted += 1
            else:
                self.refused += 1
        return ok

    def start(self) -> ZapAllowList:
        auth = ThreadAuthenticator(self._context)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=self)
        self._auth = auth
        return self

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def __enter__(self) -> ZapAllowList:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
