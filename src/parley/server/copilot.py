"""The Copilot runtime protocol (v3) served over a parley `Client`.

`CopilotServer` holds the sessions open in the server and answers each connection's requests:
``connect``, ``ping``, ``session.*``, ``models.list``, ``runtime.shutdown``, and parley's own
``parley.*`` methods (`extensions`). ``../shared/copilot-protocol.md`` and docs/copilot-sdk.md
describe the wire; this module maps each method onto the public API.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from parley import __version__
from parley.client import Client
from parley.errors import ParleyError, ProviderError, SessionNotFoundError, UsageError
from parley.events import SessionEvent
from parley.server import params as p
from parley.server.connection import Connection
from parley.server.extensions import parley_methods
from parley.server.hosted import Attachment, HostedSession, Pending
from parley.server.rpc import INVALID_PARAMS, METHOD_NOT_FOUND, Peer, RpcError
from parley.server.wire import copilot_event, history_events, info_to_wire

__all__ = ["PROTOCOL_VERSION", "RUNTIME_ERROR", "UNAUTHORIZED", "CopilotServer", "map_error"]

PROTOCOL_VERSION = 3
UNAUTHORIZED = -32001
RUNTIME_ERROR = -32000  # a turn or a store failed: the message says which, data.errorType how

Method = Callable[[Connection, dict[str, Any]], Awaitable[Any]]


def map_error(exc: Exception) -> RpcError | None:
    """parley's errors as JSON-RPC errors: misuse is invalid params, the rest a runtime error;
    `data.errorType` names the class, so parley's remote client raises the same one."""
    if not isinstance(exc, ParleyError):
        return None
    data: dict[str, Any] = {"errorType": type(exc).__name__}
    session_id = getattr(exc, "session_id", None)
    if isinstance(session_id, str):
        data["sessionId"] = session_id
    if isinstance(exc, ProviderError):
        data.update(provider=exc.provider, status=exc.status, retryAfter=exc.retry_after)
    code = INVALID_PARAMS if isinstance(exc, UsageError) else RUNTIME_ERROR
    return RpcError(code, str(exc), data)


