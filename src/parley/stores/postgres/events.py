"""Events across processes: every worker's `Client.on` sees the sessions other workers serve.

Each worker NOTIFYs its sessions' events on `EVENTS` and LISTENs there for everyone else's.
A NOTIFY payload must stay under 8,000 bytes, so an event's JSON is cut into chunks of at most
`CHUNK_BYTES` that go out in one transaction (PostgreSQL delivers a transaction's notifications
together and in order) and are joined again on arrival: nothing is shortened. Each payload starts
with a header, ``<origin> <event id> <index> <count> ``, and the origin lets a worker skip its own.

Publishing never blocks a turn: events wait in a bounded queue that one task flushes, a batch
per transaction. When PostgreSQL cannot keep up, the newest events are dropped (and counted in a
warning) rather than memory growing without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Literal, TypeAlias

from parley.events import SessionEvent, event_from_dict, event_to_dict

with contextlib.suppress(ImportError):  # without the `postgres` extra, PostgresStore says so
    import psycopg
    from psycopg_pool import AsyncConnectionPool

__all__ = ["CHUNK_BYTES", "EVENTS", "EventShare", "ShareEvents", "decode", "encode"]

log = logging.getLogger("parley")

EVENTS = "parley_events"
CHUNK_BYTES = 7_000
"""The most event JSON one notification carries; with its header it stays under 8,000 bytes."""
MAX_QUEUED = 20_000
"""Notifications waiting to be sent, at most; beyond that new events are dropped."""
_MAX_PARTIAL = 256
"""Events being reassembled at once, at most (a sender that died mid-event leaves one)."""
_BATCH = 500

ShareEvents: TypeAlias = Literal["all", "durable", "off"]
"""What a worker tells the others: every event, only the durable ones (no text deltas, no
idle), or nothing."""


def encode(origin: str, event: SessionEvent) -> list[str]:
    """The notification payloads of one event (ASCII JSON, so characters are bytes)."""
    text = json.dumps(event_to_dict(event), separators=(",", ":"))
    chunks = [text[i : i + CHUNK_BYTES] for i in range(0, len(text), CHUNK_BYTES)] or [""]
    return [f"{origin} {event.id} {i} {len(chunks)} {chunk}" for i, chunk in enumerate(chunks)]


def decode(payload: str) -> tuple[str, str, int, int, str]:
    """(origin, event id, index, count, chunk); ValueError for anything else."""
    origin, event_id, index, count, chunk = payload.split(" ", 4)
    return origin, event_id, int(index), int(count), chunk


class EventShare:
    """Sends this worker's events and hands everyone else's to `deliver`."""

    def __init__(self, pool: AsyncConnectionPool, *, mode: ShareEvents, name: str) -> None:
        self.origin = uuid.uuid4().hex
        self.mode = mode
        self.deliver: Callable[[SessionEvent], None] | None = None
        self._pool = pool
        self._name = name
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._queued = 0
        """Payloads queued since start; `_done` of them have been sent (or given up on)."""
        self._done = 0
        self._progress = asyncio.Event()
        self._partial: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self.dropped = 0
        self._warned_at = 0.0

    # --- sending -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.mode != "off":
            self._task = asyncio.create_task(self._flush_forever(), name=f"parley-{self._name}")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: stopped sharing events: %r", self._name, task.exception())

    async def stop(self, *, flush_for: float = 2.0) -> None:
        """Send what is queued (for up to `flush_for` seconds), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._ready.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), flush_for)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            pass
        if self._queue:
            log.warning(
                "%s: %d event notification(s) were not sent before the store closed",
                self._name,
                len(self._queue),
            )

    def publish(self, event: SessionEvent) -> None:
        if self._task is None or self._task.done() or (self.mode == "durable" and event.ephemeral):
            return
        payloads = encode(self.origin, event)
        if len(self._queue) + len(payloads) > MAX_QUEUED:
            self._drop(len(payloads))
            return
        self._queue.extend(payloads)
        self._queued += len(payloads)
        self._ready.set()

    def _drop(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning(
                "%s: PostgreSQL is not keeping up with shared events; %d notification(s) "
                "dropped so far (other workers' Client.on handlers miss those events)",
                self._name,
                self.dropped,
            )

    async def _flush_forever(self) -> None:
        while not self._closing or self._queue:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                count = min(len(self._queue), _BATCH)
                while count < len(self._queue) and self._queue[count].split(" ", 3)[2] != "0":
                    count += 1  # never split an event's chunks across transactions
                batch = [self._queue.popleft() for _ in range(count)]
                try:
                    await self._send(batch)
                except psycopg.Error as exc:
                    self.dropped += count
                    log.warning("%s: could not share %d event(s): %s", self._name, count, exc)
                    if self._closing:
                        return
                    await asyncio.sleep(0.5)
                finally:
                    self._done += count
                    self._progress.set()

    async def _send(self, batch: list[str]) -> None:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            await cursor.executemany("SELECT pg_notify(%s, %s)", [(EVENTS, p) for p in batch])

    async def flushed(self, *, at_most: float) -> None:
        """Wait (up to `at_most` seconds) until every event published so far has gone out."""
        if self._task is None:
            return
        target = self._queued
        deadline = time.monotonic() + at_most
        while self._done < target and not self._task.done():
            self._progress.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)

    # --- receiving -----------------------------------------------------------------------------

    def receive(self, payload: str) -> None:
        try:
            origin, event_id, index, count, chunk = decode(payload)
        except ValueError:
            log.warning("%s: ignored a malformed %s notification", self._name, EVENTS)
            return
        if origin == self.origin or self.deliver is None:
            return
        if count > 1:
            key = (origin, event_id)
            parts = self._partial.setdefault(key, [])
            if index != len(parts):  # a lost chunk: the event cannot be rebuilt
                del self._partial[key]
                return
            parts.append(chunk)
            if len(self._partial) > _MAX_PARTIAL:
                self._partial.popitem(last=False)
            if len(parts) < count:
                return
            del self._partial[key]
            chunk = "".join(parts)
        try:
            event = event_from_dict(json.loads(chunk))
        except ValueError as exc:
            log.warning("%s: ignored an event that did not parse: %s", self._name, exc)
            return
        self.deliver(event)
