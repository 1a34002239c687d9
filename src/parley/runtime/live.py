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
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
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
from parley.events import (
    AbortData,
    AbortEvent,
    AssistantMessageData,
    AssistantMessageDeltaEvent,
    AssistantMessageEvent,
    AssistantTurnEndEvent,
    AssistantTurnStartEvent,
    AssistantUsageEvent,
    IdleData,
    MessageDeltaData,
    SessionErrorData,
    SessionErrorEvent,
    SessionEvent,
    SessionIdleEvent,
    TurnData,
    UsageData,
    UserMessageData,
    UserMessageEvent,
)
from parley.info import SessionInfo
from parley.messages import Message, TextPart, Usage, new_id, utcnow
from parley.models.base import (
    ModelAdapter,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
)
from parley.models.registry import ModelRegistry, ResolvedModel
from parley.runtime.bus import EventBus
from parley.runtime.history import UNSTORED_NOTE, derive_title, model_view, repair
from parley.runtime.retry import stream_with_retry
from parley.runtime.turn import Turn
from parley.stores.base import Store

__all__ = ["LiveSession"]

log = logging.getLogger("parley")


class LiveSession:
    """The runtime's state for one session that is open in this process."""

    def __init__(
        self,
        info: SessionInfo,
        history: list[Message],
        *,
        store: Store,
        registry: ModelRegistry,
        client_bus: EventBus,
        on_busy: OnBusy = "enqueue",
        max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
        retry: RetryPolicy | None = None,
        own_adapter: ModelAdapter | None = None,
    ) -> None:
        self.session_id = info.session_id
        self.model = info.model
        self.title = info.title
        self.system_message = info.system_message
        self.on_busy = on_busy
        self.max_prompt_chars = max_prompt_chars
        self.retry = retry or RetryPolicy()
        self.own_adapter = own_adapter
        self.own_config: ProviderConfig | None = None
        self.history = history
        self.bus = EventBus()
        self.last_activity = time.monotonic()
        self._store = store
        self._registry = registry
        self._client_bus = client_bus
        self._pending: deque[Turn] = deque()
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

    def resolve(self, model: str) -> ResolvedModel:
        """The adapter for `model`: the session's own provider if it has one, else routing."""
        if self.own_adapter is not None:
            return ResolvedModel(adapter=self.own_adapter, provider="session", name=model)
        return self._registry.resolve(model)

    # --- events -----------------------------------------------------------------------------

    def emit(
        self, event_cls: Callable[..., SessionEvent], data: Any, turn: Turn | None = None
    ) -> None:
        event = event_cls(session_id=self.session_id, parent_id=self._last_event_id, data=data)
        self._last_event_id = event.id
        self.last_activity = time.monotonic()
        self.bus.publish(event)
        self._client_bus.publish(event)
        if turn is not None:
            turn.deliver(event)

    # --- the queue --------------------------------------------------------------------------

    def enqueue(self, prompt: str, *, listen: bool) -> Turn:
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
        turn = Turn(prompt=prompt, events=asyncio.Queue() if listen else None)
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
                    await self._execute(turn)
                except Exception as exc:  # a bug, not a provider failure: never hang waiters
                    log.exception("turn %s of session %s failed", turn.turn_id, self.session_id)
                    if not turn.done.is_set():
                        turn.drop(ProviderResponseError(f"the turn failed unexpectedly: {exc!r}"))
                finally:
                    self._running = None
        finally:
            self._worker = None

    def cancel_pending(self, turn: Turn, error: ParleyError) -> bool:
        """Take a turn that has not started out of the queue; False if it already started."""
        try:
            self._pending.remove(turn)
        except ValueError:
            return False
        turn.drop(error)
        return True

    async def abort(self, reason: str = "abort() was called") -> bool:
        """Abort the running turn (queued turns still run); False when none was running."""
        turn = self._running
        if turn is None or not turn.abort(reason):
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
        await self.bus.drain()
        if self.own_adapter is not None:
            await self.own_adapter.aclose()

    # --- one turn ---------------------------------------------------------------------------

    async def _execute(self, turn: Turn) -> None:
        user = Message.user(turn.prompt, id=turn.message_id)
        # A previous turn whose reply could not be stored left its user message unanswered:
        # close it in the same write, so the history never holds two user messages in a row.
        rows = [*repair(self.history, self.model, UNSTORED_NOTE), user]
        try:
            await self._store.append_messages(self.session_id, rows)
        except ParleyError as exc:  # nothing of this turn was stored: report and move on
            turn.error = exc
            self.emit(SessionErrorEvent, _error_data(exc), turn)
            self.emit(SessionIdleEvent, _IDLE, turn)
            turn.done.set()
            return
        self.history.extend(rows)
        if self.title is None:  # the first turn names the session, unless it was named
            await self._set_title(derive_title(turn.prompt))
        self.emit(UserMessageEvent, UserMessageData(message_id=user.id, content=turn.prompt), turn)
        self.emit(AssistantTurnStartEvent, TurnData(turn_id=turn.turn_id), turn)

        model = self.model
        reply_id = new_id()
        chunks: list[str] = []
        stats = _TurnStats()
        error: ParleyError | None = None
        if not turn.aborted:
            turn.stream_task = asyncio.create_task(
                self._stream(turn, model, reply_id, chunks, stats)
            )
            try:
                await turn.stream_task
            except asyncio.CancelledError:
                if not turn.aborted:
                    raise
            except ParleyError as exc:
                error = exc
            except Exception as exc:  # an adapter broke its contract; keep the session usable
                error = ProviderResponseError(f"the model adapter failed: {exc!r}")
        turn.committing = True  # an abort from here on would misreport a finished reply
        interrupted = turn.aborted or error is not None
        text = "".join(chunks)
        usage = stats.usage
        reply = Message(
            id=reply_id,
            role="assistant",
            parts=(TextPart(text=text),) if text else (),
            created_at=utcnow(),
            model=model,
            usage=usage,
            interrupted=interrupted,
            error=str(error) if error is not None else turn.abort_reason,
        )
        try:
            await self._store.append_messages(self.session_id, [reply])
        except ParleyError as exc:
            error = error or exc
        else:
            self.history.append(reply)
        data = AssistantMessageData(
            message_id=reply_id,
            content=text,
            model=model,
            interrupted=interrupted,
            finish_reason=None if interrupted else stats.finish_reason,
        )
        self.emit(AssistantMessageEvent, data, turn)
        if usage is not None:
            self.emit(AssistantUsageEvent, stats.usage_data(model, usage), turn)
        if turn.abort_reason is not None:
            self.emit(AbortEvent, AbortData(reason=turn.abort_reason), turn)
            kept = (
                "its history is deleted with it"
                if self._deleted
                else "the text streamed so far is kept in the history, marked interrupted"
            )
            turn.error = TurnAbortedError(
                f"the turn of session {self.session_id!r} was aborted ({turn.abort_reason}); {kept}"
            )
        if error is not None:
            turn.error = error
            self.emit(SessionErrorEvent, _error_data(error), turn)
        self.emit(AssistantTurnEndEvent, TurnData(turn_id=turn.turn_id), turn)
        turn.result = reply
        self.emit(SessionIdleEvent, _IDLE, turn)
        turn.done.set()

    def _touch(self) -> None:
        self.last_activity = time.monotonic()

    async def _set_title(self, title: str) -> None:
        """Best effort: a title is a convenience, never a reason to fail a turn."""
        try:
            await self._store.update_session(self.session_id, title=title)
        except ParleyError:
            log.warning("could not store the title of session %s", self.session_id, exc_info=True)
        else:
            self.title = title

    async def _stream(
        self, turn: Turn, model: str, reply_id: str, chunks: list[str], stats: _TurnStats
    ) -> None:
        resolved = self.resolve(model)
        request = ModelRequest(
            model=resolved.name,
            messages=model_view(self.history),
            system=self.system_message,
            session_id=self.session_id,
        )
        items = stream_with_retry(resolved.adapter, request, self.retry, self._touch)
        async with contextlib.aclosing(items):
            await self._consume(items, turn, model, reply_id, chunks, stats)

    async def _consume(
        self,
        items: AsyncIterator[StreamEvent],
        turn: Turn,
        model: str,
        reply_id: str,
        chunks: list[str],
        stats: _TurnStats,
    ) -> None:
        async for item in items:
            if isinstance(item, StreamTextDelta):
                if not item.text:
                    continue
                if stats.first_token is None:
                    stats.first_token = time.monotonic()
                chunks.append(item.text)
                delta = MessageDeltaData(message_id=reply_id, delta_content=item.text)
                self.emit(AssistantMessageDeltaEvent, delta, turn)
            elif isinstance(item, StreamUsage):
                stats.add(item)
            elif isinstance(item, StreamToolCall):
                raise ProviderResponseError(
                    f"model {model!r} asked for tool {item.name!r}, but this session has no tools"
                )
            elif isinstance(item, StreamFinish):
                stats.finish_reason = item.reason
                break


_IDLE = IdleData()


def _error_data(error: ParleyError) -> SessionErrorData:
    return SessionErrorData(error_type=type(error).__name__, message=str(error))


class _TurnStats:
    """Timing and usage of one turn, summed over its model calls (retries included)."""

    __slots__ = ("finish_reason", "first_token", "started", "usage")

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.usage: Usage | None = None

    def add(self, item: StreamUsage) -> None:
        usage = Usage(
            input_tokens=item.input_tokens,
            output_tokens=item.output_tokens,
            cached_tokens=item.cached_tokens,
            cost=item.cost,
        )
        self.usage = usage if self.usage is None else self.usage + usage

    def usage_data(self, model: str, usage: Usage) -> UsageData:
        now = time.monotonic()
        return UsageData(
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost=usage.cost,
            duration_ms=(now - self.started) * 1000,
            time_to_first_token_ms=(
                (self.first_token - self.started) * 1000 if self.first_token else None
            ),
        )
