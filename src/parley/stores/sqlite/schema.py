"""The SQLite schema: numbered migrations, and how a message sits in a row."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

from parley.errors import StoreError
from parley.messages import (
    Message,
    TextPart,
    message_from_fields,
    message_from_json,
    parts_from_json,
    parts_to_json,
    text_part_from_fields,
    usage_from_fields,
)
from parley.stores.base import from_micros, to_micros

__all__ = [
    "MESSAGE_COLUMNS",
    "MIGRATIONS",
    "SEQ_BITS",
    "message_from_row",
    "message_key",
    "message_to_row",
    "migrate",
]

Migration: TypeAlias = str | Callable[[sqlite3.Connection], None]
"""SQL statements separated by ``;``, or a function for a step SQL alone cannot do."""

SEQ_BITS = 32
"""A message's key is ``session number << SEQ_BITS | position in the history``."""

MESSAGE_COLUMNS = (
    "message_id, role, created_at, text, parts, model, "
    "input_tokens, output_tokens, cached_tokens, cost, interrupted, error"
)
_ROLES: frozenset[str] = frozenset(("user", "assistant", "tool"))


def message_key(number: int, seq: int) -> int:
    return (number << SEQ_BITS) | seq


def message_to_row(message: Message) -> tuple[Any, ...]:
    """The values of `MESSAGE_COLUMNS` for `message` (its key is the store's to give)."""
    parts = message.parts
    if len(parts) == 1 and type(parts[0]) is TextPart:
        text, parts_json = parts[0].text, None
    else:
        text, parts_json = None, parts_to_json(parts)
    usage = message.usage
    return (
        message.id,
        message.role,
        to_micros(message.created_at),
        text,
        parts_json,
        message.model,
        None if usage is None else usage.input_tokens,
        None if usage is None else usage.output_tokens,
        None if usage is None else usage.cached_tokens,
        None if usage is None else usage.cost,
        int(message.interrupted),
        message.error,
    )


def message_from_row(row: tuple[Any, ...]) -> Message:
    """The inverse of `message_to_row`, from a row of `MESSAGE_COLUMNS`."""
    mid, role, created, text, parts, model, inputs, outputs, cached, cost, cut, error = row
    if role not in _ROLES:
        raise ValueError(f"unknown message role {role!r}")
    return message_from_fields(
        mid,
        role,
        (text_part_from_fields(text),) if text is not None else parts_from_json(parts),
        from_micros(created),
        model,
        None if inputs is None else usage_from_fields(inputs, outputs, cached, cost),
        bool(cut),
        error,
    )


