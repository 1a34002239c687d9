"""The params of the Copilot runtime methods parley serves, checked once with pydantic.

Keys are camelCase on the wire. Unknown keys are ignored, since the SDKs send many options a
runtime may not use (``toolFilterPrecedence``, ``envValueMode``...); a known key of the wrong
type is an invalid-params error naming it.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import pydantic
from pydantic.alias_generators import to_camel

from parley.server.rpc import INVALID_PARAMS, RpcError

__all__ = [
    "AbortTurn",
    "AnswerPermission",
    "AnswerTool",
    "Connect",
    "CreateSession",
    "ImportSession",
    "ListSessions",
    "OpenOptions",
    "ResumeSession",
    "SendAndWait",
    "SendMessage",
    "SessionRef",
    "Subscribe",
    "SwitchModel",
    "ToolSpec",
    "UpdateSession",
    "parse",
]


class _Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Connect(_Params):
    token: str | None = None


class ToolSpec(_Params):
    name: str
    description: str = ""
    parameters: dict[str, Any] = pydantic.Field(default_factory=lambda: {"type": "object"})
    skip_permission: bool = False


class SystemMessage(_Params):
    content: str | None = None
    mode: str | None = None


class OpenOptions(_Params):
    """What create and resume share: this connection's tools and how it takes events, and
    parley's own session settings (the Copilot SDKs do not send these)."""

    tools: list[ToolSpec] = pydantic.Field(default_factory=list)
    streaming: bool = False
    request_permission: bool = False
    on_busy: Literal["enqueue", "reject"] | None = None
    max_tool_rounds: int | None = None
    max_history_messages: int | None = None
    max_history_tokens: int | None = None


class CreateSession(OpenOptions):
    session_id: str | None = None
    model: str | None = None
    system_message: SystemMessage | None = None
    title: str | None = None
    metadata: dict[str, str] | None = None


class ResumeSession(OpenOptions):
    session_id: str


class SessionRef(_Params):
    session_id: str


class AbortTurn(SessionRef):
    message_id: str | None = None  # parley's own: that turn only, running or queued


class SendMessage(_Params):
    session_id: str
    prompt: str


class SendAndWait(SendMessage):
    timeout: float | None = 60.0


class UpdateSession(_Params):
    session_id: str
    title: str | None = None
    metadata: dict[str, Any] | None = None  # checked by update_session, which says what is wrong


class ImportSession(_Params):
    data: dict[str, Any]


class SwitchModel(_Params):
    session_id: str
    model_id: str


class ListSessions(_Params):
    """Copilot's `filter` is accepted and ignored (parley sessions have no working directory);
    the rest is parley's own paging and filtering."""

    limit: int | None = None
    cursor: str | None = None
    model: str | None = None
    metadata: dict[str, str] | None = None
    tag: str | None = None


class AnswerTool(_Params):
    session_id: str | None = None
    request_id: str
    result: dict[str, Any] | str | None = None
    error: str | None = None


class AnswerPermission(_Params):
    session_id: str | None = None
    request_id: str
    result: dict[str, Any]


class Subscribe(_Params):
    all: bool = True


P = TypeVar("P", bound=_Params)


def parse(model: type[P], method: str, params: dict[str, Any]) -> P:
    """`params` as `model`, or RpcError -32602 saying which key is wrong and how."""
    try:
        return model.model_validate(params)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'params'}: {error['msg']}"
            for error in exc.errors()
        )
        raise RpcError(
            INVALID_PARAMS,
            f"{method}: invalid params: {problems}",
            {"errorType": "ConfigError"},  # what parley's remote client raises for it
        ) from None
