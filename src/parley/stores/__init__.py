"""Stores: the `Store` protocol and its implementations, chosen by URL.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: one SQLite file (default
  ``sqlite:///.parley/parley.db``).
- ``memory://``: this process only.
- ``postgresql://user@host:port/db``: PostgreSQL (``pip install 'parley[postgres]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

from parley.errors import ConfigError
from parley.stores.base import SessionQuery, Store
from parley.stores.memory import MemoryStore
from parley.stores.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_STORE_URL",
    "MemoryStore",
    "SQLiteStore",
    "SessionQuery",
    "Store",
    "default_store_url",
    "store_from_url",
]

DEFAULT_STORE_URL = "sqlite:///.parley/parley.db"


def default_store_url() -> str:
    """``$PARLEY_STORE`` when set, else the SQLite file ``./.parley/parley.db``."""
    return os.environ.get("PARLEY_STORE") or DEFAULT_STORE_URL


def store_from_url(url: str) -> Store:
    """The store a URL names; ConfigError says which forms exist when it names none."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "memory":
        if rest not in ("", "/"):
            raise ConfigError(f"memory:// takes no path, got {url!r}")
        return MemoryStore()
    if sep and scheme == "sqlite":
        # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db" (SQLAlchemy's convention)
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(
                f"bad SQLite URL {url!r}: write sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        return SQLiteStore(Path(rest[1:]))
    if sep and scheme in ("postgres", "postgresql"):
        from parley.stores.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        f"unknown store URL {url!r}; use 'sqlite:///path/to/file.db' (the default is "
        f"{DEFAULT_STORE_URL!r}), 'memory://' or 'postgresql://user@host/db'"
    )
