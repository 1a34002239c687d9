"""`postgresql://...`: sessions in PostgreSQL, through psycopg 3 and its connection pool.

The same `Store` contract as SQLite and memory. Every write is one short transaction; an append
locks its session's row (`FOR UPDATE`), so appends to one session from several processes are
serialised and sequence numbers never collide. Schema changes are numbered migrations, applied
under an advisory lock so that workers starting together do not race.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from parley.errors import ConfigError, SessionExistsError, SessionNotFoundError, StoreError
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, Usage, message_from_json, message_to_json, utcnow
from parley.stores.base import (
    SessionQuery,
    encode_cursor,
    from_micros,
    session_filter,
    settings_from_json,
    settings_to_json,
    to_micros,
    total_usage,
)

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - only without the `postgres` extra
    _missing: ImportError | None = exc
else:
    _missing = None

__all__ = ["MIGRATIONS", "PostgresStore"]

# Numbered, append-only: a released migration is never edited.
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
)

_COLUMNS = (
    "session_id, model, title, system_message, metadata, created_at, updated_at, "
    "message_count, input_tokens, output_tokens, cost, cached_tokens, settings"
)


def _row_to_info(row: Sequence[Any]) -> SessionInfo:
    return SessionInfo(
        session_id=row[0],
        model=row[1],
        title=row[2],
        system_message=row[3],
        metadata=json.loads(row[4]),
        created_at=from_micros(row[5]),
        updated_at=from_micros(row[6]),
        message_count=row[7],
        usage=Usage(input_tokens=row[8], output_tokens=row[9], cost=row[10], cached_tokens=row[11]),
        **settings_from_json(row[12]),
    )


class PostgresStore:
    """A store in a PostgreSQL database, shared by as many processes as you like."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if _missing is not None:
            raise ConfigError(
                "the PostgreSQL store needs psycopg: pip install 'parley[postgres]'"
            ) from _missing
        self.url = url
        self._sizes = (min_size, max_size)
        self._pool: AsyncConnectionPool | None = None
        self._claim: psycopg.AsyncConnection[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({_without_password(self.url)!r})"

    def _fail(self, exc: Exception) -> StoreError:
        return StoreError(f"PostgreSQL store {_without_password(self.url)!r} failed: {exc}")

    @property
    def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise StoreError(f"{self!r} is not open; start the client (or await store.open())")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            self.url, min_size=self._sizes[0], max_size=self._sizes[1], open=False
        )
        try:
            await pool.open(wait=True, timeout=30)
            async with pool.connection() as conn, conn.transaction():
                await self._migrate(conn)
            await self._take_claim()
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(
                f"cannot open PostgreSQL store {_without_password(self.url)!r}: {exc}"
            ) from exc
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
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
                for statement in script.split(";"):
                    if statement.strip():
                        await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO parley_migrations (version, name) VALUES (%s, %s)",
                    (number, name),
                )

    async def _take_claim(self) -> None:
        """Hold the database for this client. Turns are queued in one process, so until the
        cross-process turn queue lands, a second client on the same database is refused
        rather than allowed to interleave turns."""
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext('parley-client'))")
        row = await cursor.fetchone()
        if not (row and row[0]):
            await conn.close()
            raise StoreError(
                f"PostgreSQL store {_without_password(self.url)!r} is already open in another "
                "parley client; in this version one client at a time uses a database (the "
                "queue that lets several workers share it is not there yet)"
            )
        self._claim = conn

    async def close(self) -> None:
        if self._claim is not None:
            claim, self._claim = self._claim, None
            await claim.close()  # the advisory lock goes with the connection
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # --- sessions ---------------------------------------------------------------------------

    async def create_session(self, info: SessionInfo) -> None:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute(
                    f"INSERT INTO sessions ({_COLUMNS}) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        info.session_id,
                        info.model,
                        info.title,
                        info.system_message,
                        json.dumps(dict(info.metadata), ensure_ascii=False),
                        to_micros(info.created_at),
                        to_micros(info.updated_at),
                        info.message_count,
                        info.usage.input_tokens,
                        info.usage.output_tokens,
                        info.usage.cost,
                        info.usage.cached_tokens,
                        settings_to_json(info),
                    ),
                )
                for key, value in info.metadata.items():
                    await conn.execute(
                        "INSERT INTO session_tags (session_id, key, value) VALUES (%s,%s,%s)",
                        (info.session_id, key, value),
                    )
        except psycopg.errors.UniqueViolation:
            raise SessionExistsError(info.session_id) from None
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    async def get_session(self, session_id: str) -> SessionInfo:
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM sessions WHERE session_id = %s", (session_id,)
                )
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc
        if row is None:
            raise SessionNotFoundError(session_id)
        return _row_to_info(row)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        where, params = session_filter(query, "%s")
        sql = f"SELECT {_COLUMNS} FROM sessions s{where}"
        sql += " ORDER BY updated_at DESC, session_id DESC LIMIT %s"
        params.append(query.limit + 1)
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc
        infos = [_row_to_info(row) for row in rows[: query.limit]]
        cursor_out = None
        if len(rows) > query.limit:
            cursor_out = encode_cursor(infos[-1].updated_at, infos[-1].session_id)
        return SessionPage(tuple(infos), cursor_out)

    async def update_session(
        self,
        session_id: str,
        *,
        model: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        sets = ["updated_at = %s"]
        params: list[Any] = [to_micros(utcnow())]
        for column, value in (("model", model), ("title", title)):
            if value is not None:
                sets.append(f"{column} = %s")
                params.append(value)
        if metadata is not None:
            sets.append("metadata = %s")
            params.append(json.dumps(dict(metadata), ensure_ascii=False))
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    f"UPDATE sessions SET {', '.join(sets)} WHERE session_id = %s",
                    (*params, session_id),
                )
                if cursor.rowcount == 0:
                    raise SessionNotFoundError(session_id)
                if metadata is not None:
                    await conn.execute(
                        "DELETE FROM session_tags WHERE session_id = %s", (session_id,)
                    )
                    for key, value in metadata.items():
                        await conn.execute(
                            "INSERT INTO session_tags (session_id, key, value) VALUES (%s,%s,%s)",
                            (session_id, key, value),
                        )
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    async def delete_session(self, session_id: str) -> None:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "DELETE FROM sessions WHERE session_id = %s", (session_id,)
                )
                if cursor.rowcount == 0:
                    raise SessionNotFoundError(session_id)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    # --- history ----------------------------------------------------------------------------

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        rows = [(m.id, m.role, message_to_json(m)) for m in messages]
        usage = total_usage(messages)
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "SELECT message_count FROM sessions WHERE session_id = %s FOR UPDATE",
                    (session_id,),
                )
                found = await cursor.fetchone()
                if found is None:
                    raise SessionNotFoundError(session_id)
                start = int(found[0])
                async with conn.cursor() as insert:
                    await insert.executemany(
                        "INSERT INTO messages (session_id, seq, message_id, role, body) "
                        "VALUES (%s,%s,%s,%s,%s)",
                        [(session_id, start + i, *row) for i, row in enumerate(rows)],
                    )
                await conn.execute(
                    "UPDATE sessions SET message_count = message_count + %s, updated_at = %s, "
                    "input_tokens = input_tokens + %s, output_tokens = output_tokens + %s, "
                    "cached_tokens = cached_tokens + %s, "
                    "cost = CASE WHEN %s::float8 IS NULL THEN cost "
                    "ELSE COALESCE(cost, 0) + %s::float8 END WHERE session_id = %s",
                    (
                        len(rows),
                        to_micros(utcnow()),
                        usage.input_tokens,
                        usage.output_tokens,
                        usage.cached_tokens,
                        usage.cost,
                        usage.cost,
                        session_id,
                    ),
                )
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    async def read_messages(self, session_id: str) -> list[Message]:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "SELECT 1 FROM sessions WHERE session_id = %s", (session_id,)
                )
                if await cursor.fetchone() is None:
                    raise SessionNotFoundError(session_id)
                cursor = await conn.execute(
                    "SELECT message_id, role, body FROM messages WHERE session_id = %s "
                    "ORDER BY seq",
                    (session_id,),
                )
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc
        return [message_from_json(*row) for row in rows]


def _without_password(url: str) -> str:
    """The URL for messages and reprs: a password never shows."""
    from parley.models.faults import safe_url

    return safe_url(url)
