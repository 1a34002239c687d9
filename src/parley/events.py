"""Session events: the Copilot SDK's vocabulary as typed, frozen dataclasses.

Every event has `id` (UUID text), `session_id`, `timestamp` (UTC), `parent_id` (the id of the
session's previous event, so events form a chain), `type` (a literal tag, one class per type),
`ephemeral` and `data` (a small frozen dataclass of its own). Ephemeral events (streamed text
deltas, idle) are delivered live but never stored; the others mirror what the session's history
records.

`event_to_dict` and `event_from_dict` convert to and from the Copilot wire shape (camelCase
keys, ISO timestamps); `event_from_dict` validates once, at that edge.
"""

from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias, Union, get_args, get_origin, get_type_hints

from parley.messages import new_id, utcnow

__all__ = [
    "AbortData",
    "AbortEvent",
    "AssistantMessageData",
    "AssistantMessageDeltaEvent",
    "AssistantMessageEvent",
    "AssistantTurnEndEvent",
    "AssistantTurnStartEvent",
    "AssistantUsageEvent",
    "EventType",
    "IdleData",
    "MessageDeltaData",
    "SessionErrorData",
    "SessionErrorEvent",
    "SessionEvent",
    "SessionIdleEvent",
    "SessionResumeData",
    "SessionResumeEvent",
    "SessionStartData",
    "SessionStartEvent",
    "ToolExecutionCompleteData",
    "ToolExecutionCompleteEvent",
    "ToolExecutionStartData",
    "ToolExecutionStartEvent",
    "TurnData",
    "UsageData",
    "UserMessageData",
    "UserMessageEvent",
    "event_from_dict",
    "event_to_dict",
]

EventType: TypeAlias = Literal[
    "session.start",
    "session.resume",
    "user.message",
    "assistant.turn_start",
    "assistant.message_delta",
    "assistant.message",
    "tool.execution_start",
    "tool.execution_complete",
    "assistant.usage",
    "assistant.turn_end",
    "session.idle",
    "session.error",
    "abort",
]


