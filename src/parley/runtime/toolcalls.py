"""Running the tool calls of one model response: concurrently, each asked permission first,
each bounded by its timeout, and every call answered, whatever happens to it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from parley.events import (
    ToolExecutionCompleteData,
    ToolExecutionCompleteEvent,
    ToolExecutionStartData,
    ToolExecutionStartEvent,
)
from parley.messages import Message, ToolCallPart, ToolResultPart, new_id, utcnow
from parley.runtime.turn import Turn
from parley.tools import PermissionRequest, Tool, ToolArgumentsError

if TYPE_CHECKING:
    from parley.runtime.live import LiveSession

__all__ = ["CANCELLED", "run_tool_calls"]

CANCELLED = "cancelled: the turn was aborted before this tool call finished"
NOT_RUN = "not run: the turn reached its max_tool_rounds"


class _Refused(Exception):
    """A call that must not run; its message is the result the model reads."""


async def run_tool_calls(
    live: LiveSession,
    turn: Turn,
    calls: Sequence[ToolCallPart],
    tools: Mapping[str, Tool],
    *,
    skip: bool = False,
) -> Message:
    """One `tool` message answering every call, in the calls' order.

    An abort cancels the calls still running; they are answered with a "cancelled" result, so
    the history stays valid. With `skip`, no call runs and each is answered "not run".
    """
    if skip or turn.aborted:
        note = NOT_RUN if skip else CANCELLED
        parts = [ToolResultPart(call_id=c.call_id, content=note, is_error=True) for c in calls]
        return Message(id=new_id(), role="tool", parts=tuple(parts), created_at=utcnow())
    tasks = [asyncio.create_task(_run_one(live, turn, call, tools)) for call in calls]
    everything = asyncio.gather(*tasks)
    turn.stream_task = everything  # abort() cancels this, and through it every call
    try:
        await everything
    except asyncio.CancelledError:
        if turn.abort_reason is None:  # not an abort: the worker itself is being cancelled
            raise
        await asyncio.wait(tasks)  # each cancelled call answers "cancelled" and ends
    finally:
        turn.stream_task = None
    return Message(
        id=new_id(),
        role="tool",
        parts=tuple(task.result() for task in tasks),
        created_at=utcnow(),
    )


async def _allowed(live: LiveSession, call: ToolCallPart) -> bool:
    handler = live.on_permission_request
    if handler is None:
        return True
    request = PermissionRequest(
        session_id=live.session_id,
        tool_name=call.name,
        arguments=dict(call.arguments),
        call_id=call.call_id,
    )
    verdict = handler(request)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


async def _run_one(
    live: LiveSession, turn: Turn, call: ToolCallPart, tools: Mapping[str, Tool]
) -> ToolResultPart:
    start = ToolExecutionStartData(
        tool_call_id=call.call_id, tool_name=call.name, arguments=dict(call.arguments)
    )
    live.emit(ToolExecutionStartEvent, start, turn)
    live.tools_running += 1  # a running tool is activity, not silence (send_and_wait's timeout)
    started = time.monotonic()
    failed = True
    limit = 0.0
    try:
        tool = tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(tools)) or "none"
            raise _Refused(f"there is no tool {call.name!r} (tools: {known})")
        try:
            allowed = await _allowed(live, call)
        except Exception as exc:
            raise _Refused(
                f"the permission check for {call.name!r} failed ({type(exc).__name__}: {exc}), "
                "so the call was not run"
            ) from exc
        if not allowed:
            raise _Refused(f"permission to run {call.name!r} was denied")
        limit = tool.timeout
        content = await asyncio.wait_for(
            tool.run(dict(call.arguments), session_id=live.session_id, call_id=call.call_id),
            limit,
        )
        failed = False
    except asyncio.CancelledError:
        content = CANCELLED  # the call still gets its answer; the task ends here
    except (_Refused, ToolArgumentsError) as exc:
        content = str(exc)
    except TimeoutError:
        content = f"tool {call.name!r} did not finish within its {limit:g}s timeout"
    except Exception as exc:  # a tool's own failure is the model's to read, not the caller's
        content = f"tool {call.name!r} failed: {type(exc).__name__}: {exc}"
    live.tools_running -= 1
    live.touch()
    done = ToolExecutionCompleteData(
        tool_call_id=call.call_id,
        tool_name=call.name,
        success=not failed,
        result=None if failed else content,
        error=content if failed else None,
        duration_ms=(time.monotonic() - started) * 1000,
    )
    live.emit(ToolExecutionCompleteEvent, done, turn)
    return ToolResultPart(call_id=call.call_id, content=content, is_error=failed)
