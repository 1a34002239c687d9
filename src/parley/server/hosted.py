"""A session open in the server, and the connections attached to it.

Each connection that created or resumed a session is attached to it and gets its events as
``session.event`` notifications (deltas only if it asked for ``streaming``). Tools a client
declares run on that client: the server emits ``external_tool.requested`` and waits for
``session.tools.handlePendingToolCall``; permission to run one is asked the same way
(``permission.requested`` → ``session.permissions.handlePendingPermissionRequest``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parley.events import SessionEvent
from parley.messages import new_id
from parley.server.params import ToolSpec
from parley.server.wire import copilot_event, server_event
from parley.session import Session
from parley.tools import PermissionRequest, Tool, ToolInvocation

if TYPE_CHECKING:
    from parley.server.connection import Connection

__all__ = ["Attachment", "HostedSession", "Pending", "ToolFailedError"]


class ToolFailedError(Exception):
    """The client ran the tool and reported an error; its text goes to the model."""


@dataclass(eq=False)
class Pending:
    """A tool call or permission request waiting for a client's answer."""

    session_id: str
    kind: str  # "tool" or "permission"
    answer: asyncio.Future[dict[str, Any]]
    owner: Connection | None  # the connection whose disconnect fails it (tools: the holder)


@dataclass(eq=False)
class Attachment:
    streaming: bool
    request_permission: bool


@dataclass(eq=False)
class HostedSession:
    """One open parley `Session` and who is watching it."""

    session_id: str
    pending: dict[str, Pending]
    broadcast: Callable[[str, dict[str, Any], str], None]
    """broadcast(session_id, event, type): to connections that asked for every event."""
    attached: dict[Connection, Attachment] = field(default_factory=dict)
    tools: dict[str, tuple[ToolSpec, Connection]] = field(default_factory=dict)
    last_event_id: str | None = None
    user_message_id: str | None = None
    title: str | None = None
    """The title clients were last told of."""
    unsubscribe: Callable[[], None] | None = None
    session: Session = field(init=False)
    """Set by `start`: the session is made with this object's tool and permission hooks."""

    def start(self, session: Session) -> None:
        self.session = session
        self.title = session.title
        self.unsubscribe = session.on(self._forward)

    def stop(self) -> None:
        if self.unsubscribe is not None:
            self.unsubscribe()
            self.unsubscribe = None

    # --- events -----------------------------------------------------------------------------

    def _forward(self, event: SessionEvent) -> None:
        if event.type == "user.message":
            self.user_message_id = event.data.message_id
        self.last_event_id = event.id
        wire = copilot_event(event, originating_message_id=self.user_message_id)
        self.send(wire, event.type)
        if event.type == "user.message":  # the first turn names an untitled session
            self.note_title()

    def note_title(self) -> None:
        """Tell the clients of a new title with Copilot's ``session.title_changed``."""
        title = self.session.title
        if title is not None and title != self.title:
            self.title = title
            self.emit("session.title_changed", {"title": title})

    def send(self, wire: dict[str, Any], kind: str) -> None:
        """Notify every attached connection of `wire` (deltas only to streaming ones)."""
        params = {"sessionId": self.session_id, "event": wire}
        for connection, attachment in tuple(self.attached.items()):
            if kind == "assistant.message_delta" and not attachment.streaming:
                continue
            connection.peer.notify("session.event", params)
        self.broadcast(self.session_id, wire, kind)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """An event the server makes itself, chained after the session's last one."""
        wire = server_event(kind, data, parent_id=self.last_event_id)
        self.last_event_id = wire["id"]
        self.send(wire, kind)

    # --- tools and permissions held by clients ------------------------------------------------

    @property
    def asks_permission(self) -> bool:
        """Whether some attached client answers permission requests."""
        return any(a.request_permission for a in self.attached.values())

    def set_tools(self, specs: list[ToolSpec], owner: Connection) -> list[Tool]:
        """Make `specs` this session's tools, run by `owner`; returns them as parley Tools."""
        self.tools = {spec.name: (spec, owner) for spec in specs}
        return [
            Tool.from_schema(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                function=self._call_tool,
                timeout=24 * 3600.0,  # the client runs it; it answers or disconnects
            )
            for spec in specs
        ]

    async def _ask(self, kind: str, owner: Connection | None, event: str, data: Any) -> Any:
        request_id = new_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = Pending(self.session_id, kind, future, owner)
        try:
            self.emit(event, {"requestId": request_id, **data})
            return request_id, await future
        finally:
            self.pending.pop(request_id, None)

    async def _call_tool(self, invocation: ToolInvocation) -> str:
        entry = self.tools.get(invocation.tool_name)
        owner = entry[1] if entry is not None else None
        if owner is None or owner not in self.attached:
            raise ToolFailedError(
                f"the client that runs {invocation.tool_name!r} is not connected, so the call "
                "was not made; a client that resumes the session with its tools runs them again"
            )
        request_id, answer = await self._ask(
            "tool",
            owner,
            "external_tool.requested",
            {
                "sessionId": self.session_id,
                "toolCallId": invocation.call_id,
                "toolName": invocation.tool_name,
                "arguments": invocation.arguments,
            },
        )
        self.emit("external_tool.completed", {"requestId": request_id})
        if answer.get("error") is not None:
            raise ToolFailedError(str(answer["error"]))
        result = answer.get("result")
        if isinstance(result, dict):
            text = result.get("textResultForLlm", "")
            if result.get("resultType") in ("failure", "rejected", "denied"):
                raise ToolFailedError(str(result.get("error") or text))
            return str(text)
        return "" if result is None else str(result)

    async def check_permission(self, request: PermissionRequest) -> bool:
        """Ask the clients before a client-held tool runs, unless none asked to be asked."""
        entry = self.tools.get(request.tool_name)
        if entry is None:
            return True
        spec, _owner = entry
        if spec.skip_permission or not self.asks_permission:
            return True
        request_id, answer = await self._ask(
            "permission",
            None,
            "permission.requested",
            {
                "permissionRequest": {
                    "kind": "custom-tool",
                    "toolCallId": request.call_id,
                    "toolName": request.tool_name,
                    "toolDescription": spec.description,
                    "args": request.arguments,
                }
            },
        )
        kind = str(answer.get("result", {}).get("kind", ""))
        allowed = kind.startswith("approve")
        outcome = "approved" if allowed else "denied-interactively-by-user"
        self.emit("permission.completed", {"requestId": request_id, "result": {"kind": outcome}})
        return allowed

    def detach(self, connection: Connection) -> None:
        """`connection` is gone or let go: stop its events; fail this session's requests that
        it alone could answer (tool calls it holds; permissions, once no one left asks)."""
        self.attached.pop(connection, None)
        asks = self.asks_permission
        for request_id, pending in tuple(self.pending.items()):
            if pending.session_id != self.session_id or pending.answer.done():
                continue
            answer: dict[str, Any]
            if pending.kind == "tool" and pending.owner is connection:
                answer = {"error": "the client that runs this tool disconnected before answering"}
            elif pending.kind == "permission" and not asks:
                answer = {"result": {"kind": "reject"}}  # nobody left to ask: not allowed
            else:
                continue
            pending.answer.set_result(answer)
            self.pending.pop(request_id, None)