# --- payloads -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionStartData:
    model: str
    title: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionResumeData:
    model: str
    message_count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class UserMessageData:
    message_id: str
    content: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnData:
    turn_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageDeltaData:
    message_id: str
    delta_content: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantMessageData:
    message_id: str
    content: str
    model: str
    interrupted: bool = False
    finish_reason: str | None = None
    """Why the model stopped: "stop", "length" (its output limit), "tool_calls",
    "content_filter"; None when the turn did not finish (interrupted)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolExecutionStartData:
    tool_call_id: str
    tool_name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolExecutionCompleteData:
    tool_call_id: str
    tool_name: str
    success: bool
    result: str | None = None
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageData:
    model: str
    input_tokens: int
    output_tokens: int
    cost: float | None
    duration_ms: float
    cached_tokens: int = 0
    time_to_first_token_ms: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class IdleData:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionErrorData:
    error_type: str
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AbortData:
    reason: str


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _BaseEvent:
    session_id: str
    id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utcnow)
    parent_id: str | None = None
    ephemeral: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionStartEvent(_BaseEvent):
    type: Literal["session.start"] = "session.start"
    data: SessionStartData


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionResumeEvent(_BaseEvent):
    type: Literal["session.resume"] = "session.resume"
    data: SessionResumeData


@dataclass(frozen=True, kw_only=True, slots=True)
class UserMessageEvent(_BaseEvent):
    type: Literal["user.message"] = "user.message"
    data: UserMessageData


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantTurnStartEvent(_BaseEvent):
    type: Literal["assistant.turn_start"] = "assistant.turn_start"
    data: TurnData


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantMessageDeltaEvent(_BaseEvent):
    type: Literal["assistant.message_delta"] = "assistant.message_delta"
    ephemeral: bool = True
    data: MessageDeltaData


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantMessageEvent(_BaseEvent):
    type: Literal["assistant.message"] = "assistant.message"
    data: AssistantMessageData


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolExecutionStartEvent(_BaseEvent):
    type: Literal["tool.execution_start"] = "tool.execution_start"
    data: ToolExecutionStartData


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolExecutionCompleteEvent(_BaseEvent):
    type: Literal["tool.execution_complete"] = "tool.execution_complete"
    data: ToolExecutionCompleteData


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantUsageEvent(_BaseEvent):
    type: Literal["assistant.usage"] = "assistant.usage"
    data: UsageData


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantTurnEndEvent(_BaseEvent):
    type: Literal["assistant.turn_end"] = "assistant.turn_end"
    data: TurnData


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionIdleEvent(_BaseEvent):
    type: Literal["session.idle"] = "session.idle"
    ephemeral: bool = True
    data: IdleData = field(default_factory=IdleData)


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionErrorEvent(_BaseEvent):
    type: Literal["session.error"] = "session.error"
    data: SessionErrorData


@dataclass(frozen=True, kw_only=True, slots=True)
class AbortEvent(_BaseEvent):
    type: Literal["abort"] = "abort"
    data: AbortData


SessionEvent: TypeAlias = (
    SessionStartEvent
    | SessionResumeEvent
    | UserMessageEvent
    | AssistantTurnStartEvent
    | AssistantMessageDeltaEvent
    | AssistantMessageEvent
    | ToolExecutionStartEvent
    | ToolExecutionCompleteEvent
    | AssistantUsageEvent
    | AssistantTurnEndEvent
    | SessionIdleEvent
    | SessionErrorEvent
    | AbortEvent
)

_EVENT_CLASSES: dict[str, type[Any]] = {
    cls.__dataclass_fields__["type"].default: cls for cls in get_args(SessionEvent)
}

# --- wire form ------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def event_to_dict(event: SessionEvent) -> dict[str, Any]:
    """The event in the Copilot wire shape: camelCase keys, ISO-8601 timestamps."""
    encoded: dict[str, Any] = _encode(event)
    return encoded


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if hint is datetime:
        return "an ISO-8601 timestamp"
    return getattr(hint, "__name__", str(hint))


def _check(value: Any, hint: Any, where: str) -> Any:
    """Validate `value` against a field type and convert it (datetimes, nested payloads)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _check(value, option, where)
            except ValueError:
                continue
        names = " or ".join(_type_name(option) for option in get_args(hint))
        raise ValueError(f"{where}: expected {names}, got {value!r}")
    if origin is Literal:
        if value not in get_args(hint):
            raise ValueError(f"{where}: expected one of {get_args(hint)}, got {value!r}")
        return value
    if hint is type(None):
        if value is not None:
            raise ValueError(f"{where}: expected null, got {value!r}")
        return None
    if hint is datetime:
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValueError(
                f"{where}: expected an ISO-8601 timestamp with a timezone, got {value!r}"
            )
        return moment
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_wire(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int in Python, but not on the wire: True is no message count.
    if isinstance(hint, type) and (
        not isinstance(value, hint) or (isinstance(value, bool) and hint is not bool)
    ):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


# Defaults that make sense when an event is made here, but that a received event must carry.
_REQUIRED_ON_WIRE = frozenset({"id", "timestamp"})


def _from_wire(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {raw!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        name = _snake(key)
        if name in known:
            kwargs[name] = _check(value, hints[name], f"{where}.{key}")
    missing = [
        _camel(n)
        for n, f in known.items()
        if n not in kwargs
        and (
            n in _REQUIRED_ON_WIRE
            or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        )
    ]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return cls(**kwargs)


def event_from_dict(raw: dict[str, Any]) -> SessionEvent:
    """Parse and validate an event in the wire shape; raise ValueError saying what is wrong."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    cls = _EVENT_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; known: {', '.join(sorted(_EVENT_CLASSES))}")
    event: SessionEvent = _from_wire(cls, raw, kind or "event")
    return event
