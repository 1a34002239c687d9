"""parley's wire path reads a stream exactly as the official SDKs do.

Each recorded stream (tests/models/streams/*.sse, in the shapes OpenAI, Azure OpenAI,
OpenRouter, Ollama and Anthropic send, and streams recorded from FakeLLMServer) is served over
real HTTP by a replay server, once to parley's adapter and once to the official SDK
(tests/models/sdk_reference.py); both must give the same events, the same usage and cost, and
the same error at the same point. The stream goes out whole, and cut into small pieces, so
that events arrive split across reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import loopback
from sdk_reference import PROVIDER, anthropic_events, openai_events

from parley.config import ProviderConfig
from parley.errors import ProviderError
from parley.messages import Message
from parley.models.anthropic import AnthropicAdapter
from parley.models.base import ModelRequest, StreamEvent
from parley.models.http import SSEDecoder
from parley.models.openai import OpenAIAdapter
from parley.testing import FakeLLMServer, FakeReply, FakeToolCall, Fault

STREAMS = Path(__file__).parent / "streams"
RECORDED = sorted(STREAMS.glob("*.sse"))
RECORDINGS = {path: path.read_bytes() for path in RECORDED}


@dataclass
class Replay:
    """What the replay server sends next: a recording, in pieces of `piece` bytes."""

    body: bytes = b""
    piece: int = 0
    drop: bool = False
    """Close the connection after the body, without ending the chunked reply."""


@pytest.fixture
async def replay() -> AsyncIterator[tuple[str, Replay]]:
    plan = Replay()

    async def serve(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        size = plan.piece or len(plan.body) or 1
        for start in range(0, len(plan.body), size):
            await response.write(plan.body[start : start + size])
        if plan.drop:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", serve)
    app.router.add_post("/v1/messages", serve)
    async with loopback(app) as url:
        yield url, plan


Outcome = tuple[list[StreamEvent], tuple[str, bool, int | None] | None]


async def outcome(events: AsyncIterator[StreamEvent]) -> Outcome:
    """The events, then the error that ended them (class, retryable, status), if any."""
    seen: list[StreamEvent] = []
    try:
        async for event in events:
            seen.append(event)
    except ProviderError as exc:
        return seen, (type(exc).__name__, exc.retryable, getattr(exc, "status", None))
    return seen, None


REQUEST = ModelRequest(model="gpt-4o-mini", messages=[Message.user("How do I start?")])
CLAUDE = ModelRequest(model="claude-sonnet-4-6", messages=[Message.user("Hello")])


async def both(url: str, api: str) -> tuple[Outcome, Outcome]:
    """The same stream read by parley's adapter, then by the official SDK."""
    config = ProviderConfig(type=api, api_key="sk-test")  # type: ignore[arg-type]
    if api == "openai":
        ours = OpenAIAdapter(PROVIDER, config, api_key="sk-test", base_url=f"{url}/v1")
        mine = await outcome(ours.stream(REQUEST))
        await ours.aclose()
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key="sk-test", max_retries=0
        ) as sdk:
            theirs = await outcome(openai_events(sdk, REQUEST))
        return mine, theirs
    claude = AnthropicAdapter(PROVIDER, config, api_key="sk-test", base_url=url)
    mine = await outcome(claude.stream(CLAUDE))
    await claude.aclose()
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-test", max_retries=0) as sdk:
        return mine, await outcome(anthropic_events(sdk, CLAUDE))


@pytest.mark.parametrize("piece", [0, 7], ids=["whole", "in-7-byte-pieces"])
@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_streams_read_as_the_official_sdks_read_them(
    path: Path, piece: int, replay: tuple[str, Replay]
) -> None:
    url, plan = replay
    plan.body, plan.piece = RECORDINGS[path], piece
    mine, theirs = await both(url, path.stem.split("-")[0])
    assert mine == theirs
    assert mine[0] or mine[1]  # a recording that says nothing would prove nothing


async def test_the_recordings_cover_text_tools_usage_prices_and_errors(
    replay: tuple[str, Replay],
) -> None:
    """What the comparisons above hold, so that they cannot pass by all being empty."""
    url, plan = replay
    kinds: set[str] = set()
    errors: set[str] = set()
    for path in RECORDED:
        plan.body = RECORDINGS[path]
        events, error = (await both(url, path.stem.split("-")[0]))[0]
        kinds |= {type(e).__name__ for e in events}
        kinds |= {"priced" for e in events if getattr(e, "cost", None)}
        errors |= {error[0]} if error else set()
    assert kinds == {
        "StreamTextDelta",
        "StreamToolCall",
        "StreamUsage",
        "StreamFinish",
        "priced",
    }
    assert errors == {"ProviderResponseError", "ProviderUnavailableError"}


