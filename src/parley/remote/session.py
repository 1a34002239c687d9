"""`Session` on a remote `parley serve`: the same methods, over the runtime protocol.

`send_and_wait`, `messages` and `close` use parley's own methods (`server/extensions.py`),
so they return and raise exactly what they do embedded. Events arrive as ``session.event``
notifications. A `stream`'s turn is the events from its ``user.message`` (whose id the
``session.send`` reply names) up to the next ``session.idle``; they may arrive before that
reply does, so they are kept by message id until claimed. Tools given to a remote session run
here, in this process: the server asks for them with ``external_tool.requested``, and for
permission with ``permission.requested``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from parley.errors import ConfigError, ParleyError, SessionClosedError
from parley.events import SessionEvent
from parley.messages import Message, MessageOptions, message_from_dict
from parley.remote.link import RemoteLink
from parley.runtime.bus import EventBus, Handler, Unsubscribe
from parley.server.wire import event_from_copilot
from parley.session import Session, _prompt, _until_idle
from parley.tools import PermissionHandler, PermissionRequest, Tool

__all__ = ["RemoteSession"]

_UNCLAIMED = 64
"""Turns seen but not (yet) claimed by a send of this handle that are kept: another client's
turns on the same session are seen too, and a send's reply may come after its events."""


@dataclass(eq=False)
class _Turn:
    events: asyncio.Queue[SessionEvent | None] = field(default_factory=asyncio.Queue)
    done: bool = False
    claimed: bool = False
    error: ParleyError | None = None
    """Why the turn ended without events (the session was closed or deleted first)."""


