"""Reference profiles the collector knows, by profile id (the hash a device's hello and windows name).

Two sources: a directory of model packages (each package's manifest names its ``[reference_profile] file``; loose
``*.json`` profiles are read too), and uploads (``PUT /api/profiles/ID``, or a device's hello carrying
``profile_json`` when the collector asked for it: the profile's canonical JSON, checked against its hash and stored
once in the collector's database, where a restarted collector finds it). A hello whose profile id is known gives
the device's model a :class:`~edge.collector.engine.ModelReference`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from edge.collector.stores import Store
from edge.drift.profile import ReferenceProfile, load_profile
from edge.errors import ConfigError, EdgeError

__all__ = ["ProfileLibrary"]

log = logging.getLogger("edge.collector")


class ProfileLibrary:
    """Profiles by id; thread-safe (uploads arrive on HTTP threads, lookups on the ingest thread)."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._profiles: dict[str, ReferenceProfile] = {}
        self.uploaded = 0  # valid uploads (new or already known)
        self.rejected = 0  # uploads refused: invalid, or not hashing to the id they claim
        if store is not None:
            for pid in store.profile_ids():
                body = store.profile(pid)
                if body is not None:
                    self._profiles[pid] = load_profile(body)

    def load_dir(self, directory: str | Path) -> int:
        """Read every model package (folder or archive with a ``manifest.toml``) and ``*.json`` profile directly
        under ``directory``; returns how many profiles were added. A package that fails verification is logged
        and skipped."""
        from edge.models.package import read_package

        root = Path(directory)
        if not root.is_dir():
            raise ConfigError(f"collector --profiles: expected a directory of model packages, got {str(root)!r}")
        added = 0
        for path in sorted(root.iterdir()):
            try:
                if path.suffix == ".json":
                    profile = load_profile(path)
                elif (path / "manifest.toml").is_file() or path.name.endswith((".tar", ".tar.gz", ".tgz")):
                    pkg = read_package(path)
                    name = str(pkg.manifest.get("reference_profile", {}).get("file", "") or "")
                    if not name:
                        continue
                    profile = load_profile(pkg.files[name])
                else:
                    continue
            except (EdgeError, OSError, KeyError) as exc:
                log.warning("reference profiles: skipping %s (%s)", path, exc)
                continue
            added += self.add(profile)
        return added

    def add(self, profile: ReferenceProfile, profile_id: str | None = None) -> bool:
        """Know ``profile`` under ``profile_id`` (default: its own canonical id); False when the id was known."""
        pid = profile.profile_id if profile_id is None else profile_id
        with self._lock:
            new = pid not in self._profiles
            self._profiles[pid] = profile
        return new

    def upload(self, profile_id: str, body: bytes) -> bool:
        """An uploaded profile (``PUT /api/profiles/ID`` or a device's hello): ``body`` must be a valid profile
        whose id is ``profile_id`` — the SHA-256 of ``body`` as sent, or of the profile's canonical JSON as this
        collector writes it (PROTOCOL.md §8: a client that writes the count of a moment as ``1000`` where Python
        writes ``1000.0`` hashes its own bytes). Stored once, as sent; returns False when it was already known.
        :class:`ConfigError` when it is invalid or neither hash is the id (counted in :attr:`rejected`)."""
        try:
            profile = load_profile(body)
        except ConfigError:
            self.rejected += 1
            raise
        except (ValueError, TypeError, RecursionError) as exc:  # JSON nested too deeply, odd values
            self.rejected += 1
            msg = f"profile upload: expected a reference profile, got one that fails to load ({exc!r:.80})"
            raise ConfigError(msg) from exc
        sent_id = hashlib.sha256(body).hexdigest()[:16]
        if profile_id not in (sent_id, profile.profile_id):
            self.rejected += 1
            raise ConfigError(f"profile upload: expected a profile whose id is {profile_id}, got {profile.profile_id}")
        self.uploaded += 1
        if self._store is not None:
            self._store.put_profile(profile_id, body if sent_id == profile_id else profile.to_bytes())
        return self.add(profile, profile_id)

    def get(self, profile_id: str) -> ReferenceProfile | None:
        with self._lock:
            return self._profiles.get(profile_id)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._profiles)
