"""A turn: one user message and the work of answering it, queued per session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from parley.errors import ParleyError
from parley.events import SessionEvent
from parley.messages import Message, new_id
from parley.tools import Tool

__all__ = ["Turn"]


@dataclass(eq=False, slots=True)
class Turn:
    prompt: str
    message_id: str = field(default_factory=new_id)
    events: asyncio.Queue[SessionEvent | None] | None = None
    """Where this turn's events go for a waiting caller; None (the sentinel) ends it early."""
    result: Message | None = None
    error: ParleyError | None = None
    abort_reason: str | None = None
    tools: tuple[Tool, ...] = ()
    """Tools given with this send only, on top of the session's."""
    offered: dict[str, Tool] = field(default_factory=dict)
    """The tools this turn offers, by name, fixed when it starts."""
    stream_task: asyncio.Future[Any] | None = None
    """What an abort cancels while it runs: the worker task during a model call (which takes
    that cancellation back, runtime/agent.py), or the tool calls under way."""
    opening: asyncio.Future[None] | None = None
    """The write of the turn's user message (and a first title), under way while the model
    call starts; None once it has succeeded and the user's message has been emitted."""
    unstored: tuple[Message, ...] = ()
    """The messages that write stores: sent to the model with the history, added to it once
    they are stored."""
    committing: bool = False
    """Set once the model has finished: from then on the reply is being stored as it is."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    admitted: asyncio.Event | None = None
    """For a send that must know at once whether it was rejected: set when the turn holds its
    session, or when it ended without running."""

    _turn_id: str | None = None

    @property
    def turn_id(self) -> str:
        """The id the turn's start and end events carry: made when first asked for, since a
        turn nobody listens to never needs one."""
        if self._turn_id is None:
            self._turn_id = new_id()
        return self._turn_id

    @property
    def aborted(self) -> bool:
        return self.abort_reason is not None

    def abort(self, reason: str) -> bool:
        """Ask the turn to stop; False when it is too late (its reply is being stored)."""
        if self.committing or self.done.is_set():
            return False
        if self.abort_reason is None:
            self.abort_reason = reason
        if self.stream_task is not None:
            self.stream_task.cancel()
        return True

    def deliver(self, event: SessionEvent) -> None:
        if self.events is not None:
            self.events.put_nowait(event)

    def drop(self, error: ParleyError) -> None:
        """End a turn that never ran (the session closed while it was queued)."""
        self.error = error
        if self.events is not None:
            self.events.put_nowait(None)
        if self.admitted is not None:
            self.admitted.set()
        self.done.set()
