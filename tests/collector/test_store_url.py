"""``--db`` URLs: a plain path and ``sqlite:///`` name a SQLite file, ``postgresql://`` the PostgreSQL store,
anything else is a configuration error; the collector runs on a ``sqlite:///`` URL as on a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.collector.server import CollectorServer, CollectorSettings
from edge.collector.store import RecordStore
from edge.collector.stores import open_store, store_url
from edge.errors import ConfigError


def test_urls_name_their_backend() -> None:
    assert store_url("collector.db") == ("sqlite", "collector.db")
    assert store_url(Path("/var/lib/c.db")) == ("sqlite", "/var/lib/c.db")
    assert store_url("sqlite:///rel/c.db") == ("sqlite", "rel/c.db")
    assert store_url("sqlite:////abs/c.db") == ("sqlite", "/abs/c.db")
    assert store_url("postgresql://edge@db.local:5432/fleet") == ("postgresql", "postgresql://edge@db.local:5432/fleet")
    assert store_url("postgres://edge@db/fleet")[0] == "postgresql"
    with pytest.raises(ConfigError, match="got scheme 'mysql'"):
        store_url("mysql://x/y")
    with pytest.raises(ConfigError, match="expected sqlite:///PATH"):
        store_url("sqlite://host/c.db")


def test_a_sqlite_url_opens_the_same_file_as_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///rel.db")
    assert isinstance(store, RecordStore) and store.path == Path("rel.db")
    store.close()
    assert (tmp_path / "rel.db").is_file()
    with CollectorServer(CollectorSettings(bind="tcp://127.0.0.1:0", db=f"sqlite:///{tmp_path}/s.db",
                                           http=None)) as server:  # fmt: skip
        assert server.store.path == tmp_path / "s.db"
    assert (tmp_path / "s.db").is_file()
