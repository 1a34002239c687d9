"""Wire formats for `FakeLLMServer`: OpenAI Chat Completions and Anthropic Messages.

Replies, SSE streams and error bodies are built in the exact JSON shapes the official SDKs parse
(checked by parsing them through the SDKs in tests/testing/). A stream is planned as a `head`
(sent with the headers), one frame per token (the timing applies between them) and a `tail`,
so faults can cut it anywhere.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from parley.testing.fake_script import FakeReply, Fault, split_words
from parley.testing.fake_validation import (
    RequestProblem,
    validate_anthropic_messages,
    validate_openai_chat,
)

__all__ = [
    "AnthropicWire",
    "OpenAIWire",
    "StreamPlan",
    "Usage",
    "Wire",
    "default_reply_text",
    "new_id",
]

Api = Literal["openai", "anthropic"]
_QUOTE_LIMIT = 60


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 1] + "…"
    return f'"{text}"'


def default_reply_text(user_texts: Sequence[str]) -> str:
    """The unscripted reply: it quotes the conversation, so each one's context is visible."""
    last = user_texts[-1] if user_texts else ""
    first = user_texts[0] if user_texts else ""
    return f"Fake reply to {_quote(last)} (user message #{len(user_texts)}; first: {_quote(first)})"


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply; `input_tokens` includes `cached_tokens` (OpenAI's convention)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int


@dataclass(frozen=True)
class StreamPlan:
    """A streamed reply cut into what a fault can interrupt."""

    head: bytes
    tokens: tuple[bytes, ...]
    tail: bytes
    malformed: bytes  # an SSE frame whose data is not valid JSON


def _pieces(reply: FakeReply) -> tuple[list[str], list[list[str]]]:
    """Text words, and each tool call's JSON arguments in word-sized pieces."""
    args = [split_words(json.dumps(call.arguments)) for call in reply.tool_calls]
    return split_words(reply.text), args


def _usage(reply: FakeReply, prompt_words: int) -> Usage:
    words, args = _pieces(reply)
    streamed = len(words) + sum(len(a) for a in args)
    return Usage(
        input_tokens=prompt_words if reply.input_tokens is None else reply.input_tokens,
        output_tokens=streamed if reply.output_tokens is None else reply.output_tokens,
        cached_tokens=reply.cached_tokens,
    )


def _content_texts(content: object) -> list[str]:
    """The text of a message's content: a string, or the text of its (nested) blocks."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "tool_result":
                texts.extend(_content_texts(block.get("content")))
            elif block.get("type") == "tool_use":
                texts.append(json.dumps(block.get("input")))
    return texts


class Wire(Protocol):
    """What the server needs from one API's wire format."""

    api: Api
    request_id_header: str

    def validate(self, body: dict[str, Any]) -> RequestProblem | None: ...
    def texts(self, body: dict[str, Any]) -> tuple[list[str], list[str]]: ...
    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]: ...
    def fault_body(self, fault: Fault, model: str) -> dict[str, Any]: ...
    def reply_body(self, reply: FakeReply, model: str, prompt_words: int) -> dict[str, Any]: ...
    def stream_plan(
        self, reply: FakeReply, model: str, prompt_words: int, body: dict[str, Any]
    ) -> StreamPlan: ...
    def models_body(self, models: Sequence[str]) -> dict[str, Any]: ...


class OpenAIWire:
    """Chat Completions, as api.openai.com/v1 speaks it."""

    api: Api = "openai"
    request_id_header = "x-request-id"

    def validate(self, body: dict[str, Any]) -> RequestProblem | None:
        return validate_openai_chat(body)

    def texts(self, body: dict[str, Any]) -> tuple[list[str], list[str]]:
        everything: list[str] = []
        said: list[str] = []
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            texts = _content_texts(message.get("content"))
            everything.extend(texts)
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    everything.append(str(call["function"].get("arguments", "")))
            if message.get("role") == "user" and "".join(texts).strip():
                said.append(" ".join(texts))
        return everything, said

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        if status == 429:
            kind = "requests"
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def fault_body(self, fault: Fault, model: str) -> dict[str, Any]:
        status = fault.status or 500
        if fault.kind == "rate_limit":
            wait = f" Please try again in {fault.retry_after:g}s." if fault.retry_after else ""
            return self.error_body(
                429,
                f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, "
                f"Requested 1.{wait}",
                code="rate_limit_exceeded",
            )
        if fault.kind == "unauthorized":
            return self.error_body(401, "Incorrect API key provided.", code="invalid_api_key")
        messages = {
            502: "Bad gateway.",
            503: "The engine is currently overloaded, please try again later.",
            529: "The server is overloaded, please try again later.",
        }
        default = "The server had an error while processing your request. Sorry about that!"
        return self.error_body(status, messages.get(status, default))

    def _usage_json(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def reply_body(self, reply: FakeReply, model: str, prompt_words: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish("openai"),
                }
            ],
            "usage": self._usage_json(_usage(reply, prompt_words)),
            "service_tier": "default",
            "system_fingerprint": "fp_parley_fake",
        }

    def stream_plan(
        self, reply: FakeReply, model: str, prompt_words: int, body: dict[str, Any]
    ) -> StreamPlan:
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        obfuscate = options.get("include_obfuscation", True) is not False
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_parley_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                data["usage"] = None
            if obfuscate:
                data["obfuscation"] = "x" * 4
            return _sse(data)

        words, args = _pieces(reply)
        first = chunk({"role": "assistant", "content": "" if words else None, "refusal": None})
        tokens = [chunk({"content": word}) for word in words]
        for index, (call, pieces) in enumerate(zip(reply.tool_calls, args, strict=True)):
            function = {"name": call.name, "arguments": ""}
            start = {"index": index, "id": call.id, "type": "function", "function": function}
            for n, piece in enumerate(pieces):
                delta = {"index": index, "function": {"arguments": piece}}
                frame = chunk({"tool_calls": [delta]})
                tokens.append(chunk({"tool_calls": [start]}) + frame if n == 0 else frame)
        tail = chunk({}, reply.finish("openai"))
        if include_usage:
            usage = {**base, "choices": [], "usage": self._usage_json(_usage(reply, prompt_words))}
            if obfuscate:
                usage["obfuscation"] = "x" * 4
            tail += _sse(usage)
        tail += b"data: [DONE]\n\n"
        if tokens:
            tokens[0] = first + tokens[0]
        else:
            tail = first + tail
        malformed = f'data: {{"id":"{base["id"]}","choices":[{{"index":0,"delta":{{"content":'
        return StreamPlan(b"", tuple(tokens), tail, (malformed + "\n\n").encode())

    def models_body(self, models: Sequence[str]) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "parley-fake"}
                for m in models
            ],
        }


