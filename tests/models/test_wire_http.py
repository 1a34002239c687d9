"""What the official SDKs did for their users, kept by the lean wire path: proxies from the
environment, extra headers, credentials in a URL, connection reuse, a clear error for an
endpoint that does not stream, and timeouts on the wait for a reply and for each chunk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

import pytest
from aiohttp import web
from loopback import loopback

from parley import (
    Client,
    ClientConfig,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from parley.config import ProviderConfig, RetryPolicy
from parley.testing import FakeLLMServer, FakeReply, Fault

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(api_key="sk-test") as fake:
        yield fake


def client(**providers: ProviderConfig) -> Client:
    config = ClientConfig(
        providers=providers, retry=RetryPolicy(max_attempts=1), config_files=False
    )
    return Client(store="memory://", config=config)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_proxy_from_the_environment_carries_the_requests(
    api: Literal["openai", "anthropic"], server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider's host does not resolve: only the proxy (the fake server) can answer.
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    base = "http://provider.invalid" + ("/v1" if api == "openai" else "")
    async with client(p=ProviderConfig(type=api, base_url=base, api_key="sk-test")) as parley:
        model = "p:fake-gpt" if api == "openai" else "p:fake-claude"
        reply = await (await parley.create_session(model=model)).send_and_wait("via proxy")
    assert "via proxy" in reply.text
    assert server.requests[-1].headers["host"] == "provider.invalid"


async def test_no_proxy_sends_loopback_directly(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    config = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-test")
    async with client(p=config) as parley:
        reply = await (await parley.create_session(model="p:fake-gpt")).send_and_wait("direct")
    assert "direct" in reply.text


async def test_extra_headers_are_sent_and_win(server: FakeLLMServer) -> None:
    config = ProviderConfig(
        type="openai",
        base_url=server.openai_base_url,
        api_key="sk-test",
        headers={"Helicone-Auth": "Bearer sk-helicone", "User-Agent": "my-app/2"},
    )
    async with client(p=config) as parley:
        await (await parley.create_session(model="p:fake-gpt")).send_and_wait("hi")
    headers = server.requests[-1].headers
    assert headers["helicone-auth"] == "Bearer sk-helicone"
    assert headers["user-agent"] == "my-app/2"
    assert headers["authorization"] == "Bearer sk-test"


async def test_credentials_in_the_url_are_basic_auth_for_a_keyless_provider(
    server: FakeLLMServer,
) -> None:
    base = server.openai_base_url.replace("http://", "http://me:secret@")
    config = ProviderConfig(type="openai", base_url=base, key_required=False)
    async with client(p=config) as parley:
        session = await parley.create_session(model="p:fake-gpt")
        with pytest.raises(Exception, match="401"):  # the fake wants its key, but saw ours
            await session.send_and_wait("hi")
    assert server.requests[-1].headers["authorization"] == "Basic bWU6c2VjcmV0"


REPLY = (
    b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def openai_at(url: str) -> ProviderConfig:
    return ProviderConfig(type="openai", base_url=url, api_key="k")


@asynccontextmanager
async def endpoint(handler: Handler) -> AsyncIterator[str]:
    """A one-route OpenAI-style endpoint on loopback; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with loopback(app) as url:
        yield f"{url}/v1"


async def test_turns_reuse_one_connection() -> None:
    peers: list[object] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(REPLY)
        await response.write_eof()
        return response

    async with endpoint(stream) as url, client(p=openai_at(url)) as parley:
        session = await parley.create_session(model="p:m")
        for turn in range(10):
            assert (await session.send_and_wait(f"turn {turn}")).text == "hi"
    assert len(peers) == 10
    assert len(set(peers)) == 1  # one connection, kept alive from turn to turn


async def test_an_event_stream_labelled_otherwise_is_still_read() -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=REPLY, content_type="text/plain")

    async with endpoint(plain) as url, client(p=openai_at(url)) as parley:
        session = await parley.create_session(model="p:m")
        assert (await session.send_and_wait("hi")).text == "hi"


async def test_an_endpoint_that_does_not_stream_is_a_clear_error() -> None:
    async def json_reply(request: web.Request) -> web.Response:
        return web.json_response({"choices": [{"message": {"content": "not streamed"}}]})

    async with endpoint(json_reply) as url, client(p=openai_at(url)) as parley:
        session = await parley.create_session(model="p:m")
        with pytest.raises(ProviderResponseError, match="not an event stream"):
            await session.send_and_wait("hi")
        assert (await session.messages())[1].interrupted


# --- timeouts: the wait for the reply to start, then for each next chunk -------------------


def provider_for(api: str, server: FakeLLMServer, timeout: float) -> ProviderConfig:
    base = server.openai_base_url if api == "openai" else server.anthropic_base_url
    return ProviderConfig(type=api, base_url=base, api_key="sk-test", timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_stream_that_stalls_midway_times_out_and_keeps_what_came(
    api: str, server: FakeLLMServer
) -> None:
    server.script(Fault.stall_mid_stream(after_tokens=2))
    async with client(p=provider_for(api, server, timeout=0.3)) as parley:
        session = await parley.create_session(model="p:fake-gpt")
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match="timeout="):
            await session.send_and_wait("one two three four five")
        assert 0.3 <= time.monotonic() - started < 5
        stored = (await session.messages())[1]
        assert stored.interrupted
        assert stored.text == "Fake reply "  # the two deltas that came before the stall


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_slow_stream_never_times_out_while_chunks_still_come(api: str) -> None:
    # Each wait (0.15 s to start, 0.1 s between chunks) is under the 0.3 s timeout; the whole
    # reply takes about four times as long.
    async with FakeLLMServer(time_to_first_token=0.15, tokens_per_second=10) as slow:
        slow.script(FakeReply(text="one two three four five six seven eight nine ten"))
        async with client(p=provider_for(api, slow, timeout=0.3)) as parley:
            session = await parley.create_session(model="p:fake-gpt")
            started = time.monotonic()
            reply = await session.send_and_wait("take your time")
            assert time.monotonic() - started > 1.0
    assert reply.text == "one two three four five six seven eight nine ten"
    assert not reply.interrupted


async def test_a_reply_that_never_starts_times_out(server: FakeLLMServer) -> None:
    server.script(Fault.hang())
    async with client(p=provider_for("openai", server, timeout=0.2)) as parley:
        session = await parley.create_session(model="p:fake-gpt")
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match="did not answer in time"):
            await session.send_and_wait("hello?")
        assert 0.2 <= time.monotonic() - started < 5


async def test_an_error_reply_whose_body_stalls_times_out() -> None:
    release = asyncio.Event()

    async def stalling_error(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"error": {"message": "half')
        await release.wait()
        return response

    async with endpoint(stalling_error) as url:
        config = ProviderConfig(type="openai", base_url=url, api_key="k", timeout=0.2)
        async with client(p=config) as parley:
            session = await parley.create_session(model="p:m")
            started = time.monotonic()
            with pytest.raises(ProviderError, match="500"):
                await session.send_and_wait("hi")
            assert time.monotonic() - started < 3
        release.set()
