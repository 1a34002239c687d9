"""The OpenAI Chat Completions adapter, through the official `openai` SDK.

One adapter serves every OpenAI-compatible endpoint: OpenAI, Azure OpenAI (deployment URLs,
``api-version``, ``api-key`` header: the SDK's `AsyncAzureOpenAI`), Ollama, vLLM, llama.cpp
server, LM Studio, OpenRouter... A vendor is a `ProviderConfig`, not a class. The SDK's own
retries are off: parley retries in one place (`runtime/retry.py`).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from parley.config import ProviderConfig
from parley.errors import ConfigError, ProviderResponseError
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart
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

__all__ = ["DEFAULT_AZURE_API_VERSION", "OpenAIAdapter", "to_openai_messages"]

DEFAULT_AZURE_API_VERSION = "2024-10-21"

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def to_openai_messages(system: str | None, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral history to Chat Completions messages (tool results become `tool` messages)."""
    wire: list[dict[str, Any]] = []
    if system:
        wire.append({"role": "system", "content": system})
    for message in messages:
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        if message.role == "user":
            wire.append({"role": "user", "content": text})
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": text or None}
            calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in calls
                ]
            wire.append(entry)
        for part in message.parts:
            if isinstance(part, ToolResultPart):
                wire.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
    return wire


def _tools(request: ModelRequest) -> Any:
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
            },
        }
        for spec in request.tools
    ]


class OpenAIAdapter(SDKAdapter):
    """Streams Chat Completions through `openai.AsyncOpenAI` (or `AsyncAzureOpenAI`)."""

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
        self._sdk = openai
        # OpenAI and Azure take max_completion_tokens (max_tokens is refused by reasoning
        # models); servers such as Ollama and llama.cpp honour only max_tokens.
        vendor = priced_by == "vendor" or config.type == "azure"
        self._completion_budget = config.max_tokens if vendor else None
        self._plain_budget = None if vendor else config.max_tokens
        headers = dict(config.headers) or None
        client: openai.AsyncOpenAI
        if config.type == "azure":
            if not base_url:
                raise ConfigError(
                    f"provider {name!r} (Azure OpenAI) needs its endpoint: set "
                    f"{config.base_url_env or 'AZURE_OPENAI_ENDPOINT'} or base_url"
                )
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url,
                api_key=api_key,
                api_version=config.api_version
                or os.environ.get("OPENAI_API_VERSION")
                or DEFAULT_AZURE_API_VERSION,
                max_retries=0,
                timeout=config.timeout,
                default_headers=headers,
            )
        else:
            # Local servers (Ollama, vLLM...) take no key, but the SDK insists on one.
            client = openai.AsyncOpenAI(
                api_key=api_key or "no-key",
                base_url=base_url,
                max_retries=0,
                timeout=config.timeout,
                default_headers=headers,
            )
        self._client = client

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        # Plain dicts in the SDK's documented shape; its TypedDicts add nothing at runtime.
        messages: Any = to_openai_messages(request.system, request.messages)
        try:
            chunks = await self._client.chat.completions.create(
                model=request.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                tools=_tools(request) or openai.omit,
                max_completion_tokens=self._completion_budget or openai.omit,
                max_tokens=self._plain_budget or openai.omit,
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        finish: FinishReason | None = None
        calls: dict[int, dict[str, str]] = {}
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    yield self._usage(request.model, chunk.usage)
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
                        finish = _FINISH.get(choice.finish_reason, "stop")
        except openai.APIStatusError as exc:
            raise self._error(exc) from exc
        except Exception as exc:  # torn, stalled or malformed mid-stream, whatever raised it
            raise broken_stream(self._name, exc) from exc
        finally:
            await chunks.close()
        if finish is None:
            raise ProviderResponseError(
                f"the reply stream from provider {self._name!r} ended before the reply was "
                "complete; the partial reply is kept, marked interrupted: send again",
                provider=self._name,
            )
        for _, slot in sorted(calls.items()):
            arguments = parse_tool_arguments(self._name, slot["name"], slot["args"])
            yield StreamToolCall(call_id=slot["id"], name=slot["name"], arguments=arguments)
        yield StreamFinish(reason=finish)

    def _usage(self, model: str, usage: Any) -> StreamUsage:
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0)
        return StreamUsage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cached_tokens=cached,
            cost=self._price(
                model,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cached_tokens=cached,
            ),
        )
