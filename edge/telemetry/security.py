"""CURVE for the telemetry link: key pair files, and the collector's ZAP handler with an allow-list of devices.

Key files are ZeroMQ's certificate format (``zmq.auth``): ``NAME.key`` holds the public key, ``NAME.key_secret``
both keys (mode 0600). The device config names its own ``NAME.key_secret`` and the collector's ``.key``; the
collector loads the device public keys it accepts into a :class:`ZapAllowList`.

:class:`ZapAllowList` answers ZAP requests (RFC 27) for every socket of one :class:`zmq.Context`: a CURVE client
whose public key is in the allow-list is accepted, any other is refused and counted. Server sockets set
``curve_server = True`` (:func:`make_curve_server`), so a plaintext (NULL) peer fails the handshake before
any message reaches the application.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from edge.errors import ConfigError

__all__ = [
    "CurveKeys",
    "ZapAllowList",
    "generate_keypair",
    "load_keypair",
    "load_public_key",
    "make_curve_server",
]


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


def generate_keypair(out_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (both keys, mode 0600) into ``out_dir``."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"keys gen --name: expected a plain file stem, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)  # the secret file is never readable by others, not even between write and chmod
    try:
        public, secret = zmq.auth.create_certificates(out, name)
    finally:
        os.umask(old)
    os.chmod(public, 0o644)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


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
    """The collector's ZAP handler: accepts CURVE clients whose public key (Z85) is allowed.

    ``start()`` binds ``inproc://zeromq.zap.01`` in ``context`` (one handler per context) on its own thread;
    ``stop()`` ends it. ``allow``/``revoke`` change the list while it runs; ``refused`` counts handshakes
    refused for an unknown key. Usable as a context manager.
    """

    def __init__(self, context: zmq.Context, keys: Iterable[bytes] = ()) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._keys: set[bytes] = {bytes(k) for k in keys}
        self.refused = 0
        self.accepted = 0
        self._auth: ThreadAuthenticator | None = None

    @classmethod
    def from_dir(cls, context: zmq.Context, directory: str | os.PathLike[str]) -> ZapAllowList:
        """Allow every public key in ``directory``'s ``*.key`` files."""
        return cls(context, zmq.auth.load_certificates(directory).keys())

    def allow(self, public_key: bytes) -> None:
        with self._lock:
            self._keys.add(bytes(public_key))

    def revoke(self, public_key: bytes) -> None:
        with self._lock:
            self._keys.discard(bytes(public_key))

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
