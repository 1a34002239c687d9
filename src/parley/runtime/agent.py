"""One turn: the user's message, then model call -> tool calls -> results -> model call... until
a final answer, an abort, a failure or `max_tool_rounds`.

Every message is stored as it completes. An assistant message that asks for tools is always
followed by one `tool` message answering every call (with "cancelled" results after an abort),
so a stored history never holds a call without its result; `history.repair` closes what a
crash or a failed write cut off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from parley.errors import (
    ParleyError,
    ProviderError,
    ProviderResponseError,
    ToolLoopError,
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
    SessionIdleEvent,
    TurnData,
    UsageData,
    UserMessageData,
    UserMessageEvent,
)
from parley.messages import (
    Message,
    Part,
    TextPart,
    ToolCallPart,
    Usage,
    message_from_fields,
    new_id,
    utcnow,
)
from parley.models.base import (
    ModelAdapter,
    ModelRequest,
    RequestCache,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
    ToolSpec,
)
from parley.runtime.history import (
    UNSTORED_NOTE,
    ShownHistory,
    derive_title,
    repair,
    shown,
    window,
)
from parley.runtime.retry import retry_after
from parley.runtime.toolcalls import run_tool_calls
from parley.runtime.turn import Turn
from parley.tools import Tool

if TYPE_CHECKING:
    from parley.runtime.live import LiveSession

__all__ = ["fail_unstarted", "run_turn"]

_IDLE = IdleData()


def offered_tools(live: LiveSession, turn: Turn) -> dict[str, Tool]:
    """The session's tools and this send's, by name; a send's tool replaces a namesake."""
    return {t.name: t for t in (*live.tools, *turn.tools)}


def _error_data(error: ParleyError) -> SessionErrorData:
    return SessionErrorData(error_type=type(error).__name__, message=str(error))


async def fail_unstarted(live: LiveSession, turn: Turn, error: ParleyError) -> None:
    """End a turn that failed before anything of it was stored: report it and move on."""
    turn.error = error
    live.emit(SessionErrorEvent, _error_data(error), turn)
    await live.release_lease()
    live.emit(SessionIdleEvent, _IDLE, turn)
    if turn.admitted is not None:
        turn.admitted.set()
    turn.done.set()


async def run_turn(live: LiveSession, turn: Turn) -> None:
    """Run `turn` to its end, storing and emitting as it goes; never raises ParleyError."""
    user = Message.user(turn.prompt, id=turn.message_id)
    # A previous turn whose reply could not be stored left its user message (or tool calls)
    # unanswered: close that in the same write as this message.
    turn.unstored = (*repair(live.history, live.model, UNSTORED_NOTE), user)
    # The write runs while the model call starts, so its round trip to the store overlaps the
    # request instead of delaying it. Nothing of the reply is emitted or stored before the
    # write has succeeded (`_opened`), and if it fails nothing of the turn is.
    turn.opening = asyncio.ensure_future(_open(live, turn.unstored, turn.prompt))
    turn.opening.add_done_callback(_retrieve)
    try:
        await _answer(live, turn)
    except _Unstored as exc:
        await fail_unstarted(live, turn, exc.error)


def _retrieve(future: asyncio.Future[None]) -> None:
    """An opening write whose turn was cancelled while it ran must not log as unretrieved."""
    if not future.cancelled():
        future.exception()


async def _open(live: LiveSession, rows: tuple[Message, ...], prompt: str) -> None:
    # Let the model call send its request first: a store that writes on the event loop's own
    # thread (SQLite) then writes while the provider works, not before the request leaves.
    await asyncio.sleep(0)
    await live.store.append_messages(live.session_id, rows)
    if live.title is None:  # the first turn names the session, unless it was named
        await live.set_title(derive_title(prompt))


class _Unstored(Exception):
    """The turn's user message could not be stored, so nothing of the turn may be."""

    def __init__(self, error: ParleyError) -> None:
        super().__init__(str(error))
        self.error = error


async def _opened(live: LiveSession, turn: Turn) -> None:
    """Wait for the opening write; once it has succeeded, emit the user's message (once)."""
    opening = turn.opening
    if opening is None:
        return
    try:
        if opening.done():  # as it usually is by the reply's first token: no loop turn
            opening.result()
        else:
            await asyncio.shield(opening)  # an abort cancels the model call, never the write
    except ParleyError as exc:
        turn.opening = None
        raise _Unstored(exc) from exc
    turn.opening = None  # no await since the check above: no other caller got here
    live.history.extend(turn.unstored)
    turn.unstored = ()
    if live.heard(turn):
        data = UserMessageData(message_id=turn.message_id, content=turn.prompt)
        live.deliver(UserMessageEvent, data, turn)
    if live.heard(turn):
        live.deliver(AssistantTurnStartEvent, TurnData(turn_id=turn.turn_id), turn)


