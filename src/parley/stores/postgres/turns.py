"""The cross-process turn queue: one PostgreSQL advisory lock per session while a turn runs.

A worker that runs a turn of a session holds a session-level advisory lock on it, so no other
worker can run a turn of that session at the same time. All of a client's locks live on one
connection of their own (so a thousand running turns cost one connection, not a thousand),
and they go with it: when a worker dies, its connection drops, PostgreSQL releases every lock it
held, and the next turn proceeds.

A lock is not enough on its own: a worker whose lock connection dropped may not know it yet and
still be writing. So taking a session also bumps its fencing token (`sessions.turn_token`),
and every write made under the lock checks the token in the same transaction
(`PostgresStore.append_messages`): a worker that lost its lock to another cannot write.

Waiting is cheap: a worker that finds a session locked waits for a NOTIFY on `RELEASED`, sent
by whoever releases it, and polls now and then besides, because a dying worker sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any, LiteralString

from parley.errors import StoreError

with contextlib.suppress(ImportError):  # without the `postgres` extra, PostgresStore says so
    import psycopg

__all__ = ["LOCK_SPACE", "RELEASED", "TurnLocks"]

log = logging.getLogger("parley")

LOCK_SPACE = 0x70617279
"""The first key of parley's two-key advisory locks ("pary"); the second is hashtext(id).
Two ids with the same hash share a lock: their turns are serialised, never mixed."""
RELEASED = "parley_session_released"
"""The channel on which a released session's id is announced to waiting workers."""


async def dedicated_connection(url: str) -> psycopg.AsyncConnection[Any]:
    """A connection that holds server-side state (advisory locks, LISTEN) for a long time.

    TCP keepalives on both ends, so that a vanished peer is noticed in about a minute rather
    than hours, and no `idle_session_timeout` (PostgreSQL 14+), which would otherwise end it
    while a long model call keeps it idle, and its locks with it.
    """
    conn = await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    try:
        await conn.execute("SET tcp_keepalives_idle = 30")
        await conn.execute("SET tcp_keepalives_interval = 10")
        await conn.execute("SET tcp_keepalives_count = 3")
        if conn.info.server_version >= 140000:
            await conn.execute("SET idle_session_timeout = 0")
    except BaseException:
        await conn.close()
        raise
    return conn


