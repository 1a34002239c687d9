"""The PostgreSQL schema: numbered migrations, applied once each under an advisory lock."""

from __future__ import annotations

import contextlib
from typing import Any

from parley.errors import StoreError

with contextlib.suppress(ImportError):  # without the `postgres` extra, PostgresStore says so
    import psycopg

__all__ = ["MIGRATIONS", "migrate"]

# Numbered and append-only: a released migration is never edited, a change is a new one.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE sessions (
            session_id     TEXT PRIMARY KEY,
            model          TEXT NOT NULL,
            title          TEXT,
            system_message TEXT,
            metadata       TEXT NOT NULL DEFAULT '{}',
            created_at     BIGINT NOT NULL,
            updated_at     BIGINT NOT NULL,
            message_count  INTEGER NOT NULL DEFAULT 0,
            input_tokens   BIGINT NOT NULL DEFAULT 0,
            output_tokens  BIGINT NOT NULL DEFAULT 0,
            cached_tokens  BIGINT NOT NULL DEFAULT 0,
            cost           DOUBLE PRECISION,
            settings       TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX sessions_by_updated ON sessions (updated_at DESC, session_id DESC);
        CREATE INDEX sessions_by_model ON sessions (model, updated_at DESC, session_id DESC);
        CREATE TABLE session_tags (
            session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (session_id, key)
        );
        CREATE INDEX session_tags_by_key ON session_tags (key, value);
        CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
            seq        INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            role       TEXT NOT NULL,
            body       TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        );
        """,
    ),
    (
        # The fencing token of the cross-process turn queue (see stores/postgres/turns.py),
        # and histories made append-only by the database itself, not only by parley's code.
        "0002_turn_token_and_append_only",
        """
        ALTER TABLE sessions ADD COLUMN turn_token BIGINT NOT NULL DEFAULT 0;
        CREATE FUNCTION parley_messages_are_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'parley histories are append-only: a stored message is never '
                    'changed (session %, seq %)', OLD.session_id, OLD.seq;
            END $$;
        CREATE TRIGGER messages_append_only BEFORE UPDATE ON messages
            FOR EACH ROW EXECUTE FUNCTION parley_messages_are_append_only();
        """,
    ),
    (
        # Comparisons (Client.compare): one JSON document each, listed newest first.
        "0003_comparisons",
        """
        CREATE TABLE comparisons (
            comparison_id TEXT PRIMARY KEY,
            created_at    BIGINT NOT NULL,
            data          TEXT NOT NULL
        );
        CREATE INDEX comparisons_by_created ON comparisons (created_at DESC, comparison_id DESC);
        """,
    ),
)


def _statements(script: str) -> list[str]:
    """A migration's statements: split on ';' at line ends, keeping $$ bodies whole."""
    statements: list[str] = []
    current: list[str] = []
    quoted = False
    for line in script.splitlines():
        current.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]


async def migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Bring the schema up to date, in the caller's transaction, one worker at a time."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('parley-migrations'))")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS parley_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
    )
    cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM parley_migrations")
    row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the database has schema version {version}, newer than this parley knows "
            f"({len(MIGRATIONS)}); upgrade parley to use it"
        )
    for number, (name, script) in enumerate(MIGRATIONS, start=1):
        if number > version:
            for statement in _statements(script):
                await conn.execute(statement.encode())
            await conn.execute(
                "INSERT INTO parley_migrations (version, name) VALUES (%s, %s)", (number, name)
            )
