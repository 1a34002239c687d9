"""The Anthropic Messages adapter, on parley's lean wire path (`models/http.py`).

The request body's history is kept encoded per session and extended turn by turn
(`models/wire_body.py`); each streamed event is decoded into plain dicts, never into a typed
object.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import orjson
from yarl import URL

from parley.config import ProviderConfig
from parley.messages import Message, TextPart, ToolCallPart
from parley.models.base import (
    FinishReason,
    ModelRequest,
    StreamEvent,
    StreamTextDelta,
    StreamUsage,
)
from parley.models.http import HTTPAdapter
from parley.models.wire_body import EncodedHistory, encoded

__all__ = ["API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter", "to_anthropic_messages"]

DEFAULT_MAX_TOKENS = 8192
"""Anthropic requires a reply budget; ProviderConfig(max_tokens=...) sets another."""
API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header: the Messages API as the official SDKs speak it."""

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text.strip():  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            blocks.append(
                {"type": "tool_use", "id": part.call_id, "name": part.name, "input": part.arguments}
            )
        else:
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": part.call_id,
                    "content": part.content,
                    "is_error": part.is_error,
                }
            )
    return blocks


def to_anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral history to Messages API turns.

    Tool results travel in a user turn; consecutive turns of one role are merged, so a history
    with an unanswered (interrupted, empty) reply still alternates as the API requires.
    """
    wire: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return wire


class _History(EncodedHistory):
    """The ``messages`` array for the history, brackets left out, as `to_anthropic_messages`.

    Consecutive messages of one role merge into one turn, so the last turn stays open
    (`tail`, its blocks encoded) until a message of the other role closes it into `closed`.
    `tools` are the names of the tools the history called, in order.
    """

    __slots__ = ("closed", "role", "tail", "tools")

    def __init__(self) -> None:
        super().__init__()
        self.closed = bytearray()
        self.role: str | None = None
        self.tail: list[bytes] = []
        self.tools: dict[str, None] = {}

    def add(self, message: Message) -> None:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                self.tools[part.name] = None
        blocks = _blocks(message)
        if not blocks:
            return
        role = "assistant" if message.role == "assistant" else "user"
        if role != self.role:
            if self.role is not None:
                if self.closed:
                    self.closed += b","
                self.closed += self._turn()
            self.role, self.tail = role, []
        self.tail.extend(orjson.dumps(block) for block in blocks)

    def _turn(self) -> bytes:
        return b"".join(
            (
                b'{"role":"',
                (self.role or "").encode(),
                b'","content":[',
                b",".join(self.tail),
                b"]}",
            )
        )

    def parts(self) -> list[bytes | bytearray]:
        """The array's contents, as parts to join."""
        if self.role is None:
            return [self.closed]
        return [self.closed, b",", self._turn()] if self.closed else [self._turn()]


class AnthropicAdapter(HTTPAdapter):
    """Streams Messages over HTTP (``x-api-key``, ``anthropic-version``)."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        api_key: str | None,
        base_url: str | None,
        priced_by: str = "vendor",
    ) -> None:
        self._max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS
        headers = {"anthropic-version": API_VERSION}
        if api_key:  # a local server that takes no key is sent none
            headers["x-api-key"] = api_key
        super().__init__(
            name,
            config,
            base_url=base_url or "https://api.anthropic.com",
            priced_by=priced_by,
            headers=headers,
        )
        self._messages_url = URL(str(self._base).rstrip("/") + "/v1/messages")

    def _body(self, request: ModelRequest) -> bytes:
        history = encoded(request.cache, (self, request.model), request.messages, _History)
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": int(request.options.get("max_tokens", self._max_tokens)),
            "stream": True,
        }
        if request.system:
            params["system"] = request.system
        offers: list[dict[str, Any]] = [
            {"name": s.name, "description": s.description, "input_schema": s.parameters}
            for s in request.tools
        ]
        # The API refuses a history with tool blocks unless tools are defined: describe the
        # ones the history used that this request no longer offers (calling one again gets an
        # error result from the runtime, like any unknown tool).
        offered = {s.name for s in request.tools}
        for name in history.tools:
            if name not in offered:
                offers.append(
                    {
                        "name": name,
                        "description": "No longer available.",
                        "input_schema": {"type": "object"},
                    }
                )
        if offers:
            params["tools"] = offers
        return b"".join((b'{"messages":[', *history.parts(), b"],", orjson.dumps(params)[1:]))

    async def stream_batches(
        self, request: ModelRequest
    ) -> AsyncGenerator[list[StreamEvent], None]:
        response = await self._post(self._messages_url, self._body(request))
        finish: FinishReason | None = None
        input_tokens = cached = written = output_tokens = 0
        tools: dict[int, list[str]] = {}  # index: [id, name, json]
        async for events in self._events(response):
            out: list[StreamEvent] = []
            for event in events:
                kind = event.get("type")
                if kind == "content_block_delta":
                    delta = event["delta"]
                    kind = delta.get("type")
                    if kind == "text_delta":
                        if delta.get("text"):
                            out.append(StreamTextDelta(text=delta["text"]))
                    elif kind == "input_json_delta":
                        tool = tools.get(event.get("index", 0))
                        if tool is not None:
                            tool[2] += delta.get("partial_json") or ""
                elif kind == "content_block_start":
                    block = event["content_block"]
                    if block.get("type") == "tool_use":
                        tools[event.get("index", 0)] = [block["id"], block["name"], ""]
                elif kind == "message_start":
                    usage = event["message"].get("usage") or {}
                    cached = int(usage.get("cache_read_input_tokens") or 0)
                    written = int(usage.get("cache_creation_input_tokens") or 0)  # priced higher
                    input_tokens = int(usage.get("input_tokens") or 0) + cached + written
                    output_tokens = int(usage.get("output_tokens") or 0)
                elif kind == "message_delta":
                    counted = (event.get("usage") or {}).get("output_tokens")
                    if counted is not None:
                        output_tokens = int(counted)
                    reason = (event.get("delta") or {}).get("stop_reason")
                    if reason is not None:
                        finish = _FINISH.get(reason, "stop")
            if out:
                yield out
        finished = self._finished(finish)
        usage = StreamUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cost=self._price(
                request.model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_tokens=cached,
                cache_write_tokens=written,
            ),
        )
        yield [usage]  # before the tool calls' arguments are parsed, which may fail
        yield self._ending(finished, tools)
