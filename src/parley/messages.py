"""Provider-neutral messages: what a session's history is made of.

A message is a role plus a tuple of parts (text, tool call, tool result). No part is specific to
one provider, so a session can switch model or provider mid-conversation and keep a valid
history. Messages are immutable; a history only ever grows by appending new ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, cast

__all__ = [
    "Message",
    "MessageOptions",
    "Part",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "Usage",
    "message_from_dict",
    "message_from_json",
    "message_to_dict",
    "message_to_json",
    "new_id",
    "parts_from_json",
    "parts_to_json",
    "utcnow",
]

Role: TypeAlias = Literal["user", "assistant", "tool"]


_VERSION_4 = (0x4 << 76) | (0x2 << 62)  # the version and variant bits of a random UUID
_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)


def new_id() -> str:
    """A fresh random id in UUID4 text, as used for messages and events.

    Drawn from `random` (seeded by the OS, and reseeded in a forked child), not the OS's
    random source: several times faster, which a turn's two dozen events feel, and as unique,
    but guessable from enough earlier ids. Generated session ids, which an application may
    hand out, come from `uuid.uuid4()` instead.
    """
    h = "%032x" % ((random.getrandbits(128) & _KEEP) | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class TextPart:
    """Plain text."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCallPart:
    """The model asks for a tool to run; `arguments` is the decoded JSON object it sent."""

    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolResultPart:
    """The result of one tool call, answering the call with the same `call_id`."""

    call_id: str
    content: str
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


Part: TypeAlias = TextPart | ToolCallPart | ToolResultPart


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Tokens and cost of one model call, or totals over many."""

    input_tokens: int = 0
    """All prompt tokens, cached ones included."""
    output_tokens: int = 0
    cached_tokens: int = 0
    """The part of `input_tokens` the provider read from its prompt cache."""
    cost: float | None = 0.0
    """In US dollars. None where the price is unknown; 0.0 for free models (echo). In totals,
    the sum of the known prices, and None only when no price was known."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if self.cost is None or other.cost is None:
            cost = other.cost if self.cost is None else self.cost
        else:
            cost = self.cost + other.cost
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost=cost,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One entry of a session's history.

    An assistant message whose turn was aborted, failed or was cut off by a crash is kept with
    `interrupted=True` and whatever text had streamed by then; `error` says why (the provider's
    error, the abort reason, or a note that the process stopped).
    """

    id: str
    role: Role
    parts: tuple[Part, ...]
    created_at: datetime
    model: str | None = None
    usage: Usage | None = None
    interrupted: bool = False
    error: str | None = None

    @property
    def text(self) -> str:
        """The text parts joined together (tool calls and results left out)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @classmethod
    def user(cls, text: str, *, id: str | None = None) -> Message:
        if cls is not Message:  # a subclass gets its own __init__
            return cls(
                id=id or new_id(), role="user", parts=(TextPart(text=text),), created_at=utcnow()
            )
        parts = (text_part_from_fields(text),)
        return message_from_fields(id or new_id(), "user", parts, utcnow(), None, None, False, None)


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageOptions:
    """What `Session.send` takes, in the Copilot SDK's shape; a plain string works too.

    `tools` are offered for this turn only, on top of the session's.
    """

    prompt: str
    tools: Sequence[Any] = ()


# Stores build thousands of messages at once when a long session is resumed. These builders
# make the same objects as the constructors, setting each slot directly: without __init__'s
# keyword handling and the frozen __setattr__ detour they take well under half the time.
def _slot_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    declared = tuple(f.name for f in fields(cls))
    if declared != names:  # a field was added or moved: the builders below must follow
        raise RuntimeError(f"{cls.__name__} fields are {declared}, the builders know {names}")
    return tuple(getattr(cls, name).__set__ for name in names)


_new = object.__new__
_M_ID, _M_ROLE, _M_PARTS, _M_AT, _M_MODEL, _M_USAGE, _M_CUT, _M_ERROR = _slot_setters(
    Message, "id", "role", "parts", "created_at", "model", "usage", "interrupted", "error"
)
_T_TEXT, _T_TYPE = _slot_setters(TextPart, "text", "type")
_U_IN, _U_OUT, _U_CACHED, _U_COST = _slot_setters(
    Usage, "input_tokens", "output_tokens", "cached_tokens", "cost"
)


