"""Every `Fault`, through the official SDKs: which exception each SDK raises, and when.

The exception types asserted here are what provider adapters must translate; a change in an
SDK major shows up here first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from conftest import ANTHROPIC_KEY, OPENAI_KEY
from parley.testing.fake_server import FakeLLMServer, FakeReply, Fault

OPENAI_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
ANTHROPIC_HI: list[MessageParam] = [{"role": "user", "content": "hello there"}]
REPLY = FakeReply(text="one two three four five")


async def openai_text(oai: openai.AsyncOpenAI) -> str:
    completion = await oai.chat.completions.create(model="fake-gpt", messages=OPENAI_HI)
    return completion.choices[0].message.content or ""


async def anthropic_text(claude: anthropic.AsyncAnthropic) -> str:
    message = await claude.messages.create(
        model="fake-claude", max_tokens=50, messages=ANTHROPIC_HI
    )
    return "".join(b.text for b in message.content if b.type == "text")


async def read_openai_stream(oai: openai.AsyncOpenAI, received: list[str]) -> None:
    """Stream a reply, appending each text delta to `received` as it arrives."""
    stream = await oai.chat.completions.create(model="fake-gpt", messages=OPENAI_HI, stream=True)
    async for chunk in stream:
        received.append(chunk.choices[0].delta.content or "")


async def read_anthropic_stream(claude: anthropic.AsyncAnthropic, received: list[str]) -> None:
    """Stream a reply through `messages.stream()`, appending each text delta to `received`."""
    async with claude.messages.stream(
        model="fake-claude", max_tokens=50, messages=ANTHROPIC_HI
    ) as stream:
        async for text in stream.text_stream:
            received.append(text)


async def read_anthropic_events(claude: anthropic.AsyncAnthropic, received: list[str]) -> None:
    """Stream raw events through `create(stream=True)`, appending each event's type."""
    stream = await claude.messages.create(
        model="fake-claude", max_tokens=50, messages=ANTHROPIC_HI, stream=True
    )
    async for event in stream:
        received.append(event.type)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the server's side, which has no event to wait on."""
    while not condition():  # noqa: ASYNC110 - nothing to await: poll the server's record
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("retry_after", [2.0, 0.5, None])
async def test_rate_limit(
    retry_after: float | None,
    server: FakeLLMServer,
    oai: openai.AsyncOpenAI,
    claude: anthropic.AsyncAnthropic,
) -> None:
    server.script(Fault.rate_limit(retry_after=retry_after), Fault.rate_limit(retry_after))
    header = None if retry_after is None else f"{retry_after:g}"
    with pytest.raises(openai.RateLimitError) as from_openai:
        await openai_text(oai)
    assert from_openai.value.response.headers.get("retry-after") == header
    assert from_openai.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as from_anthropic:
        await anthropic_text(claude)
    assert from_anthropic.value.response.headers.get("retry-after") == header
    assert from_anthropic.value.type == "rate_limit_error"
    assert [r.status for r in server.requests] == [429, 429]
    assert await openai_text(oai)  # the script is used up: back to normal


@pytest.mark.parametrize(
    ("status", "anthropic_error"),
    [
        (500, anthropic.InternalServerError),
        (502, anthropic.InternalServerError),
        (503, anthropic.ServiceUnavailableError),
        (529, anthropic.OverloadedError),
    ],
)
async def test_server_errors(
    status: int,
    anthropic_error: type[anthropic.APIStatusError],
    server: FakeLLMServer,
    oai: openai.AsyncOpenAI,
    claude: anthropic.AsyncAnthropic,
) -> None:
    server.script(Fault.server_error(status), Fault.server_error(status))
    with pytest.raises(openai.InternalServerError) as from_openai:
        await openai_text(oai)
    assert from_openai.value.status_code == status
    assert from_openai.value.type == "server_error"
    with pytest.raises(anthropic_error) as from_anthropic:
        await anthropic_text(claude)
    assert from_anthropic.value.status_code == status
    assert [r.status for r in server.requests] == [status, status]


async def test_unauthorized(
    server: FakeLLMServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.unauthorized(), Fault.unauthorized())
    with pytest.raises(openai.AuthenticationError):
        await openai_text(oai)
    with pytest.raises(anthropic.AuthenticationError) as from_anthropic:
        await anthropic_text(claude)
    assert from_anthropic.value.type == "authentication_error"
    assert [r.status for r in server.requests] == [401, 401]