def _clustered_compact_messages(conn: sqlite3.Connection) -> None:
    # Sessions get a stable number (an explicit column: VACUUM may renumber a plain rowid).
    conn.execute("ALTER TABLE sessions ADD COLUMN number INTEGER")
    conn.execute("UPDATE sessions SET number = rowid")
    conn.execute("CREATE UNIQUE INDEX sessions_by_number ON sessions (number)")
    conn.execute(
        """
        CREATE TABLE messages_v3 (
            key           INTEGER PRIMARY KEY,  -- session number << 32 | position
            message_id    TEXT NOT NULL,
            role          TEXT NOT NULL,
            created_at    INTEGER NOT NULL,     -- microseconds since the epoch
            text          TEXT,                 -- the text of a message of one text part
            parts         TEXT,                 -- otherwise its parts as JSON
            model         TEXT,
            input_tokens  INTEGER,              -- NULL: the message has no usage
            output_tokens INTEGER,
            cached_tokens INTEGER,
            cost          REAL,
            interrupted   INTEGER NOT NULL DEFAULT 0,
            error         TEXT
        )
        """
    )
    old = conn.execute(
        "SELECT s.number, m.seq, m.message_id, m.role, m.body "
        "FROM messages m JOIN sessions s USING (session_id) ORDER BY s.number, m.seq"
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        while batch := old.fetchmany(1000):
            for number, seq, message_id, role, body in batch:
                message = message_from_json(message_id, role, body)
                yield (message_key(number, seq), *message_to_row(message))

    conn.executemany(
        f"INSERT INTO messages_v3 (key, {MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows(),
    )
    conn.execute("DROP TABLE messages")
    conn.execute("ALTER TABLE messages_v3 RENAME TO messages")


# Numbered, append-only: a released migration is never edited; changes come as a new entry.
# PRAGMA user_version records how many have been applied.
MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE sessions (
            session_id     TEXT PRIMARY KEY,
            model          TEXT NOT NULL,
            title          TEXT,
            system_message TEXT,
            metadata       TEXT NOT NULL DEFAULT '{}',
            created_at     INTEGER NOT NULL,
            updated_at     INTEGER NOT NULL,
            message_count  INTEGER NOT NULL DEFAULT 0,
            input_tokens   INTEGER NOT NULL DEFAULT 0,
            output_tokens  INTEGER NOT NULL DEFAULT 0,
            cached_tokens  INTEGER NOT NULL DEFAULT 0,
            cost           REAL,
            settings       TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX sessions_by_updated ON sessions (updated_at DESC, session_id DESC);
        CREATE INDEX sessions_by_model ON sessions (model, updated_at DESC, session_id DESC);
        CREATE TABLE session_tags (
            session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (session_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX session_tags_by_key ON session_tags (key, value);
        CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
            seq        INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            role       TEXT NOT NULL,
            body       TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # Messages in a rowid table: a row of up to about 4 KB stays in its page. In the
        # WITHOUT ROWID table a row over about 1 KB (a typical reply) spilled into an overflow
        # page of its own, so storage came to 4x the text (bench/RESULTS.md).
        "0002_messages_in_a_rowid_table",
        """
        CREATE TABLE messages_v2 (
            session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
            seq        INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            role       TEXT NOT NULL,
            body       TEXT NOT NULL
        );
        INSERT INTO messages_v2 (session_id, seq, message_id, role, body)
            SELECT session_id, seq, message_id, role, body FROM messages ORDER BY session_id, seq;
        DROP TABLE messages;
        ALTER TABLE messages_v2 RENAME TO messages;
        CREATE UNIQUE INDEX messages_by_session ON messages (session_id, seq);
        """,
    ),
    (
        # Clustered, compact message rows (bench/RESULTS.md: resume and storage). A message's
        # key is its session's number and its position, so one session's rows lie together in
        # the table's own b-tree: resume is one range scan, with no second index to keep. The
        # common message (one text part) keeps its text as it is, not inside JSON, and its
        # time, model and usage sit in columns.
        "0003_clustered_compact_messages",
        _clustered_compact_messages,
    ),
    (
        # Comparisons (Client.compare): one JSON document each, listed newest first.
        "0004_comparisons",
        """
        CREATE TABLE comparisons (
            comparison_id TEXT PRIMARY KEY,
            created_at    INTEGER NOT NULL,
            data          TEXT NOT NULL
        );
        CREATE INDEX comparisons_by_created ON comparisons (created_at DESC, comparison_id DESC);
        """,
    ),
    (
        # Every append moves its session's updated_at, and so its entry in each index that
        # holds updated_at. A WAL commit writes whole pages, and each page is most of a
        # write's cost: the model index without updated_at takes a page off every append
        # (about 35 of 110 microseconds; bench/RESULTS.md, added latency). Listing one
        # model's sessions now finds them by model, then orders them (at 100,000 sessions of
        # one model: 14 ms instead of 0.1 ms), or scans the updated_at order when SQLite
        # judges that cheaper.
        "0005_model_index_without_updated_at",
        """
        DROP INDEX sessions_by_model;
        CREATE INDEX sessions_by_model ON sessions (model);
        """,
    ),
)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations `path` lacks, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{str(path)!r} has schema version {version}, newer than this parley knows "
                f"({len(MIGRATIONS)}); upgrade parley to open it"
            )
        for number, (name, step) in enumerate(MIGRATIONS, start=1):
            if number > version:
                if isinstance(step, str):
                    for statement in step.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                else:
                    try:
                        step(conn)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise StoreError(
                            f"cannot migrate {str(path)!r} to {name}: {exc!r}; the file is "
                            "unchanged (open it with the parley that wrote it, or repair the row)"
                        ) from exc
                conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
