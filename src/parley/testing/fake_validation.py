"""Request validation for `FakeLLMServer`, strict where the real APIs are strict.

Each function returns the first problem found, worded like the real API words it, or None.
The point is to catch what adapters get wrong in practice: missing fields, roles a provider
does not have, and tool calls and results that do not pair up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RequestProblem", "validate_anthropic_messages", "validate_openai_chat"]

_OPENAI_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@dataclass(frozen=True)
class RequestProblem:
    """Why a request is refused: the HTTP status and the provider-style message."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _openai_bad(message: str, param: str | None = None, code: str | None = None) -> RequestProblem:
    return RequestProblem(400, message, param, code)


def _openai_unanswered(pending: dict[str, int]) -> RequestProblem:
    first = min(pending.values())
    return _openai_bad(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending),
        f"messages.[{first}].role",
    )


def _openai_content(message: dict[str, Any], i: int, role: str) -> RequestProblem | None:
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None
        if "content" in message:
            return _openai_bad(
                "Invalid value for 'content': expected a string, got null.",
                f"messages.[{i}].content",
            )
        return _openai_bad(
            f"Missing required parameter: 'messages[{i}].content'.",
            f"messages[{i}].content",
            "missing_required_parameter",
        )
    if not isinstance(content, str | list):
        return _openai_bad(
            f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
            f"objects, but got {_type_name(content)} instead.",
            f"messages[{i}].content",
            "invalid_type",
        )
    return None


def _openai_tool_calls(
    message: dict[str, Any], i: int, pending: dict[str, int]
) -> RequestProblem | None:
    calls = message.get("tool_calls")
    if calls is None:
        return None
    if not isinstance(calls, list):
        return _openai_bad(
            f"Invalid type for 'messages[{i}].tool_calls': expected an array of objects, but got "
            f"{_type_name(calls)} instead.",
            f"messages[{i}].tool_calls",
            "invalid_type",
        )
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, dict):
            return _openai_bad(f"Invalid type for '{where}': expected an object.", where)
        function = call.get("function")
        for key, value in (("id", call.get("id")), ("type", call.get("type"))):
            if not isinstance(value, str):
                return _openai_bad(
                    f"Missing required parameter: '{where}.{key}'.",
                    f"{where}.{key}",
                    "missing_required_parameter",
                )
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return _openai_bad(
                f"Missing required parameter: '{where}.function.name'.",
                f"{where}.function.name",
                "missing_required_parameter",
            )
        if not isinstance(function.get("arguments"), str):
            return _openai_bad(
                f"Invalid type for '{where}.function.arguments': expected a string, but got "
                f"{_type_name(function.get('arguments'))} instead.",
                f"{where}.function.arguments",
                "invalid_type",
            )
        pending[call["id"]] = i
    return None