class CopilotServer:
    """The sessions a `parley serve` process holds open, shared by all its connections."""

    def __init__(self, client: Client, *, token: str | None = None) -> None:
        self.client = client
        self.token = token
        self.hosted: dict[str, HostedSession] = {}
        self.pending: dict[str, Pending] = {}
        self.connections: set[Connection] = set()
        self.shutdown = asyncio.Event()
        self.cwd = os.getcwd()
        self._methods: dict[str, Method] = {
            "connect": self._connect,
            "ping": self._ping,
            "models.list": self._models,
            "runtime.shutdown": self._shutdown,
            "session.create": self._create,
            "session.resume": self._resume,
            "session.send": self._send,
            "session.sendAndWait": self._send_and_wait,
            "session.abort": self._abort,
            "session.getMessages": self._get_messages,
            "session.list": self._list,
            "session.delete": self._delete,
            "session.detach": self._detach,
            "session.model.switchTo": self._switch_model,
            "session.getMetadata": self._get_metadata,
            "session.getLastId": self._get_last_id,
            "session.options.update": self._update_options,
            "session.tools.handlePendingToolCall": self._answer_tool,
            "session.permissions.handlePendingPermissionRequest": self._answer_permission,
        }
        self._methods.update(parley_methods(self))

    # --- connections ------------------------------------------------------------------------

    async def serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
        *,
        trusted: bool = False,
    ) -> None:
        """Answer one connection until it closes; its sessions stay in the store.

        A `trusted` connection (stdio: the process that started us) needs no token.
        """
        connection: Connection | None = None

        async def on_request(method: str, params: dict[str, Any]) -> Any:
            assert connection is not None
            return await self._call(connection, method, params)

        def release() -> None:  # no more requests come: its tool calls fail, its events stop
            assert connection is not None
            self.connections.discard(connection)
            for session_id in tuple(connection.sessions):
                self.let_go(connection, session_id)

        peer = Peer(
            reader, writer, on_request=on_request, map_error=map_error, on_eof=release, name=name
        )
        connection = Connection(
            peer=peer, name=name, authenticated=trusted or self.token is None, trusted=trusted
        )
        self.connections.add(connection)
        try:
            await peer.run()
        finally:
            release()

    async def _call(self, connection: Connection, method: str, params: dict[str, Any]) -> Any:
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"unknown method {method!r}; parley serve implements: "
                + ", ".join(sorted(self._methods)),
            )
        if not connection.authenticated and method != "connect":
            raise RpcError(
                UNAUTHORIZED,
                f"{method} refused: this server needs its connection token; send `connect` "
                "with the token first (the SDKs take it as connection_token / "
                "COPILOT_CONNECTION_TOKEN)",
            )
        return await handler(connection, params)

    def _broadcast(self, session_id: str, event: dict[str, Any], kind: str) -> None:
        """Events to connections that asked for every session's and are not attached."""
        for connection in self.connections:
            if connection.all_events and session_id not in connection.sessions:
                connection.peer.notify("session.event", {"sessionId": session_id, "event": event})

    # --- handshake and runtime ----------------------------------------------------------------

    async def _connect(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.Connect, "connect", params)
        if self.token is not None and not connection.trusted:
            given = (args.token or "").encode()
            if not hmac.compare_digest(given, self.token.encode()):
                asyncio.get_running_loop().call_later(0.05, _close_soon, connection.peer)
                raise RpcError(
                    UNAUTHORIZED,
                    "wrong or missing connection token; pass the token the server was started "
                    "with (COPILOT_CONNECTION_TOKEN) as the SDK's connection_token",
                )
            connection.authenticated = True
        return {"ok": True, "protocolVersion": PROTOCOL_VERSION, "version": __version__}

    async def _ping(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        message = params.get("message")
        return {
            "message": f"pong: {message}" if message is not None else "pong",
            "timestamp": int(time.time() * 1000),
            "protocolVersion": PROTOCOL_VERSION,
        }

    async def _models(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        names = [self.client.default_model, *self.client.models.aliases, "echo"]
        unique = list(dict.fromkeys(names))
        return {"models": [{"id": n, "name": n, "capabilities": {}} for n in unique]}

    async def _shutdown(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        self.shutdown.set()  # the transport stops once this reply is out
        return {}

    # --- opening and closing sessions --------------------------------------------------------

    def _attach(self, connection: Connection, hosted: HostedSession, args: p.OpenOptions) -> None:
        hosted.attached[connection] = Attachment(
            streaming=args.streaming, request_permission=args.request_permission
        )
        connection.sessions.add(hosted.session_id)

    async def _create(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.CreateSession, "session.create", params)
        session_id = args.session_id
        if session_id is not None and session_id in self.hosted:
            await self.client.create_session(session_id=session_id)  # raises SessionExistsError
        hosted = HostedSession(session_id or "", self.pending, self._broadcast)
        tools = hosted.set_tools(args.tools, connection)
        system = args.system_message.content if args.system_message is not None else None
        session = await self.client.create_session(
            model=args.model,
            session_id=session_id,
            system_message=system or None,
            title=args.title,
            metadata=args.metadata or {},
            tools=tools,
            on_permission_request=hosted.check_permission,
            **_settings(args),
        )
        hosted.session_id = session.session_id
        hosted.start(session)
        self.hosted[session.session_id] = hosted
        self._attach(connection, hosted, args)
        return {"sessionId": session.session_id}

    async def _resume(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.ResumeSession, "session.resume", params)
        hosted = self.hosted.get(args.session_id)
        if hosted is None:
            fresh = HostedSession(args.session_id, self.pending, self._broadcast)
            session = await self.client.resume_session(
                args.session_id,
                tools=fresh.set_tools(args.tools, connection),
                on_permission_request=fresh.check_permission,
                **_settings(args),
            )
            hosted = self.hosted.get(args.session_id)  # another connection may have been faster
            if hosted is None:
                fresh.start(session)
                hosted = self.hosted[args.session_id] = fresh
            else:  # the hooks just given were `fresh`'s: give the session its host's back
                await self._join(connection, hosted, args, rehook=True)
        else:
            await self._join(connection, hosted, args, rehook=False)
        self._attach(connection, hosted, args)
        return {"sessionId": args.session_id}

    async def _join(
        self, connection: Connection, hosted: HostedSession, args: p.ResumeSession, *, rehook: bool
    ) -> None:
        """Resume a session already hosted: this client's tools and settings replace what
        another one gave (nothing changes when it gives none)."""
        tools = hosted.set_tools(args.tools, connection) if args.tools else None
        if tools is not None or rehook or _settings(args):
            await self.client.resume_session(
                args.session_id,
                tools=tools,
                on_permission_request=hosted.check_permission if rehook else None,
                **_settings(args),
            )

    def let_go(self, connection: Connection, session_id: str) -> None:
        """Stop `connection`'s events for the session; the last one out unhooks the server.

        The parley session stays open (a running turn finishes and is stored); the client's
        idle eviction releases it later.
        """
        connection.sessions.discard(session_id)
        hosted = self.hosted.get(session_id)
        if hosted is None:
            return
        hosted.detach(connection)
        if not hosted.attached:
            hosted.stop()
            del self.hosted[session_id]

    async def _detach(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "session.detach", params)
        self.let_go(connection, args.session_id)
        return {"success": True}

    async def _delete(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "session.delete", params)
        await self.client.delete_session(args.session_id)
        hosted = self.hosted.get(args.session_id)
        for attached in tuple(hosted.attached) if hosted is not None else ():
            self.let_go(attached, args.session_id)
        return {"success": True}

    async def attached_session(self, connection: Connection, session_id: str) -> HostedSession:
        """The session, if this connection has it open; otherwise a clear error."""
        hosted = self.hosted.get(session_id)
        if hosted is not None and connection in hosted.attached:
            return hosted
        await self.client.get_session(session_id)  # SessionNotFoundError if there is none
        raise RpcError(
            INVALID_PARAMS,
            f"session {session_id!r} is not open on this connection; "
            "session.resume it first (the SDKs' resume_session)",
            {"errorType": "SessionClosedError"},
        )

    # --- turns --------------------------------------------------------------------------------

    async def _send(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SendMessage, "session.send", params)
        hosted = await self.attached_session(connection, args.session_id)
        return {"messageId": await hosted.session.send(args.prompt)}

    async def _send_and_wait(
        self, connection: Connection, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one turn and answer with its last ``assistant.message`` event.

        The reply goes out after the turn's ``session.idle`` notification, so the SDK's
        `completionEventId` names an event it already has. ``$/cancelRequest`` (the SDK's
        timeout) aborts this turn, running or still queued, and no other; a client that
        disconnects lets it finish.
        """
        args = p.parse(p.SendMessage, "session.sendAndWait", params)
        hosted = await self.attached_session(connection, args.session_id)
        message_id, events = hosted.session._stream_turn(args.prompt)
        last: SessionEvent | None = None
        failure: SessionEvent | None = None
        aborted = False
        idle_id: str | None = None
        try:
            async for event in events:
                if event.type == "assistant.message":
                    last = event
                elif event.type == "session.error":
                    failure = event
                elif event.type == "abort":
                    aborted = True
                elif event.type == "session.idle":
                    idle_id = event.id
        except asyncio.CancelledError:
            if not connection.peer.closed:
                await hosted.session.abort(message_id=message_id)
            raise
        if failure is not None and failure.type == "session.error" and not aborted:
            raise RpcError(
                RUNTIME_ERROR,
                failure.data.message,
                {"errorType": failure.data.error_type, "completionEventId": idle_id},
            )
        response = None
        if last is not None and not aborted:
            response = copilot_event(last, originating_message_id=message_id)
        result: dict[str, Any] = {"aborted": aborted, "messageId": message_id, "response": response}
        if idle_id is not None:
            result["completionEventId"] = idle_id
        return result

    async def _abort(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.AbortTurn, "session.abort", params)
        hosted = await self.attached_session(connection, args.session_id)
        return {"aborted": await hosted.session.abort(message_id=args.message_id)}

    async def _switch_model(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SwitchModel, "session.model.switchTo", params)
        hosted = await self.attached_session(connection, args.session_id)
        await hosted.session.set_model(args.model_id)
        return {"modelId": hosted.session.model}

    # --- reading ------------------------------------------------------------------------------

    async def _get_messages(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "session.getMessages", params)
        hosted = await self.attached_session(connection, args.session_id)
        return {"events": history_events(await hosted.session.messages())}

    async def _list(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.ListSessions, "session.list", params)
        query: dict[str, Any] = {"model": args.model, "metadata": args.metadata, "tag": args.tag}
        if args.limit is not None:
            page = await self.client.list_sessions(limit=args.limit, cursor=args.cursor, **query)
            entries = [info_to_wire(info, cwd=self.cwd) for info in page]
            return {"sessions": entries, "nextCursor": page.next_cursor}
        entries, cursor = [], args.cursor
        while True:  # Copilot's session.list has no paging: every session
            page = await self.client.list_sessions(limit=500, cursor=cursor, **query)
            entries.extend(info_to_wire(info, cwd=self.cwd) for info in page)
            cursor = page.next_cursor
            if cursor is None:
                return {"sessions": entries}

    async def _get_metadata(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "session.getMetadata", params)
        try:
            info = await self.client.get_session(args.session_id)
        except SessionNotFoundError:
            return {"session": None}
        return {"session": info_to_wire(info, cwd=self.cwd)}

    async def _get_last_id(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        page = await self.client.list_sessions(limit=1)
        return {"sessionId": page[0].session_id if len(page) else None}

    async def _update_options(
        self, connection: Connection, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Copilot's per-session runtime options (co-author lines, skipped prompts...) have no
        meaning for parley; accepting them lets SDK modes such as ``mode="empty"`` work."""
        args = p.parse(p.SessionRef, "session.options.update", params)
        await self.attached_session(connection, args.session_id)
        return {"success": True}

    # --- answers from clients -----------------------------------------------------------------

    def _settle(self, request_id: str, kind: str, answer: dict[str, Any]) -> dict[str, Any]:
        pending = self.pending.get(request_id)
        if pending is None or pending.kind != kind or pending.answer.done():
            return {"success": False, "error": f"no pending {kind} request {request_id!r}"}
        pending.answer.set_result(answer)
        return {"success": True}

    async def _answer_tool(self, connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.AnswerTool, "session.tools.handlePendingToolCall", params)
        return self._settle(args.request_id, "tool", {"result": args.result, "error": args.error})

    async def _answer_permission(
        self, connection: Connection, params: dict[str, Any]
    ) -> dict[str, Any]:
        method = "session.permissions.handlePendingPermissionRequest"
        args = p.parse(p.AnswerPermission, method, params)
        return self._settle(args.request_id, "permission", {"result": args.result})


def _settings(args: p.OpenOptions) -> dict[str, Any]:
    """parley's own session settings that were given, as keyword arguments."""
    given = {
        "on_busy": args.on_busy,
        "max_tool_rounds": args.max_tool_rounds,
        "max_history_messages": args.max_history_messages,
        "max_history_tokens": args.max_history_tokens,
    }
    return {k: v for k, v in given.items() if v is not None}


def _close_soon(peer: Peer) -> None:
    asyncio.ensure_future(peer.close())  # noqa: RUF006 - the peer's own run() awaits the end
