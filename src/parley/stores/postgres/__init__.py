"""`postgresql://...`: the PostgreSQL store, shared by many worker processes.

- store.py: `PostgresStore`, the `Store` contract and the `SharedStore` additions.
- schema.py: the numbered migrations.
- turns.py: the cross-process turn queue (advisory locks and fencing tokens).
- events.py: events across processes (NOTIFY, chunked under PostgreSQL's payload limit).
- listener.py: the LISTEN connection both of those rely on.
"""

from parley.stores.postgres.schema import MIGRATIONS
from parley.stores.postgres.store import PostgresStore

__all__ = ["MIGRATIONS", "PostgresStore"]
