"""FakeLLMServer refuses what the real APIs refuse, in each provider's error shape.

Each refusal is checked through the official SDK (the exception type and the message it
carries) and in `server.requests` (recorded with the status answered).
"""

from __future__ import annotations

from typing import Any, cast

import aiohttp
import anthropic
import openai
import pytest
from anthropic.types import TextBlock, ToolResultBlockParam, ToolUseBlockParam

from conftest import OPENAI_KEY
from parley.testing.fake_server import FakeLLMServer

TOOLS: Any = [{"name": "f", "description": "A tool.", "input_schema": {"type": "object"}}]


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


USER = {"role": "user", "content": "hi"}
ASSISTANT_CALLS = {"role": "assistant", "content": None, "tool_calls": [call("c1"), call("c2")]}

OPENAI_INVALID = {
    "orphan tool result": (
        [USER, {"role": "tool", "tool_call_id": "c9", "content": "42"}],
        "must be a response to a preceeding message with 'tool_calls'",
    ),
    "tool result for a call already answered": (
        [
            USER,
            {"role": "assistant", "content": None, "tool_calls": [call("c1")]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "tool", "tool_call_id": "c1", "content": "43"},
        ],
        "'c1' answers no unanswered tool call",
    ),
    "tool call left unanswered": (
        [USER, ASSISTANT_CALLS, {"role": "tool", "tool_call_id": "c1", "content": "42"}, USER],
        "The following tool_call_ids did not have response messages: c2",
    ),
    "tool call unanswered at the end": (
        [USER, ASSISTANT_CALLS],
        "did not have response messages: c1, c2",
    ),
    "empty messages": ([], "Invalid 'messages': empty array"),
    "unknown role": ([{"role": "wizard", "content": "hi"}], "Invalid value: 'wizard'"),
    "user without content": (
        [{"role": "user"}],
        "Missing required parameter: 'messages[0].content'",
    ),
}


@pytest.mark.parametrize("case", OPENAI_INVALID)
async def test_openai_rejects(case: str, server: FakeLLMServer, oai: openai.AsyncOpenAI) -> None:
    messages, message = OPENAI_INVALID[case]
    with pytest.raises(openai.BadRequestError, match="Error code: 400") as caught:
        await oai.chat.completions.create(model="fake-gpt", messages=cast(Any, messages))
    assert message in caught.value.message
    assert caught.value.type == "invalid_request_error"
    assert server.requests[-1].status == 400
    assert server.requests[-1].body["messages"] == messages


async def test_openai_accepts_a_complete_tool_round_trip(oai: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [
        {"role": "developer", "content": "Use tools."},
        USER,
        ASSISTANT_CALLS,
        {"role": "tool", "tool_call_id": "c2", "content": "2"},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "1"}]},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
    completion = await oai.chat.completions.create(model="fake-gpt", messages=messages)
    assert completion.choices[0].message.content == (
        'Fake reply to "thanks" (user message #2; first: "hi")'
    )


async def test_openai_missing_fields_and_stream_options(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="Missing required parameter: 'messages'"):
        await oai.chat.completions.create(model="fake-gpt", messages=cast(Any, openai.omit))
    with pytest.raises(openai.BadRequestError, match="you must provide a model parameter"):
        await oai.chat.completions.create(model="", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="'stream_options' parameter is only allowed"):
        await oai.chat.completions.create(
            model="fake-gpt",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        )


def tool_use(tool_id: str) -> ToolUseBlockParam:
    return {"type": "tool_use", "id": tool_id, "name": "f", "input": {}}


def tool_result(tool_id: str) -> ToolResultBlockParam:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": "42"}


HI = {"role": "user", "content": "hi"}

ANTHROPIC_INVALID = {
    "system role": ([{"role": "system", "content": "rules"}, HI], 'Unexpected role "system"'),
    "unknown role": ([{"role": "tool", "content": "x"}], "Input should be 'user' or 'assistant'"),
    "assistant first": ([{"role": "assistant", "content": "hi"}, HI], "first message must use"),
    "empty string": ([HI, {"role": "assistant", "content": ""}, HI], "must have non-empty content"),
    "empty text block": (
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
        "messages.0.content.0.text: text content blocks must be non-empty",
    ),
    "orphan tool result": (
        [
            HI,
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [tool_result("t9")]},
        ],
        "unexpected `tool_use_id` found in `tool_result` blocks: t9",
    ),
    "tool result not right after its call": (
        [
            HI,
            {"role": "assistant", "content": [tool_use("t1")]},
            {"role": "user", "content": [tool_result("t1")]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [tool_result("t1")]},
        ],
        "messages.4.content.0: unexpected `tool_use_id`",
    ),
    "unanswered tool use": (
        [
            HI,
            {"role": "assistant", "content": [tool_use("t1"), tool_use("t2")]},
            {"role": "user", "content": [tool_result("t1")]},
        ],
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t2",
    ),
}