class RemoteSession(Session):
    """A session held by a `parley serve` runtime; see `Session` for each method."""

    __slots__ = (
        "_bus",
        "_closed",
        "_current",
        "_forget",
        "_id",
        "_link",
        "_model",
        "_on_permission",
        "_sending",
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
        forget: Callable[[RemoteSession], None],
    ) -> None:
        self._link = link
        self._forget = forget  # the client's table of open sessions lets go of a closed one
        self._id = session_id
        self._model = model
        self._title = title
        self._tools = {t.name: t for t in tools}
        self._on_permission = on_permission_request
        self._bus = EventBus()
        self._turns: dict[str, _Turn] = {}
        self._current: _Turn | None = None
        self._sending = 0
        self._closed: SessionClosedError | None = None

    def __repr__(self) -> str:
        return f"<Session {self._id!r} model={self._model!r} url={self._link.url!r}>"

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
        """Whether a send of this handle is in flight or a turn of the session is running."""
        return self._sending > 0 or self._current is not None

    def _take(
        self, tools: Sequence[Tool] | None, on_permission_request: PermissionHandler | None
    ) -> None:
        """What a resume of this open session gave: it replaces this handle's own."""
        if tools is not None:
            self._tools = {t.name: t for t in tools}
        if on_permission_request is not None:
            self._on_permission = on_permission_request

    # --- events from the runtime ------------------------------------------------------------

    def deliver(self, wire: dict[str, Any]) -> None:
        """One ``session.event`` for this session, from the link."""
        kind = wire.get("type")
        data = wire.get("data")
        if not isinstance(data, dict):
            return
        if kind == "external_tool.requested":
            asyncio.ensure_future(self._run_tool(data))  # noqa: RUF006 - answers itself
            return
        if kind == "permission.requested":
            asyncio.ensure_future(self._ask_permission(data))  # noqa: RUF006
            return
        if kind == "session.title_changed":
            self._title = str(data.get("title"))
            return
        event = event_from_copilot(self._id, wire)
        if event is None:  # Copilot's own events parley has no class for
            return
        if event.type == "user.message":
            self._current = self._turn(event.data.message_id)
        turn = self._current
        if turn is not None:
            turn.events.put_nowait(event)
            if event.type == "session.idle":
                turn.done = True
                self._current = None
        self._bus.publish(event)

    def _turn(self, message_id: str) -> _Turn:
        turn = self._turns.get(message_id)
        if turn is None:
            turn = self._turns[message_id] = _Turn()
            unclaimed = [k for k, t in self._turns.items() if not t.claimed and t.done]
            for key in unclaimed[: max(0, len(unclaimed) - _UNCLAIMED)]:
                del self._turns[key]
        return turn

    async def _run_tool(self, data: dict[str, Any]) -> None:
        tool = self._tools.get(str(data.get("toolName")))
        if tool is None:
            return  # another client holds it
        answer: dict[str, Any] = {"sessionId": self._id, "requestId": data.get("requestId")}
        try:
            async with asyncio.timeout(tool.timeout):
                text = await tool.run(
                    dict(data.get("arguments") or {}),
                    session_id=self._id,
                    call_id=str(data.get("toolCallId", "")),
                )
            answer["result"] = {"textResultForLlm": text, "resultType": "success"}
        except TimeoutError:
            answer["error"] = f"the tool {tool.name!r} did not finish within {tool.timeout:g}s"
        except Exception as exc:
            answer["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(ParleyError):  # the session may be gone meanwhile
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
        except Exception:  # as embedded: a handler that fails does not allow the call
            verdict = False
        kind = "approve-once" if verdict else "reject"
        with contextlib.suppress(ParleyError):
            await self._link.call(
                "session.permissions.handlePendingPermissionRequest",
                {
                    "sessionId": self._id,
                    "requestId": data.get("requestId"),
                    "result": {"kind": kind},
                },
            )

    # --- sending ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed

    def _params(self, message: str | MessageOptions) -> dict[str, Any]:
        self._check_open()
        prompt, tools = _prompt(message)
        if tools:
            raise ConfigError(
                "tools given with one send run embedded only; on a remote client give them to "
                "create_session or resume_session"
            )
        return {"sessionId": self._id, "prompt": prompt}

    async def _sent(self, reply: Awaitable[Any]) -> Any:
        """A send's reply; `busy` counts the send until it comes."""
        self._sending += 1
        try:
            return await reply
        finally:
            self._sending -= 1

    async def _claim(self, reply: Awaitable[Any]) -> _Turn:
        result = await self._sent(reply)
        turn = self._turn(str(result["messageId"]))
        turn.claimed = True
        return turn

    async def send(self, message: str | MessageOptions) -> str:
        result = await self._sent(self._link.call("session.send", self._params(message)))
        return str(result["messageId"])

    async def send_and_wait(
        self,
        message: str | MessageOptions,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - inactivity, not a deadline
    ) -> Message:
        # The runtime counts the inactivity (it sees every event first) and checks `timeout`.
        params = {**self._params(message), "timeout": timeout}
        result = await self._sent(self._link.call("parley.session.sendAndWait", params))
        return message_from_dict(result["reply"])

    def stream(self, message: str | MessageOptions) -> AsyncGenerator[SessionEvent, None]:
        reply = self._link.call("session.send", self._params(message))  # queued now
        return self._events(asyncio.ensure_future(self._claim(reply)))

    async def _events(  # type: ignore[override]
        self, claiming: asyncio.Future[_Turn]
    ) -> AsyncGenerator[SessionEvent, None]:
        turn = await claiming
        async for event in _until_idle(turn.events, lambda: turn.error):
            yield event

    def _end(
        self, reason: str, *, deleted: bool = False, running: type[ParleyError] | None = None
    ) -> None:
        """This handle is closed (the words are the embedded runtime's): later calls raise,
        and streams of turns that never started end with the error their runtime gave. With
        `running` (no more events will come: the client stopped or the connection is gone)
        the running turn's stream ends too, with that error."""
        then = (
            "create_session() starts a new one"
            if deleted
            else f"resume_session({self._id!r}) to continue it"
        )
        self._closed = SessionClosedError(f"session {self._id!r} {reason}; {then}")
        dropped = SessionClosedError(f"session {self._id!r} {reason} before this turn ran")
        for turn in self._turns.values():
            if not turn.claimed or turn.done:
                continue
            if turn is not self._current:
                turn.error = dropped
            elif running is not None:
                turn.error = running(
                    f"session {self._id!r} {reason}; the runtime finishes the turn"
                )
            else:
                continue  # its abort and session.idle are on their way
            turn.done = True
            turn.events.put_nowait(None)

    # --- the rest ---------------------------------------------------------------------------

    def on(self, handler: Handler) -> Unsubscribe:
        return self._bus.subscribe(handler)

    async def messages(self) -> list[Message]:
        result = await self._link.call("parley.session.messages", {"sessionId": self._id})
        return [message_from_dict(m) for m in result["messages"]]

    async def abort(self, *, message_id: str | None = None) -> bool:
        if self._closed is not None:
            return False
        params: dict[str, Any] = {"sessionId": self._id}
        if message_id is not None:
            params["messageId"] = message_id
        result = await self._link.call("session.abort", params)
        return bool(result.get("aborted"))

    async def set_model(self, model: str) -> None:
        self._check_open()
        result = await self._link.call(
            "session.model.switchTo", {"sessionId": self._id, "modelId": model}
        )
        self._model = str(result.get("modelId", model))

    async def close(self) -> None:
        if self._closed is not None:
            return
        self._end("was closed")
        self._forget(self)
        with contextlib.suppress(ParleyError):  # a runtime already gone has closed it too
            await self._link.call("parley.session.close", {"sessionId": self._id})
        await self._bus.drain()
