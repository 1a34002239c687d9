"""The table of a client's open sessions, and idle eviction.

An open session is in memory (`LiveSession`, with its history). With `max_live_sessions`, the
least recently used idle sessions beyond the limit are evicted; with `idle_ttl`, so is every
session idle for longer. Evicting drops the history and marks the session stale: the object
stays while someone holds a `Session` handle to it (a weak reference finds it again, so an id
never gets two live objects), and its next turn or read loads the history from the store.
A session with a queued or running turn, or running tools, is never evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import OrderedDict

from parley.errors import ConfigError
from parley.runtime.live import LiveSession

__all__ = ["SessionTable", "check_limits"]


def check_limits(max_live_sessions: int | None, idle_ttl: float | None) -> None:
    if max_live_sessions is not None and (
        isinstance(max_live_sessions, bool)
        or not isinstance(max_live_sessions, int)
        or max_live_sessions < 1
    ):
        raise ConfigError(
            "max_live_sessions must be an int >= 1, or None for no limit; "
            f"got {max_live_sessions!r}"
        )
    if idle_ttl is not None and (
        isinstance(idle_ttl, bool) or not isinstance(idle_ttl, int | float) or not idle_ttl > 0
    ):
        raise ConfigError(
            f"idle_ttl must be a number of seconds > 0, or None to keep idle sessions; "
            f"got {idle_ttl!r}"
        )


class SessionTable:
    def __init__(self, *, max_live_sessions: int | None, idle_ttl: float | None) -> None:
        check_limits(max_live_sessions, idle_ttl)
        self.max_live_sessions = max_live_sessions
        self.idle_ttl = idle_ttl
        self._live: OrderedDict[str, LiveSession] = OrderedDict()
        """In memory, least recently used first."""
        self._evicted: weakref.WeakValueDictionary[str, LiveSession] = weakref.WeakValueDictionary()
        self._sweeper: asyncio.Task[None] | None = None
        self.evictions = 0

    def __len__(self) -> int:
        """Sessions in memory (evicted ones not counted)."""
        return len(self._live)

    def get(self, session_id: str) -> LiveSession | None:
        """The session's object, in memory or evicted (call `use` before relying on it)."""
        live = self._live.get(session_id)
        return live if live is not None else self._evicted.get(session_id)

    def add(self, live: LiveSession) -> None:
        self._live[live.session_id] = live
        self._trim(keep=live)

    def use(self, live: LiveSession) -> None:
        """`live` is being used: most recently used now, and back in memory if it was evicted
        (its history loads from the store when next needed)."""
        if live.closed:
            return
        if self._live.get(live.session_id) is live:
            self._live.move_to_end(live.session_id)
            return
        if self._evicted.get(live.session_id) is live:
            del self._evicted[live.session_id]
        self._live[live.session_id] = live
        self._trim(keep=live)

    def remove(self, live: LiveSession) -> None:
        if self._live.get(live.session_id) is live:
            del self._live[live.session_id]
        if self._evicted.get(live.session_id) is live:
            del self._evicted[live.session_id]

    def take_all(self) -> list[LiveSession]:
        """Every session object, in memory or evicted, leaving the table empty."""
        everything = [*self._live.values(), *self._evicted.values()]
        self._live.clear()
        self._evicted.clear()
        return everything

    # --- eviction -------------------------------------------------------------------------------

    @staticmethod
    def _evictable(live: LiveSession) -> bool:
        return not live.busy and not live.tools_running and not live.closed

    def _evict(self, live: LiveSession) -> None:
        del self._live[live.session_id]
        live.evict()
        self._evicted[live.session_id] = live
        self.evictions += 1

    def _trim(self, keep: LiveSession) -> None:
        limit = self.max_live_sessions
        if limit is None or len(self._live) <= limit:
            return
        for live in list(self._live.values()):  # least recently used first
            if len(self._live) <= limit:
                return
            if live is not keep and self._evictable(live):
                self._evict(live)
        # Over the limit with every other session busy: the limit is met as they go idle.

    def sweep(self) -> None:
        """Evict the sessions idle for longer than `idle_ttl`, and trim to the limit."""
        if self.idle_ttl is not None:
            before = time.monotonic() - self.idle_ttl
            for live in list(self._live.values()):
                if live.last_activity < before and self._evictable(live):
                    self._evict(live)
        if self.max_live_sessions is not None and len(self._live) > self.max_live_sessions:
            newest = next(reversed(self._live.values()))
            self._trim(keep=newest)

    def start(self) -> None:
        if self._sweeper is None and (self.idle_ttl is not None or self.max_live_sessions):
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="parley-eviction")

    async def stop(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep_forever(self) -> None:
        # Often enough that a session outlives its TTL by at most a quarter of it (or 30 s), and
        # that busy sessions over the limit are trimmed soon after they go idle.
        period = min(self.idle_ttl / 4, 30.0) if self.idle_ttl is not None else 1.0
        while True:
            await asyncio.sleep(max(period, 0.01))
            self.sweep()
