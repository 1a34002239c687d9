"""parley's own methods beyond the Copilot protocol, for parley's remote `Client(url=...)`.

The Copilot methods carry what the SDKs need; parley's client needs the rest of its API to
behave exactly as it does embedded: the stored reply of a turn (not only its event), the
turn's own exception, the history as stored, closing a session (dropping queued turns),
updating, exporting and importing. Each method here maps onto one public `Client` or `Session`
call, and its errors travel as parley's own (`map_error`).

- ``parley.subscribe {all}``: this connection gets every session's events.
- ``parley.session.sendAndWait {sessionId, prompt, timeout}``: `Session.send_and_wait`;
  answers ``{"messageId", "reply"}`` with the stored reply (`message_to_dict`).
- ``parley.session.messages {sessionId}``: `Session.messages`, as ``{"messages": [...]}``;
  also for a session this connection closed (read from the store).
- ``parley.session.close {sessionId}``: `Session.close`; every connection lets it go.
- ``parley.session.update {sessionId, title, metadata}``: `Client.update_session`.
- ``parley.session.export {sessionId}`` / ``parley.session.import {data}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.messages import message_to_dict
from parley.server import params as p
from parley.server.connection import Connection
from parley.server.wire import info_to_wire

if TYPE_CHECKING:
    from parley.server.copilot import CopilotServer, Method

__all__ = ["parley_methods"]


def parley_methods(server: CopilotServer) -> dict[str, Method]:
    """The ``parley.*`` methods of `server`, for its method table."""

    async def subscribe(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        connection.all_events = p.parse(p.Subscribe, "parley.subscribe", params).all
        return {"all": connection.all_events}

    async def send_and_wait(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SendAndWait, "parley.session.sendAndWait", params)
        hosted = await server.attached_session(connection, args.session_id)
        reply = await hosted.session.send_and_wait(args.prompt, timeout=args.timeout)
        return {"reply": message_to_dict(reply)}

    async def messages(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "parley.session.messages", params)
        hosted = server.hosted.get(args.session_id)
        if hosted is not None and connection in hosted.attached:
            history = await hosted.session.messages()
        else:  # closed (or never opened) here: the stored history, as a closed Session reads it
            await server.client.get_session(args.session_id)  # SessionNotFoundError
            history = await server.client.store.read_messages(args.session_id)
        return {"messages": [message_to_dict(m) for m in history]}

    async def close(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "parley.session.close", params)
        session_id = args.session_id
        hosted = server.hosted.get(session_id)
        if hosted is None or connection not in hosted.attached:
            return {"closed": False}
        del server.hosted[session_id]  # a resume from now on opens the session afresh
        try:
            await hosted.session.close()  # its abort and idle still go to the attached
        finally:
            hosted.stop()
            for attached in tuple(hosted.attached):
                hosted.detach(attached)
                fresh = server.hosted.get(session_id)
                if fresh is None or attached not in fresh.attached:
                    attached.sessions.discard(session_id)
        return {"closed": True}

    async def update(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.UpdateSession, "parley.session.update", params)
        info = await server.client.update_session(
            args.session_id, title=args.title, metadata=args.metadata
        )
        hosted = server.hosted.get(args.session_id)
        if hosted is not None:
            hosted.note_title()
        return {"session": info_to_wire(info, cwd=server.cwd)}

    async def export(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.SessionRef, "parley.session.export", params)
        return {"data": await server.client.export_session(args.session_id)}

    async def import_(connection: Connection, params: dict[str, Any]) -> dict[str, Any]:
        args = p.parse(p.ImportSession, "parley.session.import", params)
        info = await server.client.import_session(args.data)
        return {"session": info_to_wire(info, cwd=server.cwd)}

    return {
        "parley.subscribe": subscribe,
        "parley.session.sendAndWait": send_and_wait,
        "parley.session.messages": messages,
        "parley.session.close": close,
        "parley.session.update": update,
        "parley.session.export": export,
        "parley.session.import": import_,
    }
