"""Event delivery to subscribers: synchronous handlers run in order, async ones as tasks."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from parley.events import SessionEvent

__all__ = ["EventBus", "Handler", "Unsubscribe"]

log = logging.getLogger("parley")

Handler: TypeAlias = Callable[[SessionEvent], "Awaitable[None] | None"]
Unsubscribe: TypeAlias = Callable[[], None]


class EventBus:
    """A list of handlers. A handler that raises is logged and never breaks the turn."""

    # Every live session has one, evicted ones too: slotted, and the set of running async
    # handlers made only when there is one to hold.
    __slots__ = ("_handlers", "_tasks")

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._tasks: set[asyncio.Task[None]] | None = None

    def subscribe(self, handler: Handler) -> Unsubscribe:
        if not callable(handler):
            raise TypeError(f"an event handler must be callable, not {handler!r}")
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def publish(self, event: SessionEvent) -> None:
        for handler in tuple(self._handlers):
            try:
                result = handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, event.type)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guard(handler, result, event))
                if self._tasks is None:
                    self._tasks = set()
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(handler: Handler, result: Awaitable[None], event: SessionEvent) -> None:
        try:
            await result
        except Exception:
            log.exception("event handler %r failed on %s", handler, event.type)

    async def drain(self) -> None:
        """Wait for the async handlers still running (but not the one calling, if it is one)."""
        me = asyncio.current_task()
        while others := [task for task in self._tasks or () if task is not me]:
            await asyncio.gather(*others, return_exceptions=True)
