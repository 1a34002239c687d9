"""The Anthropic Messages adapter, through the official `anthropic` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic

from parley.config import ProviderConfig
from parley.errors import ProviderResponseError
from parley.messages import Message, TextPart, ToolCallPart
from parley.models.base import (
    FinishReason,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
)
from parley.models.faults import broken_stream, parse_tool_arguments
from parley.models.sdk_adapter import SDKAdapter

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicAdapter", "to_anthropic_messages"]

DEFAULT_MAX_TOKENS = 8192
"""Anthropic requires a reply budget; ProviderConfig(max_tokens=...) sets another."""

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


def _tools_in(messages: Sequence[Message]) -> list[str]:
    return [part.name for m in messages for part in m.parts if isinstance(part, ToolCallPart)]


class AnthropicAdapter(SDKAdapter):
    """Streams Messages through `anthropic.AsyncAnthropic`."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        api_key: str | None,
        base_url: str | None,
        priced_by: str = "vendor",
    ) -> None:
        super().__init__(name, config, base_url=base_url, priced_by=priced_by)
        self._sdk = anthropic
        self._max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "no-key",  # never let the SDK go looking for a key of its own
            base_url=base_url,
            max_retries=0,
            timeout=config.timeout,
            default_headers=dict(config.headers) or None,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": int(request.options.get("max_tokens", self._max_tokens)),
            "messages": to_anthropic_messages(request.messages),
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
        for name in _tools_in(request.messages):
            if name not in offered:
                offered.add(name)
                offers.append(
                    {
                        "name": name,
                        "description": "No longer available.",
                        "input_schema": {"type": "object"},
                    }
                )
        if offers:
            params["tools"] = offers
        try:
            events = await self._client.messages.create(**params)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        finish: FinishReason | None = None
        input_tokens = cached = written = output_tokens = 0
        tools: dict[int, dict[str, str]] = {}
        try:
            async for event in events:
                if event.type == "message_start":
                    usage = event.message.usage
                    cached = int(usage.cache_read_input_tokens or 0)
                    written = int(usage.cache_creation_input_tokens or 0)  # priced higher
                    input_tokens = usage.input_tokens + cached + written
                    output_tokens = usage.output_tokens
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        tools[event.index] = {"id": block.id, "name": block.name, "json": ""}
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield StreamTextDelta(text=delta.text)
                    elif delta.type == "input_json_delta" and event.index in tools:
                        tools[event.index]["json"] += delta.partial_json
                elif event.type == "message_delta":
                    output_tokens = event.usage.output_tokens
                    if event.delta.stop_reason is not None:
                        finish = _FINISH.get(event.delta.stop_reason, "stop")
        except anthropic.APIStatusError as exc:
            raise self._error(exc) from exc
        except Exception as exc:  # torn, stalled or malformed mid-stream, whatever raised it
            raise broken_stream(self._name, exc) from exc
        finally:
            await events.close()
        if finish is None:
            raise ProviderResponseError(
                f"the reply stream from provider {self._name!r} ended before the reply was "
                "complete; the partial reply is kept, marked interrupted: send again",
                provider=self._name,
            )
        yield StreamUsage(
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
        for _, tool in sorted(tools.items()):
            arguments = parse_tool_arguments(self._name, tool["name"], tool["json"])
            yield StreamToolCall(call_id=tool["id"], name=tool["name"], arguments=arguments)
        yield StreamFinish(reason=finish)