@pytest.mark.parametrize("case", ANTHROPIC_INVALID)
async def test_anthropic_rejects(
    case: str, server: FakeLLMServer, claude: anthropic.AsyncAnthropic
) -> None:
    messages, message = ANTHROPIC_INVALID[case]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="fake-claude", max_tokens=50, messages=cast(Any, messages), tools=TOOLS
        )
    assert caught.value.type == "invalid_request_error"
    assert caught.value.api_message is not None
    assert message in caught.value.api_message
    assert server.requests[-1].status == 400


async def test_anthropic_wants_tools_defined_when_the_history_uses_them(
    claude: anthropic.AsyncAnthropic,
) -> None:
    history: Any = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [tool_use("t1")]},
        {"role": "user", "content": [tool_result("t1")]},
    ]
    with pytest.raises(anthropic.BadRequestError, match="must define tools"):
        await claude.messages.create(model="fake-claude", max_tokens=50, messages=history)


async def test_anthropic_missing_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required"):
        await claude.messages.create(
            model="fake-claude",
            max_tokens=cast(Any, anthropic.omit),
            messages=[{"role": "user", "content": "hi"}],
            timeout=10,  # else the SDK computes one from max_tokens
        )


async def test_anthropic_accepts_merged_turns_and_a_tool_round_trip(
    claude: anthropic.AsyncAnthropic,
) -> None:
    message = await claude.messages.create(
        model="fake-claude",
        max_tokens=50,
        system=[{"type": "text", "text": "Use tools."}],
        messages=[
            {"role": "user", "content": "first"},
            {"role": "user", "content": "second, same turn"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me see."}]},
            {"role": "assistant", "content": [tool_use("t1"), tool_use("t2")]},
            {"role": "user", "content": [tool_result("t2"), tool_result("t1")]},
            {"role": "assistant", "content": "Both done."},
            {"role": "user", "content": "great"},
        ],
        tools=TOOLS,
    )
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == 'Fake reply to "great" (user message #3; first: "first")'


async def test_api_key_is_checked_when_given() -> None:
    async with FakeLLMServer(api_key="sk-right") as server:
        async with (
            openai.AsyncOpenAI(
                base_url=server.openai_base_url, api_key="sk-wrong", max_retries=0
            ) as oai,
            anthropic.AsyncAnthropic(
                base_url=server.anthropic_base_url, api_key="sk-wrong", max_retries=0
            ) as claude,
        ):
            with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
                await oai.chat.completions.create(
                    model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
                )
            with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
                await claude.messages.create(
                    model="fake-claude", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
                )
            with pytest.raises(openai.AuthenticationError):
                await oai.models.list()
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key="sk-right", max_retries=0
        ) as oai:
            await oai.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
            )
    assert [r.status for r in server.requests] == [401, 401, 401, 200]


async def test_raw_http_without_keys_headers_or_json(server: FakeLLMServer) -> None:
    """What the SDKs never send, sent by hand: missing keys, no anthropic-version, bad JSON."""
    body = {"model": "fake-claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession(server.url) as http:
        async with http.post("/v1/chat/completions", json={"model": "fake-gpt"}) as response:
            assert response.status == 401
            assert "didn't provide an API key" in (await response.json())["error"]["message"]
        async with http.post(
            "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        ) as response:
            assert response.status == 401
            assert (await response.json())["error"]["type"] == "authentication_error"
        async with http.post("/v1/messages", json=body, headers={"x-api-key": "k"}) as response:
            assert response.status == 400
            assert (await response.json())["error"][
                "message"
            ] == "anthropic-version: header is required"
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with http.post("/v1/messages", json=body, headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["type"] == "message"
        async with http.post(
            "/v1/chat/completions", data=b"{not json", headers={"Authorization": "Bearer k"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["type"] == "invalid_request_error"
    assert [r.status for r in server.requests] == [401, 401, 400, 200, 400]


async def test_wrong_base_url_gets_a_404_that_says_so(server: FakeLLMServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.url, api_key=OPENAI_KEY, max_retries=0) as oai:
        with pytest.raises(openai.NotFoundError, match="openai_base_url"):
            await oai.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
            )
    assert server.requests[-1].path == "/chat/completions"
    assert server.requests[-1].status == 404


async def test_unknown_model_is_not_found(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(openai.NotFoundError, match="`gpt-nope` does not exist"):
        await oai.chat.completions.create(
            model="gpt-nope", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError, match="not_found_error"):
        await claude.messages.create(
            model="claude-nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
