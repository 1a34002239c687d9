"""`postgresql://...`: sessions in PostgreSQL, shared by any number of worker processes.

The same `Store` contract as SQLite and memory, through psycopg 3 and its connection pool.
Every write is one short transaction; an append locks its session's row (`FOR UPDATE`), so
sequence numbers never collide. On top of that, a `SharedStore`: turns take a session
(`acquire`, see turns.py) so that workers never interleave one session's turns, and events go
to every worker (events.py). Schema changes are numbered migrations (schema.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parley.comparison import Comparison, ComparisonPage
from parley.errors import (
    ComparisonNotFoundError,
    ConfigError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
)
from parley.events import SessionEvent
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, Usage, message_from_json, message_to_json, utcnow
from parley.stores.base import (
    Lease,
    SessionQuery,
    comparison_exists,
    comparison_from_json,
    encode_cursor,
    from_micros,
    session_filter,
    settings_from_json,
    settings_to_json,
    to_micros,
    total_usage,
)
from parley.stores.comparisons import ComparisonSQL
from parley.stores.postgres.events import EVENTS, EventShare, ShareEvents
from parley.stores.postgres.listener import Listener
from parley.stores.postgres.schema import migrate
from parley.stores.postgres.turns import RELEASED, TurnLocks

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - only without the `postgres` extra
    _missing: ImportError | None = exc
else:
    _missing = None

__all__ = ["PostgresStore", "list_sql"]

_COMPARISONS = ComparisonSQL("%s")
_FLUSH_BEFORE_RELEASE = 2.0
"""Seconds a release waits, at most, for the turn's events to go out first."""

_COLUMNS = (
    "session_id, model, title, system_message, metadata, created_at, updated_at, "
    "message_count, input_tokens, output_tokens, cost, cached_tokens, settings"
)