class TurnLocks:
    """The advisory locks of one client, on one connection.

    Every statement on the connection is bounded by `timeout`: a connection that stops
    answering (a network path that drops packets) is closed, and its locks go with it, rather
    than stalling every turn of the worker behind it.
    """

    def __init__(self, url: str, *, name: str, poll: float = 0.5, timeout: float = 15.0) -> None:
        self._url = url
        self._name = name
        self.poll = poll
        self.timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting = asyncio.Lock()
        self._closed = False
        self._claims: set[str] = set()
        """Sessions this client holds or is asking for: one process never asks twice."""
        self._held: set[str] = set()
        """Sessions the server confirmed this client holds."""
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._giving_back: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._closed = False
        await self._connection()

    async def close(self) -> None:
        self._closed = True
        async with self._connecting:
            conn, self._conn = self._conn, None
        self._claims.clear()
        self._held.clear()
        if conn is not None:
            await conn.close()  # PostgreSQL releases whatever was still held

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        async with self._connecting:  # one reconnect at a time: never two lock connections
            if self._closed:
                raise StoreError(f"{self._name} is closed")
            conn = self._conn
            if conn is not None and not conn.closed and not conn.broken:
                return conn
            if conn is not None:
                if self._held:
                    log.warning(
                        "%s: the connection holding %d session lock(s) dropped; other workers "
                        "may take those sessions, and this worker's writes to them will be "
                        "refused",
                        self._name,
                        len(self._held),
                    )
                self._held.clear()  # the server released them with the connection
                await conn.close()
            try:
                conn = await dedicated_connection(self._url)
            except psycopg.Error as exc:
                raise StoreError(
                    f"{self._name}: cannot connect to hold sessions: {exc}; check that the "
                    "database is up and reachable"
                ) from exc
            self._conn = conn
            return conn

    async def _execute(self, query: LiteralString, params: tuple[Any, ...]) -> Any:
        """Run one statement on the lock connection and return its first row."""
        conn = await self._connection()
        try:
            cursor = await asyncio.wait_for(conn.execute(query, params), self.timeout)
            return await cursor.fetchone()
        except TimeoutError:
            await conn.close()  # its locks go with it; the next statement reconnects
            raise StoreError(
                f"{self._name}: PostgreSQL did not answer within {self.timeout:g}s on the "
                "connection that holds sessions, so it was closed"
            ) from None

    # --- taking and releasing -----------------------------------------------------------------

    async def try_lock(self, session_id: str) -> bool:
        """Take the session if nobody holds it; never waits."""
        if session_id in self._claims:  # advisory locks nest within a connection: check here
            return False
        self._claims.add(session_id)  # claimed before the first await, so no other caller can
        attempt = asyncio.ensure_future(self._ask(session_id))
        try:
            taken = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # The server may grant it even though we stop waiting: give it back then.
            attempt.add_done_callback(self._give_back_if_taken(session_id))
            raise
        except BaseException:
            self._claims.discard(session_id)
            raise
        if not taken:
            self._claims.discard(session_id)
        return taken

    def _give_back_if_taken(self, session_id: str) -> Callable[[asyncio.Future[bool]], None]:
        def done(attempt: asyncio.Future[bool]) -> None:
            if attempt.cancelled() or attempt.exception() is not None or not attempt.result():
                self._claims.discard(session_id)
                return
            task = asyncio.ensure_future(self.unlock(session_id))
            self._giving_back.add(task)
            task.add_done_callback(self._giving_back.discard)

        return done

    async def _ask(self, session_id: str) -> bool:
        for attempt in (1, 2):  # a connection found dropped is reopened once
            try:
                row = await self._execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_SPACE, session_id)
                )
            except psycopg.Error as exc:
                if attempt == 1 and self._conn is not None and self._conn.broken:
                    continue
                raise StoreError(
                    f"{self._name}: cannot take session {session_id!r}: {exc}"
                ) from exc
            taken = bool(row and row[0])
            if taken:
                self._held.add(session_id)
            return taken
        raise AssertionError("unreachable")

    async def lock(self, session_id: str) -> None:
        """Take the session, waiting for as long as other workers hold it."""
        woken = asyncio.Event()
        self._waiters.setdefault(session_id, set()).add(woken)
        try:
            while True:
                woken.clear()  # before trying: a release announced meanwhile is not missed
                if await self.try_lock(session_id):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self.poll * random.uniform(0.5, 1.5))
        finally:
            waiters = self._waiters.get(session_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[session_id]

    async def unlock(self, session_id: str) -> None:
        """Release the session and announce it; finishes even when the caller is cancelled."""
        await asyncio.shield(self._unlock(session_id))

    async def _unlock(self, session_id: str) -> None:
        self._claims.discard(session_id)
        self.wake(session_id)  # waiters in this process need no round trip
        if session_id not in self._held:
            return  # not held (any more): the lock went with a dropped connection
        self._held.discard(session_id)
        try:
            await self._execute(
                "SELECT pg_advisory_unlock(%s, hashtext(%s)), pg_notify(%s, %s)",
                (LOCK_SPACE, session_id, RELEASED, session_id),
            )
        except (psycopg.Error, StoreError) as exc:  # the lock goes with the broken connection
            log.warning("%s: could not release session %r: %s", self._name, session_id, exc)

    # --- waking waiters -------------------------------------------------------------------------

    def wake(self, session_id: str) -> None:
        for woken in self._waiters.get(session_id, ()):
            woken.set()

    def wake_all(self) -> None:
        """After the listener reconnects: releases may have been missed, so everyone retries."""
        for waiters in self._waiters.values():
            for woken in waiters:
                woken.set()
