"""The oracle: the same two wire APIs read through the vendors' official SDKs.

These were parley's adapters before the lean wire path (`parley.models.http`) replaced them.
They stay here, test-only, so that the new adapters can be compared with the official SDKs'
reading of the very same bytes (tests/models/test_wire_equivalence.py). They yield parley's
neutral stream events and raise parley's errors, mapped as parley mapped the SDKs' exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai

from parley.errors import (
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from parley.models.anthropic import to_anthropic_messages
from parley.models.base import (
    FinishReason,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamToolCall,
    StreamUsage,
)
from parley.models.faults import (
    broken_stream,
    from_status,
    parse_tool_arguments,
    status_of_error,
)
from parley.models.openai import to_openai_messages
from parley.models.pricing import price

OPENAI_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
ANTHROPIC_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
PROVIDER = "ref"


def sdk_error(sdk: Any, exc: Exception) -> ProviderError:
    """An exception of the `openai` or `anthropic` SDK as parley's error (they share classes)."""
    if isinstance(exc, sdk.APIStatusError):
        if exc.status_code < 400:  # an error event inside a stream that began with 200
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            return from_status(PROVIDER, status_of_error(error), exc.message, {})
        return from_status(PROVIDER, exc.status_code, exc.message, exc.response.headers)
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderTimeoutError("timed out", provider=PROVIDER)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderUnavailableError("cannot reach", provider=PROVIDER)
    if isinstance(exc, sdk.APIError) and isinstance(exc.body, dict):  # {"error": ...} chunk
        return from_status(PROVIDER, status_of_error(exc.body), exc.message, {})
    return broken_stream(PROVIDER, exc)


def _incomplete() -> ProviderResponseError:
    return ProviderResponseError("ended before the reply was complete", provider=PROVIDER)


async def openai_events(
    client: openai.AsyncOpenAI, request: ModelRequest, price_type: str = "openai"
) -> AsyncIterator[StreamEvent]:
    """Chat Completions through `openai.AsyncOpenAI`, as parley's events."""
    messages: Any = to_openai_messages(request.system, request.messages)
    try:
        chunks = await client.chat.completions.create(
            model=request.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    except openai.OpenAIError as exc:
        raise sdk_error(openai, exc) from exc
    finish: FinishReason | None = None
    calls: dict[int, dict[str, str]] = {}
    try:
        async for chunk in chunks:
            if chunk.usage is not None:
                details = chunk.usage.prompt_tokens_details
                cached = int(getattr(details, "cached_tokens", 0) or 0)
                yield StreamUsage(
                    input_tokens=chunk.usage.prompt_tokens,
                    output_tokens=chunk.usage.completion_tokens,
                    cached_tokens=cached,
                    cost=price(
                        price_type,
                        request.model,
                        input_tokens=chunk.usage.prompt_tokens,
                        output_tokens=chunk.usage.completion_tokens,
                        cached_tokens=cached,
                    ),
                )
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    yield StreamTextDelta(text=delta.content)
                for call in delta.tool_calls or ():
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["args"] += call.function.arguments or ""
                if choice.finish_reason is not None:
                    finish = OPENAI_FINISH.get(choice.finish_reason, "stop")
    except openai.OpenAIError as exc:
        raise sdk_error(openai, exc) from exc
    except Exception as exc:
        raise broken_stream(PROVIDER, exc) from exc
    finally:
        await chunks.close()
    if finish is None:
        raise _incomplete()
    for _, slot in sorted(calls.items()):
        arguments = parse_tool_arguments(PROVIDER, slot["name"], slot["args"])
        yield StreamToolCall(call_id=slot["id"], name=slot["name"], arguments=arguments)
    yield StreamFinish(reason=finish)


async def anthropic_events(
    client: anthropic.AsyncAnthropic, request: ModelRequest
) -> AsyncIterator[StreamEvent]:
    """Messages through `anthropic.AsyncAnthropic`, as parley's events."""
    messages: Any = to_anthropic_messages(request.messages)
    try:
        events = await client.messages.create(
            model=request.model, max_tokens=1024, messages=messages, stream=True
        )
    except anthropic.AnthropicError as exc:
        raise sdk_error(anthropic, exc) from exc
    finish: FinishReason | None = None
    input_tokens = cached = written = output_tokens = 0
    tools: dict[int, dict[str, str]] = {}
    try:
        async for event in events:
            if event.type == "message_start":
                usage = event.message.usage
                cached = int(usage.cache_read_input_tokens or 0)
                written = int(usage.cache_creation_input_tokens or 0)
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
                    finish = ANTHROPIC_FINISH.get(event.delta.stop_reason, "stop")
    except anthropic.AnthropicError as exc:
        raise sdk_error(anthropic, exc) from exc
    except Exception as exc:
        raise broken_stream(PROVIDER, exc) from exc
    finally:
        await events.close()
    if finish is None:
        raise _incomplete()
    yield StreamUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached,
        cost=price(
            "anthropic",
            request.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cache_write_tokens=written,
        ),
    )
    for _, tool in sorted(tools.items()):
        arguments = parse_tool_arguments(PROVIDER, tool["name"], tool["json"])
        yield StreamToolCall(call_id=tool["id"], name=tool["name"], arguments=arguments)
    yield StreamFinish(reason=finish)