class AnthropicWire:
    """Messages, as api.anthropic.com/v1 speaks it."""

    api: Api = "anthropic"
    request_id_header = "request-id"

    def validate(self, body: dict[str, Any]) -> RequestProblem | None:
        return validate_anthropic_messages(body)

    def texts(self, body: dict[str, Any]) -> tuple[list[str], list[str]]:
        everything = _content_texts(body.get("system"))
        said: list[str] = []
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            everything.extend(_content_texts(message.get("content")))
            if message.get("role") == "user":
                # Only the user's own words: tool results are not something the user said.
                content = message.get("content")
                own = (
                    [content]
                    if isinstance(content, str)
                    else [
                        b["text"]
                        for b in content or []
                        if isinstance(b, dict) and b.get("type") == "text"
                    ]
                )
                if "".join(own).strip():
                    said.append(" ".join(own))
        return everything, said

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        kind = kinds.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": new_id("req_"),
        }

    def fault_body(self, fault: Fault, model: str) -> dict[str, Any]:
        status = fault.status or 500
        messages = {
            401: "invalid x-api-key",
            429: "Number of request tokens has exceeded your per-minute rate limit "
            f"(model {model}); please retry after the time in the retry-after header.",
            502: "Bad gateway",
            529: "Overloaded",
        }
        return self.error_body(status, messages.get(status, "Internal server error"))

    def _usage_json(self, usage: Usage, *, output: int) -> dict[str, Any]:
        return {
            "input_tokens": max(0, usage.input_tokens - usage.cached_tokens),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_tokens,
            "output_tokens": output,
            "service_tier": "standard",
        }

    def _message(self, model: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
        }

    def reply_body(self, reply: FakeReply, model: str, prompt_words: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in reply.tool_calls
        ]
        usage = _usage(reply, prompt_words)
        message = self._message(model, content)
        message["stop_reason"] = reply.finish("anthropic")
        message["usage"] = self._usage_json(usage, output=usage.output_tokens)
        return message

    def stream_plan(
        self, reply: FakeReply, model: str, prompt_words: int, body: dict[str, Any]
    ) -> StreamPlan:
        usage = _usage(reply, prompt_words)
        start = self._message(model, [])
        # Like the API: message_start carries a provisional output count; message_delta the total.
        start["usage"] = self._usage_json(usage, output=min(1, usage.output_tokens))
        head = _sse({"type": "message_start", "message": start}, "message_start")

        def event(kind: str, **fields: Any) -> bytes:
            return _sse({"type": kind, **fields}, kind)

        words, args = _pieces(reply)
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if words:
            text_deltas = [{"type": "text_delta", "text": w} for w in words]
            blocks.append(({"type": "text", "text": ""}, text_deltas))
        for call, pieces in zip(reply.tool_calls, args, strict=True):
            json_deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
            tool = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            blocks.append((tool, json_deltas))
        tokens: list[bytes] = []
        for index, (block, deltas) in enumerate(blocks):
            opening = b"" if index == 0 else event("content_block_stop", index=index - 1)
            opening += event("content_block_start", index=index, content_block=block)
            if index == 0:
                opening += event("ping")
            for n, delta in enumerate(deltas):
                frame = event("content_block_delta", index=index, delta=delta)
                tokens.append(opening + frame if n == 0 else frame)
        tail = event("content_block_stop", index=len(blocks) - 1) if blocks else b""
        tail += event(
            "message_delta",
            delta={"stop_reason": reply.finish("anthropic"), "stop_sequence": None},
            usage={"output_tokens": usage.output_tokens},
        )
        tail += event("message_stop")
        malformed = (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":\n\n'
        )
        return StreamPlan(head, tuple(tokens), tail, malformed.encode())

    def models_body(self, models: Sequence[str]) -> dict[str, Any]:
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for m in models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
