"""The model adapter protocol: one small seam between the runtime and a wire API.

An adapter takes a provider-neutral `ModelRequest` and yields provider-neutral stream events.
Vendor SDK types and exceptions never cross this boundary: an adapter translates failures into
parley's `ProviderError` tree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from parley.messages import Message

__all__ = [
    "FinishReason",
    "ModelAdapter",
    "ModelRequest",
    "RequestCache",
    "StreamEvent",
    "StreamFinish",
    "StreamTextDelta",
    "StreamToolCall",
    "StreamUsage",
    "ToolSpec",
]

FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: a name, what it does, and the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


class RequestCache:
    """What an adapter keeps of one session's requests for the next: its encoded history.

    The runtime gives each live session one, in every `ModelRequest`; it goes when the session
    is evicted or closed. `key` says whose and for what `value` is (an adapter and a model, say):
    an adapter finding another key starts afresh.
    """

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: object = None
        self.value: Any = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRequest:
    """Everything a model call needs, with no provider in it."""

    model: str
    """The model name as the provider knows it (the part after ``provider:``)."""
    messages: Sequence[Message]
    system: str | None = None
    session_id: str = ""
    tools: Sequence[ToolSpec] = ()
    options: dict[str, Any] = field(default_factory=dict)
    cache: RequestCache | None = None
    """The session's cache, for adapters that keep the encoded history (None: keep nothing)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamTextDelta:
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamUsage:
    input_tokens: int
    """All prompt tokens, cached ones included."""
    output_tokens: int
    cached_tokens: int = 0
    cost: float | None = None
    """In US dollars; None when the price is not known (never a made-up 0)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamFinish:
    reason: FinishReason = "stop"


StreamEvent: TypeAlias = StreamTextDelta | StreamToolCall | StreamUsage | StreamFinish


@runtime_checkable
class ModelAdapter(Protocol):
    """A wire API. `stream` yields text deltas, tool calls, usage, then one finish event.

    An adapter may also have ``stream_batches(request)``: the same events in lists, one list
    for what arrived together (a network read). The runtime then awaits once per list rather
    than once per event; `HTTPAdapter` has it.
    """

    @property
    def provider(self) -> str:
        """The provider's name, as written before the colon in model strings."""
        ...

    @property
    def offline(self) -> bool:
        """True for models that run locally with no network (labelled as such in output)."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None:
        """Release connections; called once when the client stops."""
        ...