def validate_openai_chat(body: dict[str, Any]) -> RequestProblem | None:
    """Check a Chat Completions request body as api.openai.com does (the parts adapters touch)."""
    model = body.get("model")
    if not model:
        return _openai_bad("you must provide a model parameter")
    if not isinstance(model, str):
        return _openai_bad(
            f"Invalid type for 'model': expected a string, but got {_type_name(model)} instead.",
            "model",
            "invalid_type",
        )
    messages = body.get("messages")
    if messages is None:
        return _openai_bad(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list):
        return _openai_bad(
            f"Invalid type for 'messages': expected an array, but got {_type_name(messages)} "
            "instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        return _openai_bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            "messages",
            "empty_array",
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        return _openai_bad(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    pending: dict[str, int] = {}  # tool call id -> index of the assistant message that made it
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _openai_bad(
                f"Invalid type for 'messages[{i}]': expected an object, but got "
                f"{_type_name(message)} instead.",
                f"messages[{i}]",
                "invalid_type",
            )
        role = message.get("role")
        if role not in _OPENAI_ROLES:
            return _openai_bad(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                return _openai_bad(
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    f"messages[{i}].tool_call_id",
                    "missing_required_parameter",
                )
            if call_id not in pending:
                return _openai_bad(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (tool_call_id {call_id!r} answers no "
                    "unanswered tool call of the assistant message before it).",
                    f"messages.[{i}].role",
                )
            del pending[call_id]
        elif pending:
            return _openai_unanswered(pending)
        problem = _openai_content(message, i, role)
        if problem is None and role == "assistant":
            problem = _openai_tool_calls(message, i, pending)
        if problem is not None:
            return problem
    if pending:
        return _openai_unanswered(pending)
    return None


def _anthropic_bad(message: str) -> RequestProblem:
    return RequestProblem(400, message)


_EMPTY_CONTENT = (
    "all messages must have non-empty content except for the optional final assistant message"
)


def _anthropic_block(block: object, where: str, role: str) -> RequestProblem | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return _anthropic_bad(f"{where}: Input should be a valid content block object with a type")
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            return _anthropic_bad(f"{where}.text: Field required")
        if not text:
            return _anthropic_bad(f"{where}.text: text content blocks must be non-empty")
        if not text.strip():
            return _anthropic_bad(
                f"{where}.text: text content blocks must contain non-whitespace text"
            )
    elif kind == "tool_use":
        if role != "assistant":
            return _anthropic_bad(f"{where}: `tool_use` blocks can only be in `assistant` messages")
        for key, expected in (("id", str), ("name", str), ("input", dict)):
            if not isinstance(block.get(key), expected):
                return _anthropic_bad(f"{where}.{key}: Field required")
    elif kind == "tool_result":
        if role != "user":
            return _anthropic_bad(f"{where}: `tool_result` blocks can only be in `user` messages")
        if not isinstance(block.get("tool_use_id"), str):
            return _anthropic_bad(f"{where}.tool_use_id: Field required")
    return None


def _anthropic_message(message: object, i: int, last: bool) -> RequestProblem | None:
    if not isinstance(message, dict):
        return _anthropic_bad(f"messages.{i}: Input should be a valid dictionary")
    role = message.get("role")
    if role == "system":
        # The 2.x SDK types allow it for models that take mid-conversation system messages;
        # the fake's models, like most, do not: the system prompt is the top-level `system`.
        return _anthropic_bad(
            f'messages.{i}.role: Unexpected role "system": this model does not accept '
            "mid-conversation system messages; use the top-level `system` parameter."
        )
    if role not in ("user", "assistant"):
        return _anthropic_bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    if content is None:
        return _anthropic_bad(f"messages.{i}.content: Field required")
    if isinstance(content, str):
        if not content.strip() and not (last and role == "assistant"):
            return _anthropic_bad(f"messages.{i}: {_EMPTY_CONTENT}")
        return None
    if not isinstance(content, list):
        return _anthropic_bad(f"messages.{i}.content: Input should be a valid list or string")
    if not content and not (last and role == "assistant"):
        return _anthropic_bad(f"messages.{i}: {_EMPTY_CONTENT}")
    for j, block in enumerate(content):
        problem = _anthropic_block(block, f"messages.{i}.content.{j}", role)
        if problem is not None:
            return problem
    return None


def _blocks(message: dict[str, Any], kind: str) -> list[tuple[int, dict[str, Any]]]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [(j, b) for j, b in enumerate(content) if b["type"] == kind]


def _anthropic_tool_pairs(messages: list[dict[str, Any]]) -> RequestProblem | None:
    # Consecutive messages with the same role are one turn: the API merges them.
    turns: list[list[int]] = []
    for i, message in enumerate(messages):
        if turns and messages[turns[-1][0]]["role"] == message["role"]:
            turns[-1].append(i)
        else:
            turns.append([i])
    for t, turn in enumerate(turns):
        if messages[turn[0]]["role"] != "assistant":
            continue
        uses = {b["id"]: i for i in turn for _, b in _blocks(messages[i], "tool_use")}
        answered: set[str] = set()
        if t + 1 < len(turns):
            answered = {
                b["tool_use_id"]
                for i in turns[t + 1]
                for _, b in _blocks(messages[i], "tool_result")
            }
        missing = [use for use in uses if use not in answered]
        if missing:
            return _anthropic_bad(
                f"messages.{uses[missing[0]]}: `tool_use` ids were found without `tool_result` "
                f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                "a corresponding `tool_result` block in the next message."
            )
    for t, turn in enumerate(turns):
        if messages[turn[0]]["role"] != "user":
            continue
        previous = turns[t - 1] if t else []
        made = {b["id"] for i in previous for _, b in _blocks(messages[i], "tool_use")}
        for i in turn:
            for j, block in _blocks(messages[i], "tool_result"):
                if block["tool_use_id"] not in made:
                    return _anthropic_bad(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block['tool_use_id']}. Each `tool_result` block "
                        "must have a corresponding `tool_use` block in the previous message."
                    )
    return None


def validate_anthropic_messages(body: dict[str, Any]) -> RequestProblem | None:
    """Check a Messages request body as api.anthropic.com does (the parts adapters touch)."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body or body[name] is None:
            return _anthropic_bad(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        return _anthropic_bad("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return _anthropic_bad("max_tokens: Input should be a valid integer")
    if max_tokens < 0:  # 0 is allowed: it warms the prompt cache without generating
        return _anthropic_bad("max_tokens: Input should be greater than or equal to 0")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return _anthropic_bad("system: Input should be a valid string or a list of text blocks")
    if isinstance(system, list):
        for j, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                return _anthropic_bad(f"system.{j}: Input should be a text block")
            problem = _anthropic_block(block, f"system.{j}", "system")
            if problem is not None:
                return problem
    messages = body["messages"]
    if not isinstance(messages, list):
        return _anthropic_bad("messages: Input should be a valid list")
    if not messages:
        return _anthropic_bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        problem = _anthropic_message(message, i, last=i == len(messages) - 1)
        if problem is not None:
            return problem
    if messages[0]["role"] != "user":
        return _anthropic_bad('messages: first message must use the "user" role')
    has_tool_blocks = any(
        _blocks(message, kind) for message in messages for kind in ("tool_use", "tool_result")
    )
    if has_tool_blocks and not body.get("tools"):
        return _anthropic_bad(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
        )
    return _anthropic_tool_pairs(messages)
