"""What `FakeLLMServer` can be scripted to answer: replies (`FakeReply`) and failures (`Fault`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from parley.errors import ConfigError

__all__ = ["FakeReply", "FakeToolCall", "Fault", "FaultKind", "ScriptItem", "split_words"]

# Each provider's word for the same finish; a FakeReply may use either vocabulary.
OPENAI_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
}
ANTHROPIC_FINISH = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "tool_use": "tool_use",
}

_WORD = re.compile(r"\s*\S+\s*")


def split_words(text: str) -> list[str]:
    """The fake's tokens: each word with the whitespace after it, so they join back to `text`."""
    words = _WORD.findall(text)
    if not words and text:
        return [text]  # whitespace only: one token, so nothing is lost
    return words


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes: `arguments` is sent as a JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeReply:
    """One scripted answer.

    `text` streams word by word, then each tool call's arguments as JSON in a few pieces.
    `input_tokens` defaults to a word count of the request's text and counts cached tokens too
    (OpenAI's `prompt_tokens`); on the Anthropic wire it is split into `input_tokens` (the
    uncached part) and `cache_read_input_tokens` (`cached_tokens`), as that API reports them.
    `output_tokens` defaults to the number of streamed pieces. `finish_reason` None means
    "stop"/"end_turn", or "tool_calls"/"tool_use" when there are tool calls; "length" or
    "max_tokens" can be given (either provider's word works on both wires).
    """

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        if self.finish_reason is not None and self.finish_reason not in OPENAI_FINISH:
            raise ConfigError(
                f"FakeReply(finish_reason={self.finish_reason!r}) is not one of "
                f"{sorted(OPENAI_FINISH)}; leave it None for the natural one."
            )
        if not isinstance(self.tool_calls, tuple):
            raise ConfigError("FakeReply(tool_calls=...) must be a tuple of FakeToolCall")
        for count in (self.input_tokens, self.output_tokens, self.cached_tokens):
            if count is not None and count < 0:
                raise ConfigError("FakeReply token counts must be >= 0")

    def finish(self, api: Literal["openai", "anthropic"]) -> str:
        """The finish reason in `api`'s vocabulary."""
        reason = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        return OPENAI_FINISH[reason] if api == "openai" else ANTHROPIC_FINISH[reason]


FaultKind: TypeAlias = Literal[
    "rate_limit",
    "server_error",
    "unauthorized",
    "hang",
    "drop_mid_stream",
    "stall_mid_stream",
    "malformed_chunk",
]

_SERVER_ERRORS = (500, 502, 503, 529)


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One request's failure; build it with a classmethod: `Fault.rate_limit()`, `Fault.hang()`."""

    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    after_tokens: int = 0

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0) -> Fault:
        """429 with a `Retry-After` header (seconds; none if None) and the provider's error JSON."""
        if retry_after is not None and retry_after < 0:
            raise ConfigError("Fault.rate_limit(retry_after=...) must be >= 0 or None")
        return cls(kind="rate_limit", status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """500, 502, 503 or 529 (Anthropic's "overloaded") with the provider's error JSON."""
        if status not in _SERVER_ERRORS:
            raise ConfigError(
                f"Fault.server_error(status={status}) must be one of {_SERVER_ERRORS}"
            )
        return cls(kind="server_error", status=status)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 with the provider's authentication error JSON."""
        return cls(kind="unauthorized", status=401)

    @classmethod
    def hang(cls) -> Fault:
        """Accept the request and never answer, until the client gives up or the server stops."""
        return cls(kind="hang")

    @classmethod
    def drop_mid_stream(cls, after_tokens: int = 2) -> Fault:
        """Streaming: send `after_tokens` deltas, then close the connection mid-body.

        Not streaming: close the connection without answering.
        """
        if after_tokens < 0:
            raise ConfigError("Fault.drop_mid_stream(after_tokens=...) must be >= 0")
        return cls(kind="drop_mid_stream", after_tokens=after_tokens)

    @classmethod
    def stall_mid_stream(cls, after_tokens: int = 2) -> Fault:
        """Streaming: send `after_tokens` deltas, then nothing more, the connection left open,
        until the client gives up or the server stops. Not streaming: the same as `hang`."""
        if after_tokens < 0:
            raise ConfigError("Fault.stall_mid_stream(after_tokens=...) must be >= 0")
        return cls(kind="stall_mid_stream", after_tokens=after_tokens)

    @classmethod
    def malformed_chunk(cls, after_tokens: int = 1) -> Fault:
        """Streaming: send `after_tokens` deltas, then an SSE data line that is not JSON, then end.

        Not streaming: answer 200 with a body that is not valid JSON.
        """
        if after_tokens < 0:
            raise ConfigError("Fault.malformed_chunk(after_tokens=...) must be >= 0")
        return cls(kind="malformed_chunk", after_tokens=after_tokens)


ScriptItem: TypeAlias = FakeReply | Fault