def list_sql(query: SessionQuery) -> tuple[str, list[Any]]:
    """The query behind `list_sessions` (one row more than a page, to know if another follows).

    Every filter has an index: `sessions_by_updated` for the newest first,
    `sessions_by_model` for a model, and `session_tags_by_key` for a tag or metadata pair.
    """
    where, params = session_filter(query, "%s")
    sql = f"SELECT {_COLUMNS} FROM sessions s{where}"
    sql += " ORDER BY updated_at DESC, session_id DESC LIMIT %s"
    params.append(query.limit + 1)
    return sql, params


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
    """A store in a PostgreSQL database, shared by as many worker processes as you like.

    `max_size` bounds the connection pool; each open store also keeps two connections of its
    own (session locks, LISTEN). `share_events` says which events other workers receive:
    "all", "durable" (no text deltas) or "off". `poll` is how often (seconds) a turn waiting
    for a session that another worker holds checks again besides being notified, which bounds
    how long a session stays stuck after its worker died.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        share_events: ShareEvents = "all",
        poll: float = 0.5,
    ) -> None:
        if _missing is not None:
            raise ConfigError(
                "the PostgreSQL store needs psycopg: pip install 'parley[postgres]'"
            ) from _missing
        if share_events not in ("all", "durable", "off"):
            raise ConfigError(
                f"share_events must be 'all', 'durable' or 'off', not {share_events!r}"
            )
        if not 1 <= min_size <= max_size:
            raise ConfigError(f"need 1 <= min_size <= max_size, got {min_size} and {max_size}")
        if poll <= 0:
            raise ConfigError(f"poll must be > 0 seconds, not {poll!r}")
        self.url = url
        self.share_events: ShareEvents = share_events
        self._sizes = (min_size, max_size)
        self._pool: AsyncConnectionPool | None = None
        self._locks = TurnLocks(url, name=repr(self), poll=poll)
        self._tokens: dict[str, int] = {}
        """The fencing token of each session this store holds (see turns.py)."""
        self._events: EventShare | None = None
        self._listener: Listener | None = None
        self._deliver: Callable[[SessionEvent], None] | None = None

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
        events = EventShare(pool, mode=self.share_events, name=repr(self))
        events.deliver = self._deliver
        listener = Listener(
            self.url,
            {RELEASED: self._locks.wake, EVENTS: events.receive},
            on_connect=self._locks.wake_all,
            name=repr(self),
        )
        try:
            await pool.open(wait=True, timeout=30)
            async with pool.connection() as conn, conn.transaction():
                await migrate(conn)
            await self._locks.open()
            await listener.start()
        except psycopg.Error as exc:
            await self._abandon(pool, listener)
            raise StoreError(
                f"cannot open PostgreSQL store {_without_password(self.url)!r}: {exc}"
            ) from exc
        except BaseException:
            await self._abandon(pool, listener)
            raise
        events.start()
        self._pool, self._events, self._listener = pool, events, listener

    async def _abandon(self, pool: AsyncConnectionPool, listener: Listener) -> None:
        await listener.stop()
        await self._locks.close()
        await pool.close()

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        events, self._events = self._events, None
        listener, self._listener = self._listener, None
        try:
            if events is not None:
                await events.stop()
        finally:
            try:
                if listener is not None:
                    await listener.stop()
            finally:
                await self._locks.close()  # sessions still held are released with it
                self._tokens.clear()
                await pool.close()

    # --- the shared store: turns and events ---------------------------------------------------

    async def acquire(self, session_id: str, *, wait: bool) -> Lease | None:
        """Hold `session_id` for one turn: no other worker runs a turn of it until `release`.

        Waits while another worker holds it, or returns None at once when `wait` is False.
        The lease says what the session looks like now, so a worker whose copy is stale
        reloads it. SessionNotFoundError if the session was deleted.
        """
        if wait:
            await self._locks.lock(session_id)
        elif not await self._locks.try_lock(session_id):
            return None
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    "UPDATE sessions SET turn_token = turn_token + 1 WHERE session_id = %s "
                    "RETURNING turn_token, created_at, message_count, model, title, "
                    "system_message",
                    (session_id,),
                )
                row = await cursor.fetchone()
        except BaseException as exc:
            await self._locks.unlock(session_id)
            if isinstance(exc, psycopg.Error):
                raise self._fail(exc) from exc
            raise
        if row is None:
            await self._locks.unlock(session_id)
            raise SessionNotFoundError(session_id)
        self._tokens[session_id] = row[0]
        return Lease(
            session_id=session_id,
            token=row[0],
            created_at=from_micros(row[1]),
            message_count=row[2],
            model=row[3],
            title=row[4],
            system_message=row[5],
        )

    async def release(self, lease: Lease) -> None:
        if self._tokens.get(lease.session_id) != lease.token:
            return  # not this hold (released already): never release someone else's
        del self._tokens[lease.session_id]
        if self._events is not None:  # the turn's events go out before the next turn's
            await self._events.flushed(at_most=_FLUSH_BEFORE_RELEASE)
        await self._locks.unlock(lease.session_id)

    def publish_event(self, event: SessionEvent) -> None:
        if self._events is not None:
            self._events.publish(event)

    def on_remote_event(self, deliver: Callable[[SessionEvent], None] | None) -> None:
        if deliver is not None and self._deliver is not None and deliver != self._deliver:
            raise ConfigError(
                f"{self!r} already serves a running client; give each client its own store "
                "(the same URL is fine): clients of one store would share its session locks"
            )
        self._deliver = deliver
        if self._events is not None:
            self._events.deliver = deliver

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
        sql, params = list_sql(query)
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
                    "SELECT message_count, turn_token FROM sessions WHERE session_id = %s "
                    "FOR UPDATE",
                    (session_id,),
                )
                found = await cursor.fetchone()
                if found is None:
                    raise SessionNotFoundError(session_id)
                token = self._tokens.get(session_id)
                if token is not None and found[1] != token:
                    raise StoreError(
                        f"session {session_id!r} was taken over by another worker while this "
                        "one ran a turn (this worker lost its hold, as when its connection to "
                        "PostgreSQL drops), so this write was refused and the history stays "
                        "whole; session.messages() shows what was stored before you send again"
                    )
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

    # --- comparisons ------------------------------------------------------------------------

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    async def save_comparison(self, comparison: Comparison, *, new: bool = False) -> None:
        sql, params = _COMPARISONS.save(comparison, new=new)
        try:
            async with self.pool.connection() as conn:
                await conn.execute(sql, params)
        except psycopg.errors.UniqueViolation:
            raise comparison_exists(comparison.comparison_id) from None
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    async def get_comparison(self, comparison_id: str) -> Comparison:
        rows = await self._rows(*_COMPARISONS.get(comparison_id))
        if not rows:
            raise ComparisonNotFoundError(comparison_id)
        return comparison_from_json(comparison_id, rows[0][0])

    async def list_comparisons(self, limit: int, cursor: str | None) -> ComparisonPage:
        return _COMPARISONS.page(await self._rows(*_COMPARISONS.list(limit, cursor)), limit)

    async def delete_comparison(self, comparison_id: str) -> None:
        if not await self._rows(*_COMPARISONS.delete(comparison_id)):
            raise ComparisonNotFoundError(comparison_id)


def _without_password(url: str) -> str:
    """The URL for messages and reprs: a password never shows."""
    from parley.models.faults import safe_url

    return safe_url(url)
