"""FakeLLMServer through the official SDKs over real HTTP: replies, streams, tools, timing.

Faults are in test_fake_faults.py, request validation in test_fake_validation.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable

import anthropic
import openai
import pytest
from anthropic.types import TextBlock, ToolUseBlock
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageFunctionToolCall

from conftest import ANTHROPIC_KEY, OPENAI_KEY
from parley.errors import ConfigError
from parley.testing.fake_server import FakeLLMServer, FakeReply, FakeToolCall, Fault

WEATHER = FakeToolCall(id="call_1", name="get_weather", arguments={"city": "Paris", "days": 2})


async def test_openai_reply_quotes_the_conversation(
    server: FakeLLMServer, oai: openai.AsyncOpenAI
) -> None:
    completion = await oai.chat.completions.create(
        model="fake-gpt",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is asyncio?"},
            {"role": "assistant", "content": "A library."},
            {"role": "user", "content": "Tell me more"},
        ],
    )
    choice = completion.choices[0]
    assert choice.message.content == (
        'Fake reply to "Tell me more" (user message #2; first: "What is asyncio?")'
    )
    assert choice.finish_reason == "stop"
    assert completion.model == "fake-gpt"
    assert completion.object == "chat.completion"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 10  # words in every message
    assert completion.usage.completion_tokens == 13  # words in the reply
    assert completion.usage.total_tokens == 23
    recorded = server.requests[-1]
    assert (recorded.api, recorded.path, recorded.status) == ("openai", "/v1/chat/completions", 200)
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert recorded.body["messages"][-1] == {"role": "user", "content": "Tell me more"}


async def test_default_reply_shortens_long_quotes(oai: openai.AsyncOpenAI) -> None:
    long = "word " * 40
    completion = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": long}]
    )
    text = completion.choices[0].message.content or ""
    quoted = text.split('"')[1]
    assert len(quoted) == 60
    assert quoted.endswith("…")


async def test_openai_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="fake-gpt",
        messages=[{"role": "user", "content": "Stream me something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks: list[ChatCompletionChunk] = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(deltas)
    assert (
        text
        == 'Fake reply to "Stream me something" (user message #1; first: "Stream me something")'
    )
    assert len([d for d in deltas if d]) == len(text.split())  # one word per delta
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, len(text.split()))
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_stream_without_usage_has_no_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_tool_calls(server: FakeLLMServer, oai: openai.AsyncOpenAI) -> None:
    server.script(FakeReply(tool_calls=(WEATHER,)), FakeReply(text="Sunny.", tool_calls=(WEATHER,)))
    completion = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "Weather?"}]
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.function.name) == ("call_1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 2}

    stream = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "Weather?"}], stream=True
    )
    text, names, ids, arguments, finish = "", [], [], "", None
    async for chunk in stream:
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            assert delta.index == 0
            ids += [delta.id] if delta.id else []
            if delta.function is not None:
                names += [delta.function.name] if delta.function.name else []
                arguments += delta.function.arguments or ""
    assert (text, names, ids, finish) == ("Sunny.", ["get_weather"], ["call_1"], "tool_calls")
    assert json.loads(arguments) == {"city": "Paris", "days": 2}


async def test_openai_usage_counts_can_be_scripted(
    server: FakeLLMServer, oai: openai.AsyncOpenAI
) -> None:
    server.script(FakeReply(text="ok", input_tokens=120, output_tokens=7, cached_tokens=100))
    completion = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 7, 127)
    assert usage.prompt_tokens_details.cached_tokens == 100


async def test_openai_models_list(oai: openai.AsyncOpenAI) -> None:
    models = [model async for model in oai.models.list()]
    assert [m.id for m in models] == ["fake-gpt", "fake-claude"]
    assert all(m.object == "model" for m in models)


async def test_anthropic_reply(server: FakeLLMServer, claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="fake-claude",
        max_tokens=100,
        system="Be brief.",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "First question"}]},
            {"role": "assistant", "content": "An answer."},
            {"role": "user", "content": "Second one"},
        ],
    )
    block = message.content[0]
    assert isinstance(block, TextBlock)
    assert block.text == 'Fake reply to "Second one" (user message #2; first: "First question")'
    assert (message.role, message.stop_reason, message.model) == (
        "assistant",
        "end_turn",
        "fake-claude",
    )
    assert message.usage.input_tokens == 8
    assert message.usage.output_tokens == len(block.text.split())
    recorded = server.requests[-1]
    assert (recorded.api, recorded.path, recorded.status) == ("anthropic", "/v1/messages", 200)
    assert recorded.body["system"] == "Be brief."
    assert "anthropic-version" in recorded.headers


async def test_anthropic_stream_helper(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "Stream please"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    expected = 'Fake reply to "Stream please" (user message #1; first: "Stream please")'
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected.split())
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, len(pieces))


async def test_anthropic_raw_stream_events(claude: anthropic.AsyncAnthropic) -> None:
    stream = await claude.messages.create(
        model="fake-claude",
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    types = [event.type async for event in stream]
    assert types[:2] == ["message_start", "content_block_start"]
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_anthropic_tool_use(server: FakeLLMServer, claude: anthropic.AsyncAnthropic) -> None:
    tool = FakeToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
    server.script(
        FakeReply(text="Let me check.", tool_calls=(tool,)), FakeReply(tool_calls=(tool,))
    )
    async with claude.messages.stream(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        final = await stream.get_final_message()
    text, use = final.content
    assert isinstance(text, TextBlock)
    assert text.text == "Let me check."
    assert isinstance(use, ToolUseBlock)
    assert (use.id, use.name, use.input) == ("toolu_1", "get_weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use"

    message = await claude.messages.create(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "Weather?"}]
    )
    assert [b.type for b in message.content] == ["tool_use"]
    assert message.stop_reason == "tool_use"


async def test_anthropic_cached_tokens_are_cache_reads(
    server: FakeLLMServer, claude: anthropic.AsyncAnthropic
) -> None:
    reply = FakeReply(text="ok", input_tokens=120, output_tokens=7, cached_tokens=100)
    server.script(reply, reply, FakeReply(text="cut", finish_reason="length"))
    message = await claude.messages.create(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (20, 100)
    assert message.usage.output_tokens == 7
    async with claude.messages.stream(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = await stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (20, 100)
    assert final.usage.output_tokens == 7
    message = await claude.messages.create(
        model="fake-claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "max_tokens"


async def test_anthropic_models_list(claude: anthropic.AsyncAnthropic) -> None:
    models = [model async for model in claude.models.list()]
    assert [m.id for m in models] == ["fake-gpt", "fake-claude"]


async def test_script_is_fifo_then_default(server: FakeLLMServer, oai: openai.AsyncOpenAI) -> None:
    server.script(FakeReply(text="one"), FakeReply(text="two"))
    texts = []
    for _ in range(3):
        completion = await oai.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
        )
        texts.append(completion.choices[0].message.content)
    assert texts[:2] == ["one", "two"]
    assert (texts[2] or "").startswith("Fake reply to")
    server.script(FakeReply(text="never used"))
    server.clear()
    assert server.requests == []
    completion = await oai.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
    )
    assert (completion.choices[0].message.content or "").startswith("Fake reply to")


async def test_concurrent_streams_each_get_their_own_reply(oai: openai.AsyncOpenAI) -> None:
    async def ask(prompt: str) -> str:
        stream = await oai.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": prompt}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    replies = await asyncio.gather(*(ask(f"question {n}") for n in range(5)))
    assert [r.split('"')[1] for r in replies] == [f"question {n}" for n in range(5)]


SIX_WORDS = FakeReply(text="a b c d e f")
STREAM_TIME = 0.2 + 5 / 50  # time to first token, then five gaps at 50 tokens per second


async def test_openai_timing() -> None:
    async with (
        FakeLLMServer(time_to_first_token=0.2, tokens_per_second=50) as server,
        openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
        ) as oai,
    ):
        server.script(SIX_WORDS, SIX_WORDS)
        loop = asyncio.get_running_loop()
        arrivals: list[float] = []
        start = loop.time()
        stream = await oai.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(loop.time())
        start_whole = loop.time()
        await oai.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
        )
        done = loop.time()
    assert len(arrivals) == 6
    assert arrivals[0] - start >= 0.2
    assert arrivals[-1] - start >= STREAM_TIME
    assert done - start_whole >= STREAM_TIME  # not streamed: the same total wait


async def test_anthropic_timing() -> None:
    async with (
        FakeLLMServer(time_to_first_token=0.2, tokens_per_second=50) as server,
        anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
        ) as claude,
    ):
        server.script(SIX_WORDS, SIX_WORDS)
        loop = asyncio.get_running_loop()
        arrivals: list[float] = []
        start = loop.time()
        async with claude.messages.stream(
            model="fake-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for _ in stream.text_stream:
                arrivals.append(loop.time())
        start_whole = loop.time()
        await claude.messages.create(
            model="fake-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        done = loop.time()
    assert len(arrivals) == 6
    assert arrivals[0] - start >= 0.2
    assert arrivals[-1] - start >= STREAM_TIME
    assert done - start_whole >= STREAM_TIME


async def test_url_needs_a_running_server() -> None:
    server = FakeLLMServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    async with server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.openai_base_url == server.url + "/v1"
        assert server.anthropic_base_url == server.url
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.openai_base_url


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="finish_reason"):
        FakeReply(finish_reason="done")
    with pytest.raises(ConfigError, match="500, 502, 503, 529"):
        Fault.server_error(404)
    with pytest.raises(ConfigError, match="tokens_per_second"):
        FakeLLMServer(tokens_per_second=0)
    with pytest.raises(ConfigError, match="script"):
        FakeLLMServer().script("text")  # type: ignore[arg-type]


@pytest.mark.slow
def test_without_aiohttp_the_error_says_what_to_install(
    run_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from parley.testing.fake_server import FakeLLMServer\n"
        "FakeLLMServer()\n"
    )
    result = run_python("-c", code)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "pip install 'parley[testing]'" in result.stderr


async def test_record_false_answers_as_usual_and_keeps_no_requests() -> None:
    async with FakeLLMServer(record=False) as server:
        oai = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=OPENAI_KEY)
        async with oai:
            completion = await oai.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
            )
            with pytest.raises(openai.NotFoundError):  # refusals are still answered
                await oai.chat.completions.create(
                    model="no-such-model", messages=[{"role": "user", "content": "hi"}]
                )
    assert (completion.choices[0].message.content or "").startswith("Fake reply to")
    assert server.requests == []
