"""One LISTEN connection per client, dispatching PostgreSQL notifications by channel.

psycopg's `notifies()` holds its connection while it waits, so listening has a connection of
its own. When that connection drops, the listener reconnects with backoff and tells its
owner (`on_connect`), because notifications sent meanwhile are lost for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from parley.errors import StoreError
from parley.stores.postgres.turns import dedicated_connection

with contextlib.suppress(ImportError):  # without the `postgres` extra, PostgresStore says so
    import psycopg
    from psycopg import sql

__all__ = ["Listener"]

log = logging.getLogger("parley")

_MIN_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_STABLE = 10.0
"""Seconds a connection must have lasted for the backoff to start over when it drops."""


class Listener:
    def __init__(
        self,
        url: str,
        channels: Mapping[str, Callable[[str], None]],
        *,
        on_connect: Callable[[], None],
        name: str,
    ) -> None:
        self._url = url
        self._channels = dict(channels)
        self._on_connect = on_connect
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._backoff = _MIN_BACKOFF

    async def start(self) -> None:
        """Listen, returning once the first connection listens (or raising why it cannot)."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._task = asyncio.create_task(self._run(), name=f"parley-listen-{self._name}")
        self._task.add_done_callback(self._ended)
        try:
            await self._ready
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            connected = time.monotonic()
            try:
                async with await dedicated_connection(self._url) as conn:
                    await self._listen(conn)
            except psycopg.Error as exc:
                if self._fail_start(exc):
                    return
                if time.monotonic() - connected > _STABLE:  # it was up a while: start over
                    self._backoff = _MIN_BACKOFF
                log.warning(
                    "%s: cannot LISTEN (%s); trying again in %.1fs", self._name, exc, self._backoff
                )
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for channel in self._channels:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self._on_connect()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        async for note in conn.notifies():
            handler = self._channels.get(note.channel)
            if handler is not None:
                try:
                    handler(note.payload)
                except Exception:
                    log.exception("%s: a %s notification failed", self._name, note.channel)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The task never ends by itself but through a bug: say so, and never leave `start`
        waiting."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s: stopped listening: %r", self._name, error)
            self._fail_start(error)

    def _fail_start(self, exc: BaseException) -> bool:
        """Report a failure before the first LISTEN to `start`; True when that ends the task."""
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                StoreError(
                    f"{self._name}: cannot LISTEN: {exc}; the role needs to connect to the "
                    "database, and a connection pooler in front must be in session mode"
                )
            )
            return True
        return False
