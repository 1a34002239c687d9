"""The offline `echo` provider: real code, no network.

It answers from the session's own history, deterministically: it quotes the new message, the
first thing said in the conversation and how many user messages it holds. Two sessions that
are sent the same follow-up therefore answer differently, which makes context isolation visible
in demos and checkable in tests. Every reply starts with ``[offline echo · <model>]``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from parley.messages import Message
from parley.models.base import (
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamUsage,
)

__all__ = ["EchoModel", "count_prompt_tokens", "echo_reply", "split_tokens"]

_TOKEN = re.compile(r"\S+\s*")
_QUOTE_LIMIT = 80


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 1] + "…"
    return f'"{text}"'


def echo_reply(model: str, messages: list[Message] | tuple[Message, ...]) -> str:
    """The reply `echo` gives to a history whose last message is the user's new one."""
    said = [m.text for m in messages if m.role == "user"]
    if not said:
        return f"[offline echo · {model}] Nothing has been said in this conversation yet."
    latest = said[-1]
    if len(said) == 1:
        context = "This is the first message of our conversation."
    else:
        context = (
            f"Earlier in this conversation you said {_quote(said[0])}; "
            f"this is your message #{len(said)} here."
        )
    return f"[offline echo · {model}] You said {_quote(latest)}. {context}"


def split_tokens(text: str) -> list[str]:
    """Offline models' tokens: each word with the whitespace after it, so they join back."""
    return _TOKEN.findall(text)


def count_prompt_tokens(request: ModelRequest) -> int:
    """How many offline tokens a request's messages and system message hold."""
    return sum(len(split_tokens(m.text)) for m in request.messages) + len(
        split_tokens(request.system or "")
    )


class EchoModel:
    """Streams `echo_reply` word by word; `token_delay` seconds between words (0 by default).

    Any model name is accepted (``echo``, ``echo:alpha``...); it is quoted in the reply, so two
    names make two visibly different models.
    """

    def __init__(self, *, token_delay: float = 0.0, provider: str = "echo") -> None:
        if token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        self.token_delay = token_delay
        self._provider = provider

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def offline(self) -> bool:
        return True

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        label = (
            request.model
            if request.model == self._provider
            else f"{self._provider}:{request.model}"
        )
        reply = echo_reply(label, tuple(request.messages))
        tokens = split_tokens(reply)
        for token in tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            else:
                await asyncio.sleep(0)  # yield, as a network read would, so turns interleave fairly
            yield StreamTextDelta(text=token)
        yield StreamUsage(
            input_tokens=count_prompt_tokens(request), output_tokens=len(tokens), cost=0.0
        )
        yield StreamFinish(reason="stop")

    async def aclose(self) -> None:
        return None
