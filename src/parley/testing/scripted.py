"""`ScriptedModel`: a model adapter that plays replies you script, for your own tests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeAlias

from parley.models.base import (
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
)
from parley.models.echo import count_prompt_tokens, split_tokens

__all__ = ["Reply", "ScriptItem", "ScriptedModel", "UnexpectedModelCall"]


class UnexpectedModelCall(AssertionError):
    """The runtime called the model more often than the script says."""


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted model call.

    `text` streams word by word, `token_delay` seconds apart; then `error` is raised if given
    (after the text, so a partial reply can be scripted); `hang=True` never finishes, as a
    provider that stops answering.
    """

    text: str = ""
    token_delay: float = 0.0
    error: BaseException | None = None
    hang: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = 0.0
    tool_calls: tuple[StreamToolCall, ...] = ()
    """Tool calls the model asks for after its text (the turn's tool loop answers them)."""


ScriptItem: TypeAlias = str | BaseException | Reply | Callable[[ModelRequest], "str | Reply"]


class ScriptedModel:
    """Answers each call with the next scripted item, and records every request.

    An item is a reply text, an exception to raise, a `Reply`, or a function of the request
    returning either. A call beyond the script raises `UnexpectedModelCall` (the turn fails
    with a ProviderResponseError naming it); `assert_consumed()` fails when scripted items
    were left unused or a call came that was not scripted.

        model = ScriptedModel("Hi!", RateLimitError("slow down"), Reply(text="ok", token_delay=0.1))
        client = Client(store="memory://", config=ClientConfig(providers={"scripted": model}))
        session = await client.create_session(model="scripted:any")
    """

    def __init__(self, *script: ScriptItem, provider: str = "scripted") -> None:
        self._script: deque[ScriptItem] = deque(script)
        self._provider = provider
        self.requests: list[ModelRequest] = []
        self.unexpected_calls = 0

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def offline(self) -> bool:
        return True

    def add(self, *items: ScriptItem) -> None:
        """Append items to the script."""
        self._script.extend(items)

    @property
    def remaining(self) -> int:
        return len(self._script)

    def assert_consumed(self) -> None:
        if self.unexpected_calls:
            raise UnexpectedModelCall(
                f"{self.unexpected_calls} model call(s) came beyond the end of the script"
            )
        if self._script:
            raise AssertionError(f"{len(self._script)} scripted model call(s) never happened")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        if not self._script:
            self.unexpected_calls += 1
            raise UnexpectedModelCall(
                f"model call #{len(self.requests)} was not scripted (last message: "
                f"{request.messages[-1].text if request.messages else ''!r})"
            )
        item = self._script.popleft()
        if callable(item) and not isinstance(item, BaseException | Reply):
            item = item(request)
        if isinstance(item, BaseException):
            raise item
        reply = item if isinstance(item, Reply) else Reply(text=item)
        tokens = split_tokens(reply.text)
        for token in tokens:
            await asyncio.sleep(reply.token_delay)
            yield StreamTextDelta(text=token)
        if reply.hang:
            await asyncio.Event().wait()
        if reply.error is not None:
            raise reply.error
        prompt = count_prompt_tokens(request)
        yield StreamUsage(
            input_tokens=prompt if reply.input_tokens is None else reply.input_tokens,
            output_tokens=len(tokens) if reply.output_tokens is None else reply.output_tokens,
            cost=reply.cost,
        )
        for call in reply.tool_calls:
            yield call
        yield StreamFinish(reason="tool_calls" if reply.tool_calls else "stop")

    async def aclose(self) -> None:
        return None
