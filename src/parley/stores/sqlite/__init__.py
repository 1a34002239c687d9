"""`sqlite:///path.db`: the embedded default, one file in WAL mode.

- store.py: `SQLiteStore`, the `Store` contract on one connection owned by one thread.
- schema.py: the numbered migrations, and how a message sits in a row.
"""

from parley.stores.sqlite.schema import MIGRATIONS
from parley.stores.sqlite.store import SQLiteStore

__all__ = ["MIGRATIONS", "SQLiteStore"]
