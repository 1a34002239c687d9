"""A live session: its in-memory state, its turn queue and the loop that answers a turn.

Sends to one session become `Turn`s in a FIFO queue. One worker task per busy session takes
them one at a time, so turns never interleave; it exits when the queue is empty, so an idle
session costs no task. Different sessions have their own workers and run concurrently.

A turn stores its user message before calling the model and its assistant message after, each
as one append. An abort or provider failure still stores the assistant message, with the text
streamed so far and `interrupted=True`, so the history always alternates and stays valid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from parley.config import DEFAULT_MAX_PROMPT_CHARS, OnBusy, ProviderConfig, RetryPolicy
from parley.errors import (
    InvalidPromptError,
    ParleyError,
    ProviderResponseError,
    SessionBusyError,
    SessionClosedError,
    TurnAbortedError,
)
from parley.events import SessionEvent
from parley.info import SessionInfo
from parley.messages import Message, new_id
from parley.models.base import ModelAdapter, RequestCache
from parley.models.registry import ModelRegistry, ResolvedModel
from parley.runtime.agent import fail_unstarted, run_turn
from parley.runtime.bus import EventBus, Handler, Unsubscribe
from parley.runtime.history import ShownHistory
from parley.runtime.shared import run_shared_turn
from parley.runtime.turn import Turn
from parley.stores.base import Lease, SharedStore, Store
from parley.tools import PermissionHandler, Tool

__all__ = ["LiveSession"]

log = logging.getLogger("parley")

_UNSEEN = "(events nobody saw)"
"""`_last_event_id` after events that were not built: the next one built gets a fresh id as
its parent, so the chain a late subscriber sees still links each event to one before it."""


class ClientParts:
    """What every live session of one client shares: one object, not six slots each."""

    __slots__ = ("bus", "max_prompt_chars", "registry", "retry", "shared", "store")

    def __init__(
        self,
        *,
        store: Store,
        registry: ModelRegistry,
        bus: EventBus,
        max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.shared = store if isinstance(store, SharedStore) else None
        """The store, when other processes use it too: turns then hold the session there."""
        self.registry = registry
        self.bus = bus
        """The client's: `Client.on` handlers see every session's events."""
        self.max_prompt_chars = max_prompt_chars
        self.retry = retry or RetryPolicy()


class LiveSession:
    """The runtime's state for one session that is open in this process."""

    # Slotted: a client may hold many thousands of these, evicted ones included (weakly
    # referenced by the session table, hence __weakref__).
    __slots__ = (
        "__weakref__",
        "_bus",
        "_client",
        "_closed_reason",
        "_deleted",
        "_last_event_id",
        "_pending",
        "_running",
        "_worker",
        "created_at",
        "history",
        "last_activity",
        "lease",
        "max_history_messages",
        "max_history_tokens",
        "max_tool_rounds",
        "model",
        "on_busy",
        "on_permission_request",
        "own_adapter",
        "own_config",
        "request_cache",
        "session_id",
        "shown",
        "stale",
        "system_message",
        "title",
        "tools",
        "tools_running",
    )

    def __init__(
        self,
        info: SessionInfo,
        history: list[Message],
        *,
        client: ClientParts,
        on_busy: OnBusy = "enqueue",
        own_adapter: ModelAdapter | None = None,
        tools: tuple[Tool, ...] = (),
        on_permission_request: PermissionHandler | None = None,
        max_tool_rounds: int = 10,
        max_history_messages: int | None = None,
        max_history_tokens: int | None = None,
    ) -> None:
        self._client = client
        self.stale = False
        """The in-memory history is not to be trusted: evicted (runtime/table.py), or loaded
        with a turn open in another worker. The next turn reloads it from the store."""
        self.lease: Lease | None = None
        """The hold on the session in the shared store while a turn runs (runtime/shared.py)."""
        self.tools = tools
        self.tools_running = 0
        self.on_permission_request = on_permission_request
        self.max_tool_rounds = max_tool_rounds
        self.max_history_messages = max_history_messages
        self.max_history_tokens = max_history_tokens
        self.session_id = info.session_id
        self.created_at = info.created_at
        self.model = info.model
        self.title = info.title
        self.system_message = info.system_message
        self.on_busy = on_busy
        self.own_adapter = own_adapter
        self.own_config: ProviderConfig | None = None
        self.history = history
        self.shown: ShownHistory | None = None
        """The history as a model is sent it (runtime/history.py), kept up to date by turns."""
        self.request_cache: RequestCache | None = None
        """What the adapter kept of the last model request (the encoded history); made by
        the first model call, dropped with the history on eviction."""
        self._bus: EventBus | None = None  # made by the first subscriber: most have none
        self.last_activity = time.monotonic()
        self._pending: deque[Turn] | None = None  # made on the first send: most sessions idle
        self._running: Turn | None = None
        self._worker: asyncio.Task[None] | None = None
        self._last_event_id: str | None = None
        self._closed_reason: str | None = None
        self._deleted = False

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._pending)

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    @property
    def deleted(self) -> bool:
        return self._deleted

    def resolve(self, model: str) -> ResolvedModel:
        """The adapter for `model`: the session's own provider if it has one, else routing."""
        if self.own_adapter is not None:
            return ResolvedModel(adapter=self.own_adapter, provider="session", name=model)
        return self._client.registry.resolve(model)

    @property
    def store(self) -> Store:
        return self._client.store

    @property
    def shared(self) -> SharedStore | None:
        return self._client.shared

    @property
    def retry(self) -> RetryPolicy:
        return self._client.retry

    @property
    def max_prompt_chars(self) -> int:
        return self._client.max_prompt_chars

    # --- events -----------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> Unsubscribe:
        """Call `handler` with each event of this session (see `Session.on`)."""
        if self._bus is None:
            self._bus = EventBus()
        return self._bus.subscribe(handler)

    def publish(self, event: SessionEvent) -> None:
        """Pass an event to this session's subscribers only (one another process emitted)."""
        if self._bus is not None:
            self._bus.publish(event)

    def listened(self, turn: Turn | None = None) -> bool:
        """Whether an event emitted now would reach anyone: a handler of the session or the
        client, a caller reading `turn`'s events, or other processes (a shared store)."""
        return (
            (turn is not None and turn.events is not None)
            or bool(self._bus)
            or bool(self._client.bus)
            or self._client.shared is not None
        )

    def emit(
        self, event_cls: Callable[..., SessionEvent], data: Any, turn: Turn | None = None
    ) -> None:
        """Pass an event to whoever listens (see `listened`); an event nobody would see is
        not built at all, which is most of them for a `send_and_wait` without handlers."""
        if self.heard(turn):
            self.deliver(event_cls, data, turn)

    def heard(self, turn: Turn | None = None) -> bool:
        """Whether to build the event about to be emitted: True when someone listens (then
        `deliver` it); False counts it as emitted unseen, without its data ever being built."""
        if self.listened(turn):
            return True
        self.last_activity = time.monotonic()
        self._last_event_id = _UNSEEN
        return False

    def deliver(
        self, event_cls: Callable[..., SessionEvent], data: Any, turn: Turn | None = None
    ) -> None:
        """Build and pass on an event that `heard` said someone listens to."""
        self.last_activity = time.monotonic()
        parent = self._last_event_id
        if parent is _UNSEEN:  # stands for the events nobody saw: no one holds their ids
            parent = new_id()
        event = event_cls(session_id=self.session_id, parent_id=parent, data=data)
        self._last_event_id = event.id
        if self._bus is not None:
            self._bus.publish(event)
        self._client.bus.publish(event)
        if self._client.shared is not None:
            self._client.shared.publish_event(event)
        if turn is not None:
            turn.deliver(event)

    # --- the queue --------------------------------------------------------------------------

    def enqueue(
        self, prompt: str, *, listen: bool, tools: tuple[Tool, ...] = (), admit: bool = False
    ) -> Turn:
        """Queue a turn. With `admit`, a send that may be rejected by another process (a shared
        store and on_busy="reject") gets `turn.admitted` to wait on."""
        if self._closed_reason is not None:
            then = (
                "create_session() starts a new one"
                if self._deleted
                else f"resume_session({self.session_id!r}) to continue it"
            )
            raise SessionClosedError(f"session {self.session_id!r} {self._closed_reason}; {then}")
        if not prompt.strip():
            raise InvalidPromptError("the message is empty; send some text")
        if len(prompt) > self.max_prompt_chars:
            raise InvalidPromptError(
                f"the message is {len(prompt):,} characters, over this client's limit of "
                f"{self.max_prompt_chars:,}; shorten it, or raise "
                "ClientConfig(max_prompt_chars=...)"
            )
        if self.on_busy == "reject" and self.busy:
            raise SessionBusyError(self.session_id)
        self.resolve(self.model)  # an unusable model fails here, storing nothing
        turn = Turn(prompt=prompt, events=asyncio.Queue() if listen else None, tools=tools)
        if admit and self.shared is not None and self.on_busy == "reject":
            turn.admitted = asyncio.Event()
        if self._pending is None:
            self._pending = deque()
        self._pending.append(turn)
        self.last_activity = time.monotonic()
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"parley-turns-{self.session_id}")
        return turn

    async def _work(self) -> None:
        try:
            while self._pending:
                turn = self._running = self._pending.popleft()
                try:
                    if self.shared is not None:
                        await run_shared_turn(self, self.shared, turn)
                    elif not self.stale or await self._reload(turn):
                        await run_turn(self, turn)
                except Exception as exc:  # a bug, not a provider failure: never hang waiters
                    log.exception("turn %s of session %s failed", turn.turn_id, self.session_id)
                    if not turn.done.is_set():
                        turn.drop(ProviderResponseError(f"the turn failed unexpectedly: {exc!r}"))
                finally:
                    self._running = None
        finally:
            self._worker = None
            self._pending = None  # drained: an idle session keeps no queue

    def cancel_pending(self, turn: Turn, error: ParleyError) -> bool:
        """Take a turn that has not started out of the queue; False if it already started."""
        try:
            if self._pending is None:
                return False
            self._pending.remove(turn)
        except ValueError:
            return False
        turn.drop(error)
        return True

    async def abort(
        self, reason: str = "abort() was called", *, message_id: str | None = None
    ) -> bool:
        """Abort the running turn (queued turns still run); False when none was running.

        With `message_id`, that turn only: aborted if it is running, taken out of the queue
        (failing with TurnAbortedError) if it has not started; False if it is over or unknown.
        """
        if message_id is not None:
            for queued in tuple(self._pending or ()):
                if queued.message_id == message_id:
                    error = TurnAbortedError(
                        f"the turn {message_id!r} of session {self.session_id!r} was aborted "
                        f"before it ran ({reason})"
                    )
                    return self.cancel_pending(queued, error)
        turn = self._running
        if turn is None or message_id not in (None, turn.message_id) or not turn.abort(reason):
            return False
        await turn.done.wait()
        return True

    async def close(self, reason: str = "was closed", *, deleted: bool = False) -> None:
        """Drop queued turns, abort the running one (keeping its partial reply), and stop.

        `deleted` says the session is about to be removed from the store, so errors do not
        point at a history that will not be there.
        """
        if self._closed_reason is None:
            self._closed_reason = reason
        self._deleted = self._deleted or deleted
        while self._pending:
            self._pending.popleft().drop(
                SessionClosedError(f"session {self.session_id!r} {reason} before this turn ran")
            )
        if self._running is not None:
            self._running.abort(f"the session {reason}")  # False while storing: let it finish
        if self._worker is not None:
            await asyncio.shield(self._worker)
        if self._bus is not None:
            await self._bus.drain()
        if self.own_adapter is not None:
            await self.own_adapter.aclose()

    # --- helpers for the turn loop (runtime/agent.py) -------------------------------------

    def evict(self) -> None:
        """Drop the history from memory (the session is idle); the next turn reloads it."""
        self.history = []
        self.request_cache = None
        self.shown = None
        self.stale = True

    async def _reload(self, turn: Turn) -> bool:
        """Load an evicted session's history for `turn`; False when that failed (and the turn
        was ended with the error)."""
        try:
            self.history = await self.store.read_messages(self.session_id)
        except ParleyError as exc:
            await fail_unstarted(self, turn, exc)
            return False
        self.stale = False
        return True

    async def release_lease(self) -> None:
        """Let other workers run turns of this session again (no-op without a lease)."""
        lease, self.lease = self.lease, None
        if lease is not None and self.shared is not None:
            await asyncio.shield(self.shared.release(lease))

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    async def set_title(self, title: str) -> None:
        """Best effort: a title is a convenience, never a reason to fail a turn."""
        try:
            await self.store.update_session(self.session_id, title=title)
        except ParleyError:
            log.warning("could not store the title of session %s", self.session_id, exc_info=True)
        else:
            self.title = title