def message_from_fields(
    id: str,
    role: Role,
    parts: tuple[Part, ...],
    created_at: datetime,
    model: str | None,
    usage: Usage | None,
    interrupted: bool,
    error: str | None,
) -> Message:
    """`Message(...)` with every field given, in order; for stores decoding many rows."""
    message: Message = _new(Message)
    _M_ID(message, id)
    _M_ROLE(message, role)
    _M_PARTS(message, parts)
    _M_AT(message, created_at)
    _M_MODEL(message, model)
    _M_USAGE(message, usage)
    _M_CUT(message, interrupted)
    _M_ERROR(message, error)
    return message


def text_part_from_fields(text: str) -> TextPart:
    """`TextPart(text=text)`, the same way."""
    part: TextPart = _new(TextPart)
    _T_TEXT(part, text)
    _T_TYPE(part, "text")
    return part


def usage_from_fields(
    input_tokens: int, output_tokens: int, cached_tokens: int, cost: float | None
) -> Usage:
    """`Usage(...)` with every field given, the same way."""
    usage: Usage = _new(Usage)
    _U_IN(usage, input_tokens)
    _U_OUT(usage, output_tokens)
    _U_CACHED(usage, cached_tokens)
    _U_COST(usage, cost)
    return usage


def _part_to_dict(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_call",
            "call_id": part.call_id,
            "name": part.name,
            "arguments": part.arguments,
        }
    return {
        "type": "tool_result",
        "call_id": part.call_id,
        "content": part.content,
        "is_error": part.is_error,
    }


def _part_from_dict(data: dict[str, Any]) -> Part:
    kind = data.get("type")
    if kind == "text":
        return TextPart(text=data["text"])
    if kind == "tool_call":
        return ToolCallPart(call_id=data["call_id"], name=data["name"], arguments=data["arguments"])
    if kind == "tool_result":
        return ToolResultPart(
            call_id=data["call_id"], content=data["content"], is_error=bool(data["is_error"])
        )
    raise ValueError(f"unknown message part type {kind!r}")


def parts_to_json(parts: Sequence[Part]) -> str:
    """The compact JSON list of a message's parts."""
    return json.dumps([_part_to_dict(p) for p in parts], ensure_ascii=False, separators=(",", ":"))


def parts_from_json(text: str) -> tuple[Part, ...]:
    """The inverse of `parts_to_json`."""
    return tuple(_part_from_dict(p) for p in json.loads(text))


def _body(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "parts": [_part_to_dict(p) for p in message.parts],
        "created_at": message.created_at.isoformat(),
    }
    if message.model is not None:
        body["model"] = message.model
    if message.usage is not None:
        u = message.usage
        body["usage"] = [u.input_tokens, u.output_tokens, u.cost, u.cached_tokens]
    if message.interrupted:
        body["interrupted"] = True
    if message.error is not None:
        body["error"] = message.error
    return body


def _from_body(message_id: str, role: str, data: dict[str, Any]) -> Message:
    if role not in ("user", "assistant", "tool"):
        raise ValueError(f"unknown message role {role!r}")
    usage = data.get("usage")
    return Message(
        id=message_id,
        role=cast(Role, role),
        parts=tuple(_part_from_dict(p) for p in data["parts"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        model=data.get("model"),
        usage=Usage(
            input_tokens=usage[0],
            output_tokens=usage[1],
            cost=usage[2],
            cached_tokens=usage[3] if len(usage) > 3 else 0,
        )
        if usage
        else None,
        interrupted=bool(data.get("interrupted", False)),
        error=data.get("error"),
    )


def message_to_json(message: Message) -> str:
    """The compact JSON body a store keeps for a message (id and role are kept beside it)."""
    return json.dumps(_body(message), ensure_ascii=False, separators=(",", ":"))


def message_from_json(message_id: str, role: str, body: str) -> Message:
    """The inverse of `message_to_json`."""
    return _from_body(message_id, role, json.loads(body))


def message_to_dict(message: Message) -> dict[str, Any]:
    """A message as plain JSON data, id and role included: how exports and parley's remote
    protocol carry it."""
    return {"id": message.id, "role": message.role, **_body(message)}


def message_from_dict(data: dict[str, Any]) -> Message:
    """The inverse of `message_to_dict`; KeyError, TypeError or ValueError if it is damaged."""
    return _from_body(data["id"], data["role"], data)