async def _answer(live: LiveSession, turn: Turn) -> None:
    tools = turn.offered = offered_tools(live, turn)  # fixed for the whole turn
    error: ParleyError | None = None
    reply: Message | None = None
    rounds = 0
    while True:
        reply, error, calls = await _model_call(live, turn)
        if error is not None or turn.aborted or not calls:
            break
        if rounds >= live.max_tool_rounds:
            error = ToolLoopError(
                f"the model still asked for tools after {rounds} round(s) of tool calls, so "
                "the turn was stopped (its last calls were answered as not run); raise "
                "SessionConfig(max_tool_rounds=...) if the task needs more"
            )
            await _store_results(live, turn, await run_tool_calls(live, turn, calls, {}, skip=True))
            break
        rounds += 1
        turn.committing = False  # the reply asking for tools is stored: aborts are welcome again
        results = await run_tool_calls(live, turn, calls, tools)
        if not await _store_results(live, turn, results):
            error = turn.error
            break
        if turn.abort_reason is not None:  # aborted while the tools ran
            break
    await _finish(live, turn, reply, error)


async def _store_results(live: LiveSession, turn: Turn, results: Message) -> bool:
    try:
        await live.store.append_messages(live.session_id, [results])
    except ParleyError as exc:  # the next turn's repair closes the calls left open
        turn.error = exc
        return False
    live.history.append(results)
    return True


async def _finish(
    live: LiveSession, turn: Turn, reply: Message | None, error: ParleyError | None
) -> None:
    if turn.abort_reason is not None:
        live.emit(AbortEvent, AbortData(reason=turn.abort_reason), turn)
        kept = (
            "its history is deleted with it"
            if live.deleted
            else "the text streamed so far is kept in the history, marked interrupted"
        )
        turn.error = TurnAbortedError(
            f"the turn of session {live.session_id!r} was aborted ({turn.abort_reason}); {kept}"
        )
    if error is not None:
        turn.error = error
        live.emit(SessionErrorEvent, _error_data(error), turn)
    if live.heard(turn):
        live.deliver(AssistantTurnEndEvent, TurnData(turn_id=turn.turn_id), turn)
    turn.result = reply
    if live.lease is not None:  # before idle: whoever idle wakes finds the session free
        await live.release_lease()
    live.emit(SessionIdleEvent, _IDLE, turn)
    turn.done.set()


async def _model_call(
    live: LiveSession, turn: Turn
) -> tuple[Message, ParleyError | None, list[ToolCallPart]]:
    """One model call: stream it, store its message, emit it. Returns the tool calls asked."""
    model = live.model
    call = _Call(new_id())
    error: ParleyError | None = None
    if not turn.aborted:
        turn.committing = False
        # The call runs in this (the worker's) task, not one of its own: a task more per call
        # costs two turns of the event loop. An abort cancels this task while the call runs,
        # and that one cancellation is taken back here.
        worker = turn.stream_task = asyncio.current_task()
        try:
            await _stream(live, turn, model, call)
        except asyncio.CancelledError:
            if turn.abort_reason is None or worker is None:  # not an abort: stop the worker
                raise
            worker.uncancel()
        except _Unstored:
            raise
        except ParleyError as exc:
            error = exc
        except Exception as exc:  # an adapter broke its contract; keep the session usable
            error = ProviderResponseError(f"the model adapter failed: {exc!r}")
        finally:
            turn.stream_task = None
    await _opened(live, turn)  # when the call ended (or was aborted) before any output
    turn.committing = True  # an abort from here on would misreport a finished reply
    interrupted = turn.aborted or error is not None
    text = "".join(call.chunks)
    # Calls are only complete once the stream finished; an interrupted reply asks for none.
    calls = [] if interrupted else call.calls
    parts: list[Part] = [TextPart(text=text)] if text else []
    parts.extend(calls)
    reply = message_from_fields(
        call.reply_id,
        "assistant",
        tuple(parts),
        utcnow(),
        model,
        call.usage,
        interrupted,
        str(error) if error is not None else turn.abort_reason,
    )
    try:
        await live.store.append_messages(live.session_id, [reply])
    except ParleyError as exc:
        error = error or exc
        calls = []  # nothing stored asks for them: do not run them
    else:
        live.history.append(reply)
    if live.heard(turn):
        data = AssistantMessageData(
            message_id=call.reply_id,
            content=text,
            model=model,
            interrupted=interrupted,
            finish_reason=None if interrupted else call.finish_reason,
        )
        live.deliver(AssistantMessageEvent, data, turn)
    if call.usage is not None and live.heard(turn):
        live.deliver(AssistantUsageEvent, call.usage_data(model), turn)
    return reply, error, calls


