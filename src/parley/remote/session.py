"""`Session` on a remote `parley serve`: the same methods, over the runtime protocol.

Events arrive as ``session.event`` notifications. A turn's events are those from its
``user.message`` (whose id `send` returned) up to the next ``session.idle``; they may arrive
before the ``session.send`` reply does, so they are kept by message id until claimed.
Tools given to a remote session run here, in this process: the server asks for them with
``external_tool.requested`` and permission with ``permission.requested``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from parley.errors import (
    ConfigError,
    ParleyError,
    SessionClosedError,
    TurnAbortedError,
    TurnTimeoutError,
)
from parley.events import SessionEvent
from parley.messages import Message, MessageOptions, TextPart, Usage
from parley.remote.link import RemoteLink, make_error
from parley.runtime.bus import EventBus, Handler, Unsubscribe
from parley.server.wire import event_from_copilot, messages_from_events
from parley.session import Session, _prompt
from parley.tools import PermissionHandler, PermissionRequest, Tool

__all__ = ["RemoteSession"]


@dataclass(eq=False)
class _RemoteTurn:
    events: asyncio.Queue[SessionEvent] = field(default_factory=asyncio.Queue)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    reply: Message | None = None
    usage: Usage | None = None
    error: ParleyError | None = None
    aborted: bool = False


class RemoteSession(Session):
    """A session held by a `parley serve` runtime; see `Session` for each method."""

    __slots__ = (
        "_busy",
        "_closed",
        "_current",
        "_id",
        "_last_activity",
        "_link",
        "_model",
        "_on_permission",
        "_remote_bus",
        "_title",
        "_tools",
        "_turns",
    )

    def __init__(
        self,
        link: RemoteLink,
        session_id: str,
        *,
        model: str,
        title: str | None,
        tools: Sequence[Tool],
        on_permission_request: PermissionHandler | None,
    ) -> None:
        self._link = link
        self._id = session_id
        self._model = model
        self._title = title
        self._tools = {t.name: t for t in tools}
        self._on_permission = on_permission_request
        self._remote_bus = EventBus()
        self._turns: dict[str, _RemoteTurn] = {}
        self._current: _RemoteTurn | None = None
        self._busy = 0
        self._closed = False
        self._last_activity = time.monotonic()

    def __repr__(self) -> str:
        return f"<Session {self._id!r} model={self._model!r} remote={self._link.url!r}>"

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return hash(self._id)

    @property
    def session_id(self) -> str:
        return self._id

    @property
    def model(self) -> str:
        return self._model

    @property
    def title(self) -> str | None:
        return self._title

    @property
    def busy(self) -> bool:
        return self._busy > 0

    # --- events from the runtime ------------------------------------------------------------

    def deliver(self, wire: dict[str, Any]) -> None:
        """One ``session.event`` for this session, from the link."""
        self._last_activity = time.monotonic()
        kind = wire.get("type")
        if kind == "external_tool.requested":
            asyncio.ensure_future(self._run_tool(wire["data"]))  # noqa: RUF006 - answers itself
            return
        if kind == "permission.requested":
            asyncio.ensure_future(self._ask_permission(wire["data"]))  # noqa: RUF006
            return
        event = event_from_copilot(self._id, wire)
        if event is None:
            return
        if event.type == "user.message":
            self._current = self._turns.setdefault(event.data.message_id, _RemoteTurn())
        elif event.type == "session.start" and self._title is None:
            self._title = event.data.title
        turn = self._current
        if turn is not None:
            self._track(turn, event)
            turn.events.put_nowait(event)
            if event.type == "session.idle":
                turn.done.set()
                self._current = None
        self._remote_bus.publish(event)

    def _track(self, turn: _RemoteTurn, event: SessionEvent) -> None:
        if event.type == "assistant.message":
            data = event.data
            turn.reply = Message(
                id=data.message_id,
                role="assistant",
                parts=(TextPart(text=data.content),) if data.content else (),
                created_at=event.timestamp,
                model=data.model,
                interrupted=data.interrupted,
            )
        elif event.type == "assistant.usage":
            usage = Usage(
                input_tokens=event.data.input_tokens,
                output_tokens=event.data.output_tokens,
                cached_tokens=event.data.cached_tokens,
                cost=event.data.cost,
            )
            turn.usage = usage if turn.usage is None else turn.usage + usage
        elif event.type == "session.error":
            turn.error = make_error(event.data.error_type, event.data.message, self._id)
        elif event.type == "abort":
            turn.aborted = True
        elif event.type == "session.idle" and turn.reply is not None and turn.usage is not None:
            r = turn.reply
            turn.reply = Message(
                id=r.id, role=r.role, parts=r.parts, created_at=r.created_at, model=r.model,
                usage=turn.usage, interrupted=r.interrupted,
            )  # fmt: skip

    async def _run_tool(self, data: dict[str, Any]) -> None:
        tool = self._tools.get(str(data.get("toolName")))
        if tool is None:
            return  # another client holds it
        answer: dict[str, Any] = {"sessionId": self._id, "requestId": data["requestId"]}
        try:
            text = await tool.run(
                dict(data.get("arguments") or {}),
                session_id=self._id,
                call_id=str(data.get("toolCallId", "")),
            )
            answer["result"] = {"textResultForLlm": text, "resultType": "success"}
        except Exception as exc:
            answer["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(ParleyError):
            await self._link.call("session.tools.handlePendingToolCall", answer)

    async def _ask_permission(self, data: dict[str, Any]) -> None:
        if self._on_permission is None:
            return
        raw = data.get("permissionRequest") or {}
        request = PermissionRequest(
            session_id=self._id,
            tool_name=str(raw.get("toolName", "")),
            arguments=dict(raw.get("args") or {}),
            call_id=str(raw.get("toolCallId", "")),
        )
        try:
            verdict = self._on_permission(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception:
            verdict = False
        kind = "approve-once" if verdict else "reject"
        with contextlib.suppress(ParleyError):
            await self._link.call(
                "session.permissions.handlePendingPermissionRequest",
                {"sessionId": self._id, "requestId": data["requestId"], "result": {"kind": kind}},
            )

    # --- sending ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(
                f"session {self._id!r} is closed; resume_session({self._id!r}) opens it again"
            )

    async def _send(self, message: str | MessageOptions) -> tuple[str, _RemoteTurn]:
        self._check_open()
        prompt, tools = _prompt(message)
        if tools:
            raise ConfigError("tools given with one send are not supported over a remote client")
        self._busy += 1
        try:
            result = await self._link.call(
                "session.send", {"sessionId": self._id, "prompt": prompt}
            )
        except BaseException:
            self._busy -= 1
            raise
        message_id = str(result["messageId"])
        return message_id, self._turns.setdefault(message_id, _RemoteTurn())

    def _finished(self, message_id: str) -> None:
        self._turns.pop(message_id, None)
        self._busy = max(0, self._busy - 1)

    async def send(self, message: str | MessageOptions) -> str:
        message_id, turn = await self._send(message)
        asyncio.ensure_future(self._forget(message_id, turn))  # noqa: RUF006
        return message_id

    async def _forget(self, message_id: str, turn: _RemoteTurn) -> None:
        await turn.done.wait()
        self._finished(message_id)

    async def send_and_wait(
        self,
        message: str | MessageOptions,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - inactivity, not a deadline
    ) -> Message:
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, or None; got {timeout!r}")
        message_id, turn = await self._send(message)
        try:
            await self._wait(turn, timeout)
        finally:
            self._finished(message_id)
        if turn.error is not None:
            raise turn.error
        if turn.aborted or turn.reply is None:
            raise TurnAbortedError(f"the turn of session {self._id!r} was aborted")
        return turn.reply

    async def _wait(self, turn: _RemoteTurn, quiet_limit: float | None) -> None:  # type: ignore[override]
        if quiet_limit is None:
            await turn.done.wait()
            return
        while not turn.done.is_set():
            left = quiet_limit - (time.monotonic() - self._last_activity)
            if left <= 0:
                await self.abort()
                await turn.done.wait()
                turn.error = TurnTimeoutError(
                    f"session {self._id!r} emitted no event for {quiet_limit:g}s, so the turn "
                    "was aborted; pass a larger timeout= for slow models, or timeout=None to wait"
                )
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await turn.done.wait()

    def stream(self, message: str | MessageOptions) -> AsyncGenerator[SessionEvent, None]:
        self._check_open()
        sending = asyncio.ensure_future(self._send(message))
        return self._remote_events(sending)

    async def _remote_events(
        self, sending: asyncio.Future[tuple[str, _RemoteTurn]]
    ) -> AsyncGenerator[SessionEvent, None]:
        message_id, turn = await sending
        try:
            while True:
                event = await turn.events.get()
                yield event
                if event.type == "session.idle":
                    return
        finally:
            if turn.done.is_set():
                self._finished(message_id)
            else:
                asyncio.ensure_future(self._forget(message_id, turn))  # noqa: RUF006

    # --- the rest ---------------------------------------------------------------------------

    def on(self, handler: Handler) -> Unsubscribe:
        return self._remote_bus.subscribe(handler)

    async def messages(self) -> list[Message]:
        result = await self._link.call("session.getMessages", {"sessionId": self._id})
        return messages_from_events(result["events"])

    async def abort(self) -> bool:
        result = await self._link.call("session.abort", {"sessionId": self._id})
        return bool(result.get("aborted"))

    async def set_model(self, model: str) -> None:
        self._check_open()
        result = await self._link.call(
            "session.model.switchTo", {"sessionId": self._id, "modelId": model}
        )
        self._model = str(result.get("modelId", model))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ParleyError):
            await self._link.call("session.detach", {"sessionId": self._id})
