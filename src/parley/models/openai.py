"""The OpenAI Chat Completions adapter, on parley's lean wire path (`models/http.py`).

One adapter serves every OpenAI-compatible endpoint: OpenAI, Azure OpenAI (deployment URLs,
``api-version``, ``api-key`` header), Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter...
A vendor is a `ProviderConfig`, not a class. The request body's history is kept encoded per
session and extended turn by turn (`models/wire_body.py`); each streamed chunk is decoded into
plain dicts, never into a typed object.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import orjson
from yarl import URL

from parley.config import ProviderConfig
from parley.errors import ConfigError
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart
from parley.models.base import (
    FinishReason,
    ModelRequest,
    StreamEvent,
    StreamTextDelta,
    StreamUsage,
)
from parley.models.http import HTTPAdapter
from parley.models.wire_body import EncodedHistory, encoded

__all__ = ["DEFAULT_AZURE_API_VERSION", "OpenAIAdapter", "to_openai_messages"]

DEFAULT_AZURE_API_VERSION = "2024-10-21"

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _entries(message: Message) -> list[dict[str, Any]]:
    """One message as Chat Completions messages (tool results become `tool` messages)."""
    wire: list[dict[str, Any]] = []
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
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments),
                    },
                }
                for call in calls
            ]
        wire.append(entry)
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            wire.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
    return wire


def to_openai_messages(system: str | None, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral history to Chat Completions messages, the system message first."""
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        wire.extend(_entries(message))
    return wire


class _History(EncodedHistory):
    """The ``messages`` array's entries for the history, comma-separated, brackets left out."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        super().__init__()
        self.body = bytearray()

    def add(self, message: Message) -> None:
        for entry in _entries(message):
            if self.body:
                self.body += b","
            self.body += orjson.dumps(entry)


def _tools(request: ModelRequest) -> list[dict[str, Any]]:
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


class OpenAIAdapter(HTTPAdapter):
    """Streams Chat Completions over HTTP; usage comes with ``include_usage``."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        api_key: str | None,
        base_url: str | None,
        priced_by: str = "vendor",
    ) -> None:
        # OpenAI and Azure take max_completion_tokens (max_tokens is refused by reasoning
        # models); servers such as Ollama and llama.cpp honour only max_tokens.
        vendor = priced_by == "vendor" or config.type == "azure"
        budget = "max_completion_tokens" if vendor else "max_tokens"
        self._budget = {budget: config.max_tokens} if config.max_tokens else {}
        self._azure = config.type == "azure"
        headers: dict[str, str] = {}
        if self._azure:
            if not base_url:
                raise ConfigError(
                    f"provider {name!r} (Azure OpenAI) needs its endpoint: set "
                    f"{config.base_url_env or 'AZURE_OPENAI_ENDPOINT'} or base_url"
                )
            self._api_version = (
                config.api_version
                or os.environ.get("OPENAI_API_VERSION")
                or DEFAULT_AZURE_API_VERSION
            )
            if api_key:
                headers["api-key"] = api_key
        elif api_key:  # a local server (Ollama, vLLM...) that takes no key is sent none
            headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(
            name,
            config,
            base_url=base_url or "https://api.openai.com/v1",
            priced_by=priced_by,
            headers=headers,
        )
        self._urls: dict[str, URL] = {}

    def _url(self, model: str) -> URL:
        url = self._urls.get(model)
        if url is None:
            base = str(self._base).rstrip("/")
            if self._azure:  # the endpoint's deployment named like the model
                deployment = URL.build(path=model).raw_path  # quoted, as a path segment
                url = URL(f"{base}/openai/deployments/{deployment}/chat/completions").with_query(
                    {"api-version": self._api_version}
                )
            else:
                url = URL(f"{base}/chat/completions")
            self._urls[model] = url
        return url

    def _body(self, request: ModelRequest) -> bytes:
        history = encoded(request.cache, (self, request.model), request.messages, _History)
        params: dict[str, Any] = {
            "model": request.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._budget,
        }
        if request.tools:
            params["tools"] = _tools(request)
        rest = orjson.dumps(params)
        parts: list[bytes | bytearray] = [b'{"messages":[']
        if request.system:
            parts.append(orjson.dumps({"role": "system", "content": request.system}))
            if history.body:
                parts.append(b",")
        parts += (history.body, b"],", rest[1:])
        return b"".join(parts)

    async def stream_batches(
        self, request: ModelRequest
    ) -> AsyncGenerator[list[StreamEvent], None]:
        response = await self._post(self._url(request.model), self._body(request))
        finish: FinishReason | None = None
        calls: dict[int, list[str]] = {}  # index: [id, name, arguments]
        async for chunks in self._events(response):
            out: list[StreamEvent] = []
            for chunk in chunks:
                usage = chunk.get("usage")
                if usage:
                    out.append(self._usage(request.model, usage))
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        out.append(StreamTextDelta(text=content))
                    for call in delta.get("tool_calls") or ():
                        slot = calls.setdefault(call.get("index", 0), ["", "", ""])
                        slot[0] = call.get("id") or slot[0]
                        function = call.get("function")
                        if function:
                            slot[1] += function.get("name") or ""
                            slot[2] += function.get("arguments") or ""
                    reason = choice.get("finish_reason")
                    if reason is not None:
                        finish = _FINISH.get(reason, "stop")
            if out:
                yield out
        yield self._ending(self._finished(finish), calls)

    def _usage(self, model: str, usage: dict[str, Any]) -> StreamUsage:
        details = usage.get("prompt_tokens_details")
        cached = int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0)
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        return StreamUsage(
            input_tokens=prompt,
            output_tokens=completion,
            cached_tokens=cached,
            cost=self._price(
                model, input_tokens=prompt, output_tokens=completion, cached_tokens=cached
            ),
        )
