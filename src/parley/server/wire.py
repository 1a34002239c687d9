"""parley's events, messages and session metadata in the shapes the Copilot SDKs parse.

parley's events already use the Copilot vocabulary and camelCase wire form (`event_to_dict`);
this module fills in what the Copilot shapes require beyond it (``session.start``'s producer
and version, ``assistant.message``'s ``originatingMessageId``, a tool result as an object, a
usage duration in ms), and builds the events parley has no class for (tool and permission
requests to the client).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from parley import __version__
from parley.events import SessionEvent, event_from_dict, event_to_dict
from parley.info import SessionInfo
from parley.messages import (
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    new_id,
    utcnow,
)

__all__ = [
    "PRODUCER",
    "copilot_event",
    "event_from_copilot",
    "history_events",
    "info_from_wire",
    "info_to_wire",
    "server_event",
]

PRODUCER = "parley"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _uuid(text: str, salt: str = "") -> str:
    """`text` if it is a UUID already (and no salt), else a stable UUID made from it."""
    if not salt:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"parley:{text}:{salt}"))


def copilot_event(event: SessionEvent, *, originating_message_id: str | None) -> dict[str, Any]:
    """One parley event as a Copilot ``session.event``'s `event`."""
    wire = event_to_dict(event)
    del wire["sessionId"]  # the notification's params carry it
    data: dict[str, Any] = wire["data"]
    kind = event.type
    if kind == "session.start":
        data.update(
            sessionId=event.session_id,
            version=1,
            producer=PRODUCER,
            copilotVersion=__version__,
            startTime=wire["timestamp"],
            selectedModel=data["model"],
        )
    elif kind == "session.resume":
        data.update(
            eventCount=data["messageCount"],
            resumeTime=wire["timestamp"],
            selectedModel=data["model"],
        )
    elif kind == "assistant.message":
        if originating_message_id is not None:
            data["originatingMessageId"] = originating_message_id
    elif kind == "assistant.usage":
        data["duration"] = data["durationMs"]
        data["cacheReadTokens"] = data["cachedTokens"]
        if data.get("timeToFirstTokenMs") is None:
            data.pop("timeToFirstTokenMs", None)
    elif kind == "tool.execution_complete":
        result, error = data.pop("result"), data.pop("error")
        if result is not None:
            data["result"] = {"content": result}
        if error is not None:
            data["error"] = {"message": error}
    elif kind == "abort":
        data["message"] = data["reason"]
        data["reason"] = "remote_command"  # Copilot's reasons are a closed set; ours is text
    return wire


def server_event(
    kind: str, data: dict[str, Any], *, parent_id: str | None, ephemeral: bool = False
) -> dict[str, Any]:
    """An event the server makes itself (a tool or permission request to the client)."""
    event: dict[str, Any] = {
        "id": new_id(),
        "timestamp": _iso(utcnow()),
        "parentId": parent_id,
        "type": kind,
        "data": data,
    }
    if ephemeral:
        event["ephemeral"] = True
    return event


def _event(
    event_id: str, moment: datetime, parent: str | None, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "timestamp": _iso(moment),
        "parentId": parent,
        "type": kind,
        "data": data,
    }


def history_events(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """A stored history as the durable events that made it, for ``session.getMessages``.

    Ids are stable (a message's own id, or a UUID derived from it), so asking twice gives the
    same events; ``parentId`` chains them in order.
    """
    events: list[dict[str, Any]] = []
    parent: str | None = None
    user_message: str | None = None

    def add(event_id: str, moment: datetime, kind: str, data: dict[str, Any]) -> None:
        nonlocal parent
        events.append(_event(event_id, moment, parent, kind, data))
        parent = event_id

    for message in messages:
        moment = message.created_at
        if message.role == "user":
            user_message = message.id
            add(_uuid(message.id), moment, "user.message", {
                "messageId": message.id, "content": message.text,
            })  # fmt: skip
        elif message.role == "assistant":
            calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
            data: dict[str, Any] = {
                "messageId": message.id,
                "content": "".join(p.text for p in message.parts if isinstance(p, TextPart)),
                "model": message.model or "",
                "interrupted": message.interrupted,
            }
            if user_message is not None:
                data["originatingMessageId"] = user_message
            if calls:
                data["toolRequests"] = [
                    {"toolCallId": c.call_id, "name": c.name, "arguments": c.arguments}
                    for c in calls
                ]
            if message.usage is not None:
                data["outputTokens"] = message.usage.output_tokens
                data["usage"] = _usage_to_wire(message.usage)
            if message.error is not None:
                data["error"] = message.error
            add(_uuid(message.id), moment, "assistant.message", data)
        else:
            for part in message.parts:
                if not isinstance(part, ToolResultPart):
                    continue
                outcome: dict[str, Any] = (
                    {"error": {"message": part.content}}
                    if part.is_error
                    else {"result": {"content": part.content}}
                )
                add(_uuid(message.id, part.call_id), moment, "tool.execution_complete", {
                    "toolCallId": part.call_id, "success": not part.is_error, **outcome,
                    "messageId": message.id,
                })  # fmt: skip
    return events


def info_to_wire(info: SessionInfo, *, cwd: str) -> dict[str, Any]:
    """A ``session.list`` entry: the Copilot fields, and parley's own under ``parley``."""
    return {
        "sessionId": info.session_id,
        "startTime": _iso(info.created_at),
        "modifiedTime": _iso(info.updated_at),
        "isRemote": False,
        "summary": info.title or "",
        "context": {"cwd": cwd},
        "parley": {
            "model": info.model,
            "title": info.title,
            "messageCount": info.message_count,
            "usage": _usage_to_wire(info.usage),
            "metadata": dict(info.metadata),
            "systemMessage": info.system_message,
            "onBusy": info.on_busy,
            "busy": info.busy,
        },
    }


def info_from_wire(entry: dict[str, Any]) -> SessionInfo:
    """The inverse of `info_to_wire`, for parley's remote client."""
    own = entry["parley"]
    usage = own["usage"]
    return SessionInfo(
        session_id=entry["sessionId"],
        model=own["model"],
        title=own["title"],
        created_at=datetime.fromisoformat(entry["startTime"]),
        updated_at=datetime.fromisoformat(entry["modifiedTime"]),
        message_count=own["messageCount"],
        usage=_usage_from_wire(usage),
        metadata=own["metadata"],
        system_message=own["systemMessage"],
        on_busy=own["onBusy"],
        busy=own["busy"],
    )


def _usage_to_wire(usage: Usage) -> dict[str, Any]:
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "cachedTokens": usage.cached_tokens,
        "cost": usage.cost,
    }


def _usage_from_wire(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=raw["inputTokens"],
        output_tokens=raw["outputTokens"],
        cached_tokens=raw["cachedTokens"],
        cost=raw["cost"],
    )


def event_from_copilot(session_id: str, wire: dict[str, Any]) -> SessionEvent | None:
    """The inverse of `copilot_event`, for parley's remote client; None for the events that
    are not parley's (tool and permission requests) or that do not parse."""
    data = dict(wire.get("data") or {})
    kind = wire.get("type")
    if kind == "tool.execution_complete":
        result, error = data.get("result"), data.get("error")
        data["result"] = result.get("content") if isinstance(result, dict) else None
        data["error"] = error.get("message") if isinstance(error, dict) else None
        data["durationMs"] = data.get("durationMs", 0.0)
    elif kind == "abort":
        data["reason"] = data.get("message", data.get("reason", ""))
    try:
        return event_from_dict({**wire, "sessionId": session_id, "data": data})
    except ValueError:
        return None
