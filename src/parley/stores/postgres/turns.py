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
from typing import Any

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


class TurnLocks:
    """The advisory locks of one client, on one connection."""

    def __init__(self, url: str, *, name: str, poll: float = 0.5) -> None:
        self._url = url
        self._name = name
        self.poll = poll
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held: set[str] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def open(self) -> None:
        await self._connection()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            await conn.close()  # PostgreSQL releases whatever was still held

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None and self._held:
                log.warning(
                    "%s: the connection holding %d session lock(s) dropped; other workers may "
                    "take those sessions, and this worker's writes to them will be refused",
                    self._name,
                    len(self._held),
                )
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            except psycopg.Error as exc:
                raise StoreError(f"{self._name}: cannot connect for session locks: {exc}") from exc
            self._conn = conn
        return conn

    # --- taking and releasing -----------------------------------------------------------------

    async def try_lock(self, session_id: str) -> bool:
        """Take the session if nobody holds it; never waits."""
        if session_id in self._held:  # advisory locks nest within a connection: check here
            return False
        attempt = asyncio.ensure_future(self._try(session_id))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # The lock may be taken on the server even though we stop waiting: give it back.
            attempt.add_done_callback(self._give_back_if_taken(session_id))
            raise

    def _give_back_if_taken(self, session_id: str) -> Any:
        def done(attempt: asyncio.Future[bool]) -> None:
            if not attempt.cancelled() and attempt.exception() is None and attempt.result():
                task = asyncio.ensure_future(self.unlock(session_id))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

        return done

    async def _try(self, session_id: str) -> bool:
        self._held.add(session_id)  # claimed here first, so one process never nests a lock
        taken = False
        try:
            taken = await self._ask(session_id)
        finally:
            if not taken:
                self._held.discard(session_id)
        return taken

    async def _ask(self, session_id: str) -> bool:
        for attempt in (1, 2):  # a dropped connection is reopened once
            conn = await self._connection()
            try:
                cursor = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_SPACE, session_id)
                )
                row = await cursor.fetchone()
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise StoreError(f"{self._name}: cannot lock session: {exc}") from exc
                continue
            except psycopg.Error as exc:
                raise StoreError(f"{self._name}: cannot lock session: {exc}") from exc
            return bool(row and row[0])
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
        if session_id not in self._held:
            return
        self._held.discard(session_id)
        self.wake(session_id)  # waiters in this process need no round trip
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return  # the lock went with the connection
        try:
            await conn.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(%s)), pg_notify(%s, %s)",
                (LOCK_SPACE, session_id, RELEASED, session_id),
            )
        except psycopg.Error as exc:  # the lock goes with the broken connection
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