async def _stream(live: LiveSession, turn: Turn, model: str, call: _Call) -> None:
    resolved = live.resolve(model)
    if live.request_cache is None:
        live.request_cache = RequestCache()
    if live.shown is None:
        live.shown = ShownHistory()
    view = live.shown.of(live.history)
    if turn.unstored:  # the turn's own messages, sent before they are stored (a new list)
        view = view + [m for m in turn.unstored if shown(m)]
    request = ModelRequest(
        model=resolved.name,
        messages=window(view, live.max_history_messages, live.max_history_tokens),
        system=live.system_message,
        session_id=live.session_id,
        tools=[
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
            for t in turn.offered.values()
        ],
        cache=live.request_cache,
    )
    adapter = resolved.adapter
    attempt = 1
    while True:
        try:
            await _read(live, turn, adapter, request, call)
            return
        except ProviderError as exc:
            if call.chunks or call.calls:  # passed on: a retry would repeat it
                raise
            if not await retry_after(adapter, exc, attempt, live.retry, live.touch):
                raise
            attempt += 1


async def _read(
    live: LiveSession, turn: Turn, adapter: ModelAdapter, request: ModelRequest, call: _Call
) -> None:
    """One try of the model call, read to its finish. An abort ends it early: its stream (and
    HTTP response) is closed now rather than whenever the garbage collector gets to it."""
    batched = getattr(adapter, "stream_batches", None)
    if batched is None:
        items = adapter.stream(request)
        try:
            await _consume(live, turn, items, call)
        finally:
            await _close(items)
    else:
        batches: AsyncIterator[list[StreamEvent]] = batched(request)
        try:
            await _consume_batches(live, turn, batches, call)
        finally:
            await _close(batches)


async def _close(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def _consume(
    live: LiveSession, turn: Turn, items: AsyncIterator[StreamEvent], call: _Call
) -> None:
    async for item in items:
        if turn.opening is not None:
            await _opened(live, turn)
        if _take(live, turn, call, item):
            break


async def _consume_batches(
    live: LiveSession, turn: Turn, batches: AsyncIterator[list[StreamEvent]], call: _Call
) -> None:
    """`_consume` for an adapter that passes what arrived together as one list: one await a
    network read, not one a token."""
    async for batch in batches:
        if turn.opening is not None:
            await _opened(live, turn)
        for item in batch:
            if _take(live, turn, call, item):
                return


def _take(live: LiveSession, turn: Turn, call: _Call, item: StreamEvent) -> bool:
    """Add one item of the stream to `call`, emitting what it shows; True at the finish."""
    if isinstance(item, StreamTextDelta):
        if item.text:
            if call.first_token is None:
                call.first_token = time.monotonic()
            call.chunks.append(item.text)
            if live.heard(turn):  # the hottest event: its data is not built for no one
                delta = MessageDeltaData(message_id=call.reply_id, delta_content=item.text)
                live.deliver(AssistantMessageDeltaEvent, delta, turn)
    elif isinstance(item, StreamUsage):
        call.add(item)
    elif isinstance(item, StreamToolCall):
        call.calls.append(
            ToolCallPart(call_id=item.call_id, name=item.name, arguments=item.arguments)
        )
    elif isinstance(item, StreamFinish):
        call.finish_reason = item.reason
        return True
    return False


class _Call:
    """What one model call produced: text, tool calls, usage and timing."""

    __slots__ = ("calls", "chunks", "finish_reason", "first_token", "reply_id", "started", "usage")

    def __init__(self, reply_id: str) -> None:
        self.reply_id = reply_id
        self.chunks: list[str] = []
        self.calls: list[ToolCallPart] = []
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

    def usage_data(self, model: str) -> UsageData:
        usage = self.usage or Usage(cost=None)
        return UsageData(
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost=usage.cost,
            duration_ms=(time.monotonic() - self.started) * 1000,
            time_to_first_token_ms=(
                (self.first_token - self.started) * 1000 if self.first_token else None
            ),
        )