@pytest.mark.parametrize("stream", [False, True])
async def test_hang_times_out_and_the_server_carries_on(
    stream: bool, server: FakeLLMServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.hang(), Fault.hang())
    with pytest.raises(openai.APITimeoutError):
        await oai.chat.completions.create(
            model="fake-gpt", messages=OPENAI_HI, stream=stream, timeout=0.5
        )
    with pytest.raises(anthropic.APITimeoutError):
        await claude.messages.create(
            model="fake-claude", max_tokens=5, messages=ANTHROPIC_HI, stream=stream, timeout=0.5
        )
    assert [r.status for r in server.requests] == [0, 0]  # never answered
    assert await openai_text(oai)
    assert await anthropic_text(claude)


async def test_stopping_the_server_ends_a_hang() -> None:
    async with FakeLLMServer() as server:
        server.script(Fault.hang())
        client = openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
        )
        request = asyncio.ensure_future(openai_text(client))
        await until(lambda: len(server.requests) == 1)
    with pytest.raises(openai.APIConnectionError):
        await request
    await client.close()


async def test_drop_mid_stream_openai(server: FakeLLMServer, oai: openai.AsyncOpenAI) -> None:
    server.script(REPLY, Fault.drop_mid_stream(after_tokens=2))
    assert await openai_text(oai) == REPLY.text  # the fault is for the next request
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        await read_openai_stream(oai, received)
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert "".join(received) == "Fake reply "  # the default reply: the fault carries no text
    assert server.requests[-1].status == 200


async def test_drop_mid_stream_anthropic(
    server: FakeLLMServer, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.drop_mid_stream(after_tokens=3), Fault.drop_mid_stream(after_tokens=1))
    received: list[str] = []
    # anthropic 2.x does not wrap it: the raw httpx2 error escapes the stream.
    with pytest.raises(httpx2.RemoteProtocolError):
        await read_anthropic_stream(claude, received)
    assert "".join(received) == "Fake reply to "
    events: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        await read_anthropic_events(claude, events)
    assert events == ["message_start", "content_block_start", "content_block_delta"]


async def test_drop_without_streaming_is_a_connection_error(
    server: FakeLLMServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.drop_mid_stream(), Fault.drop_mid_stream())
    with pytest.raises(openai.APIConnectionError):
        await openai_text(oai)
    with pytest.raises(anthropic.APIConnectionError):
        await anthropic_text(claude)
    assert [r.status for r in server.requests] == [0, 0]


async def test_malformed_chunk(
    server: FakeLLMServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.malformed_chunk(after_tokens=1), Fault.malformed_chunk(after_tokens=2))
    received: list[str] = []
    with pytest.raises(json.JSONDecodeError):  # raw, not an openai.APIError
        await read_openai_stream(oai, received)
    assert "".join(received) == "Fake "
    received.clear()
    with pytest.raises(json.JSONDecodeError):  # raw, not an anthropic.APIError
        await read_anthropic_stream(claude, received)
    assert "".join(received) == "Fake reply "
    assert [r.status for r in server.requests] == [200, 200]


async def test_malformed_body_without_streaming(
    server: FakeLLMServer, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    server.script(Fault.malformed_chunk(), Fault.malformed_chunk())
    with pytest.raises(json.JSONDecodeError):
        await openai_text(oai)
    with pytest.raises(json.JSONDecodeError):
        await anthropic_text(claude)


async def test_a_stream_that_stalls_times_out() -> None:
    """A slow stream (one token a second) against a short read timeout, mid-stream."""
    async with (
        FakeLLMServer(tokens_per_second=1) as server,
        openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0, timeout=0.3
        ) as oai,
        anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=0.3
        ) as claude,
    ):
        received: list[str] = []
        with pytest.raises(openai.APITimeoutError):
            await read_openai_stream(oai, received)
        assert "".join(received) == "Fake "
        received.clear()
        # anthropic 2.x does not wrap errors raised while iterating a stream.
        with pytest.raises(httpx2.ReadTimeout):
            await read_anthropic_stream(claude, received)
        assert "".join(received) == "Fake "