FAKE_SCENARIOS: dict[str, Any] = {
    "text": FakeReply(text="A reply of several words, streamed word by word."),
    "tool-calls": FakeReply(
        text="Checking.",
        tool_calls=(
            FakeToolCall(id="c1", name="weather", arguments={"city": "Paris"}),
            FakeToolCall(id="c2", name="time", arguments={"zone": "CET", "hour24": True}),
        ),
    ),
    "length": FakeReply(text="cut short", finish_reason="length"),
    "cached": FakeReply(text="cached", input_tokens=1000, output_tokens=10, cached_tokens=400),
    "malformed": Fault.malformed_chunk(),
}


async def record(server: FakeLLMServer, api: str, item: Any) -> bytes:
    """The raw bytes FakeLLMServer streams for `item`."""
    server.script(item)
    if api == "openai":
        url, headers = f"{server.openai_base_url}/chat/completions", {"Authorization": "Bearer k"}
        body: dict[str, Any] = {"model": "gpt-4o-mini", "stream": True}
        body["stream_options"] = {"include_usage": True}
    else:
        url, headers = f"{server.anthropic_base_url}/v1/messages", {"x-api-key": "k"}
        headers["anthropic-version"] = "2023-06-01"
        body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True}
    body["messages"] = [{"role": "user", "content": "hi"}]
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status == 200
        return await r.read()


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("scenario", list(FAKE_SCENARIOS))
async def test_fake_server_streams_read_as_the_official_sdks_read_them(
    api: str, scenario: str, replay: tuple[str, Replay]
) -> None:
    async with FakeLLMServer(api_key="k", models=("gpt-4o-mini", "claude-sonnet-4-6")) as server:
        recorded = await record(server, api, FAKE_SCENARIOS[scenario])
    url, plan = replay
    plan.body, plan.piece = recorded, 5
    mine, theirs = await both(url, api)
    assert mine == theirs


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_dropped_connection_fails_alike(api: str, replay: tuple[str, Replay]) -> None:
    url, plan = replay
    plan.body = RECORDINGS[STREAMS / f"{api}-text.sse"][:600]
    plan.drop = True
    mine, theirs = await both(url, api)
    assert mine == theirs
    assert mine[1] == ("ProviderUnavailableError", True, None)


@settings(max_examples=60, deadline=None)
@given(
    path=st.sampled_from(RECORDED),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_sse_events_do_not_depend_on_how_the_bytes_are_split(path: Path, cuts: list[int]) -> None:
    data = RECORDINGS[path]
    expected = decoded_in_pieces(data, [])
    assert decoded_in_pieces(data, cuts) == expected
    assert expected  # every recording has events


def decoded_in_pieces(stream: bytes, cuts: list[int]) -> list[tuple[bytes, bytes]]:
    """What one SSEDecoder makes of `stream` fed in pieces cut at `cuts`, then closed."""
    decoder = SSEDecoder()
    got: list[tuple[bytes, bytes]] = []
    start = 0
    for cut in sorted({min(c, len(stream)) for c in cuts}):
        got += decoder.feed(stream[start:cut])
        start = cut
    return got + decoder.feed(stream[start:]) + decoder.close()


def test_sse_decoder_follows_the_specification() -> None:
    decoder = SSEDecoder()
    stream = (
        b": a comment\n"
        b"event: one\r\n"
        b"id: 7\n"
        b"retry: 1000\n"
        b"data:first\n"
        b"data: second\n\n"
        b"data: {}\n\n"
        b"\n\n"
        b"data: last, no blank line"
    )
    assert decoder.feed(stream) == [(b"one", b"first\nsecond"), (b"", b"{}")]
    assert decoder.close() == [(b"", b"last, no blank line")]


def line_by_line(stream: bytes) -> list[tuple[bytes, bytes]]:
    """The SSE specification read literally, one line at a time: the oracle for SSEDecoder."""
    events: list[tuple[bytes, bytes]] = []
    event, data = b"", list[bytes]()
    lines = stream.split(b"\n")
    last = lines.pop()
    for line in [*lines, *([last, b""] if last.rstrip(b"\r") else [])]:
        line = line.removesuffix(b"\r")
        if not line:
            if data:
                events.append((event, b"\n".join(data)))
            event, data = b"", list[bytes]()
        elif line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip()
    if data:
        events.append((event, b"\n".join(data)))
    return events


SSE_LINES = st.sampled_from(
    [
        b"data: {}",
        b'data: {"a": 1}',
        b"data:x",
        b"data: ",
        b"data: [DONE]",
        b"event: error",
        b"event: message_delta",
        b": a comment",
        b"id: 3",
        b"retry: 10",
        b"",
        b"data: \xc3\xa9 \r in the middle",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(SSE_LINES, st.sampled_from([b"\n", b"\r\n"])), max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_sse_decoder_reads_any_stream_as_the_specification_does(
    lines: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(line + end for line, end in lines)
    assert decoded_in_pieces(stream, cuts) == line_by_line(stream)
