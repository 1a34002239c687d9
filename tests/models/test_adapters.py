"""Both adapters, end to end: a parley session, the official SDK, real HTTP, FakeLLMServer."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from parley import (
    AssistantMessageEvent,
    AuthenticationError,
    Client,
    ClientConfig,
    ConfigError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    SessionErrorEvent,
    tool,
)
from parley.config import ProviderConfig, RetryPolicy
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, utcnow
from parley.models.anthropic import to_anthropic_messages
from parley.models.openai import to_openai_messages
from parley.runtime.history import model_view
from parley.testing import FakeLLMServer, FakeReply, FakeToolCall, Fault

API = ["openai", "anthropic"]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def files_in(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.iterdir()}


MODEL = {"openai": "openai:fake-gpt", "anthropic": "anthropic:fake-claude"}
FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=1.0)


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(
        api_key="sk-test", models=("fake-gpt", "fake-claude", "gpt-4o", "claude-sonnet-4-6")
    ) as fake:
        yield fake


def providers(server: FakeLLMServer, timeout: float = 10.0) -> dict[str, ProviderConfig]:
    return {
        "openai": ProviderConfig(
            type="openai", base_url=server.openai_base_url, api_key="sk-test", timeout=timeout
        ),
        "anthropic": ProviderConfig(
            type="anthropic",
            base_url=server.anthropic_base_url,
            api_key="sk-test",
            timeout=timeout,
        ),
    }


def client_for(
    server: FakeLLMServer,
    store: str = "memory://",
    *,
    timeout: float = 10.0,
    retry: RetryPolicy = FAST_RETRY,
) -> Client:
    config = ClientConfig(providers=providers(server, timeout), retry=retry, config_files=False)
    return Client(store=store, config=config)


@pytest.mark.parametrize("api", API)
async def test_a_turn_streams_through_the_official_sdk(api: str, server: FakeLLMServer) -> None:
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api], system_message="Be brief.")
        await session.send_and_wait("You are helping with a Go project")
        events = [e async for e in session.stream("How do I initialize a module?")]
        deltas = [e.data.delta_content for e in events if e.type == "assistant.message_delta"]
        reply = (await session.messages())[-1]
        assert len(deltas) > 3
        assert "".join(deltas) == reply.text
        assert 'Fake reply to "How do I initialize a module?"' in reply.text
        assert "You are helping with a Go project" in reply.text  # its own context was sent
        assert reply.usage is not None
        assert reply.usage.input_tokens > 0
        assert reply.usage.output_tokens == len(deltas)
        assert reply.usage.cost is None  # the fake model has no price: unknown, not 0
        usage = next(e for e in events if e.type == "assistant.usage")
        assert usage.data.time_to_first_token_ms is not None
        body = server.requests[-1].body
        assert body["stream"] is True
        if api == "openai":
            assert body["messages"][0] == {"role": "system", "content": "Be brief."}
            assert body["stream_options"] == {"include_usage": True}
        else:
            assert body["system"] == "Be brief."
        assert [r.status for r in server.requests] == [200, 200]


@pytest.mark.parametrize(
    ("api", "model"), [("openai", "openai:gpt-4o"), ("anthropic", "anthropic:claude-sonnet-4-6")]
)
async def test_known_models_are_priced(api: str, model: str, server: FakeLLMServer) -> None:
    server.script(
        FakeReply(text="Priced.", input_tokens=1000, output_tokens=100, cached_tokens=200)
    )
    async with client_for(server) as client:
        session = await client.create_session(model=model)
        reply = await session.send_and_wait("price me")
        assert reply.usage is not None
        assert reply.usage.cached_tokens == 200
        assert reply.usage.input_tokens == 1000
        assert reply.usage.cost is not None
        assert reply.usage.cost > 0
        info = await client.get_session(session.session_id)
        assert info.usage.cost == pytest.approx(reply.usage.cost)


@pytest.mark.parametrize("api", API)
async def test_rate_limits_and_server_errors_are_retried(api: str, server: FakeLLMServer) -> None:
    server.script(Fault.rate_limit(retry_after=0.05), Fault.server_error(503), FakeReply(text="ok"))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api])
        reply = await session.send_and_wait("try hard")
        assert reply.text == "ok"
        assert [r.status for r in server.requests] == [429, 503, 200]


@pytest.mark.parametrize("api", API)
async def test_retries_are_bounded_then_the_turn_fails_and_the_session_goes_on(
    api: str, server: FakeLLMServer
) -> None:
    server.script(*[Fault.rate_limit(retry_after=0.01)] * 3, FakeReply(text="later"))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api])
        errors: list[SessionErrorEvent] = []
        session.on(lambda e: errors.append(e) if isinstance(e, SessionErrorEvent) else None)
        with pytest.raises(RateLimitError) as info:
            await session.send_and_wait("first")
        assert info.value.retry_after == pytest.approx(0.01)
        assert len(server.requests) == 3  # max_attempts
        assert errors[0].data.error_type == "RateLimitError"
        stored = await session.messages()
        assert stored[0].text == "first"
        assert stored[1].interrupted
        assert stored[1].error is not None
        assert "429" in stored[1].error
        assert (await session.send_and_wait("second")).text == "later"


async def test_a_retry_after_longer_than_max_delay_is_not_waited_for(
    server: FakeLLMServer,
) -> None:
    server.script(Fault.rate_limit(retry_after=120))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL["openai"])
        with pytest.raises(RateLimitError):
            await session.send_and_wait("no waiting two minutes")
        assert len(server.requests) == 1


@pytest.mark.parametrize("api", API)
async def test_a_bad_key_is_not_retried(api: str, server: FakeLLMServer) -> None:
    config = {
        name: ProviderConfig(type=p.type, base_url=p.base_url, api_key="sk-wrong")
        for name, p in providers(server).items()
    }
    async with Client(
        store="memory://", config=ClientConfig(providers=config, config_files=False)
    ) as client:
        session = await client.create_session(model=MODEL[api])
        with pytest.raises(AuthenticationError, match="API key"):
            await session.send_and_wait("let me in")
        assert [r.status for r in server.requests] == [401]


@pytest.mark.parametrize("api", API)
async def test_a_hanging_provider_times_out(api: str, server: FakeLLMServer) -> None:
    server.script(Fault.hang())
    async with client_for(server, timeout=0.3, retry=RetryPolicy(max_attempts=1)) as client:
        session = await client.create_session(model=MODEL[api])
        with pytest.raises(ProviderTimeoutError, match="timeout="):
            await session.send_and_wait("hello?")
        assert (await session.messages())[1].interrupted


@pytest.mark.parametrize("api", API)
@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (Fault.drop_mid_stream(after_tokens=2), ProviderUnavailableError, "broke off"),
        (Fault.malformed_chunk(), ProviderResponseError, "malformed"),
    ],
)
async def test_a_broken_stream_keeps_the_partial_reply(
    api: str, fault: Fault, error: type[Exception], message: str, server: FakeLLMServer
) -> None:
    server.script(fault, FakeReply(text="whole again"))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api])
        with pytest.raises(error, match=message):
            await session.send_and_wait("Tell me everything you know about streams")
        assert len(server.requests) == 1  # text had streamed: never retried
        partial = (await session.messages())[1]
        assert partial.interrupted
        assert partial.text  # the deltas that arrived are kept
        assert (await session.send_and_wait("again")).text == "whole again"


@pytest.mark.parametrize("api", API)
async def test_an_unknown_model_at_the_provider_is_a_request_error(
    api: str, server: FakeLLMServer
) -> None:
    async with client_for(server) as client:
        model = "openai:no-such-model" if api == "openai" else "anthropic:no-such-model"
        session = await client.create_session(model=model)
        with pytest.raises(ProviderRequestError, match="404"):
            await session.send_and_wait("hi")
        assert len(server.requests) == 1


async def test_an_unreachable_provider_is_unavailable(server: FakeLLMServer) -> None:
    dead = ProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1", api_key="k")
    config = ClientConfig(providers={"dead": dead}, retry=FAST_RETRY, config_files=False)
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model="dead:x")
        with pytest.raises(ProviderUnavailableError, match="cannot reach"):
            await session.send_and_wait("anyone?")


async def test_switching_providers_keeps_a_history_each_accepts(server: FakeLLMServer) -> None:
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL["openai"])
        await session.send_and_wait("one")
        await session.send_and_wait("two")
        await session.set_model(MODEL["anthropic"])
        reply = await session.send_and_wait("three")
        assert "user message #3" in reply.text
        assert server.requests[-1].api == "anthropic"
        await session.set_model(MODEL["openai"])
        await session.send_and_wait("four")
        assert [r.status for r in server.requests] == [200] * 4
        sent = server.requests[-1].body["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]


async def test_keys_never_reach_the_store_or_the_logs(
    server: FakeLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test"
    db = tmp_path / "keys.db"
    byok = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key=secret)
    caplog.set_level(logging.DEBUG)
    async with client_for(server, f"sqlite:///{db}") as client:
        mine = await client.create_session(model="fake-gpt", provider=byok, session_id="byok")
        await mine.send_and_wait("my own key")
        routed = await client.create_session(model=MODEL["anthropic"])
        await routed.send_and_wait("the client's key")
        info = await client.get_session("byok")
        assert info.provider is not None
        assert info.provider.api_key is None
        assert info.provider.base_url == server.openai_base_url
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"  # it was used
    for path, content in files_in(tmp_path).items():  # the database, its WAL, the lock
        assert secret.encode() not in content, path
    assert secret not in caplog.text
    assert caplog.records  # the SDKs and parley did log, at DEBUG


async def test_a_session_with_its_own_provider_needs_it_again_on_resume(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    byok = ProviderConfig(type="anthropic", base_url=server.anthropic_base_url, api_key="sk-test")
    async with client_for(server, url) as client:
        session = await client.create_session(
            model="fake-claude", provider=byok, session_id="mine", on_busy="reject"
        )
        await session.send_and_wait("first")
    async with client_for(server, url) as client:
        with pytest.raises(ConfigError, match="provider=ProviderConfig"):
            await client.resume_session("mine")
        again = await client.resume_session("mine", provider=byok)
        assert "#2" in (await again.send_and_wait("second")).text
        assert (await client.get_session("mine")).on_busy == "reject"
    assert all(r.api == "anthropic" for r in server.requests)


async def test_a_missing_key_fails_at_create_not_at_send(server: FakeLLMServer) -> None:
    keyless = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key_env="NOPE")
    config = ClientConfig(providers={"corp": keyless}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        with pytest.raises(ConfigError, match="set NOPE"):
            await client.create_session(model="corp:fake-gpt")
        with pytest.raises(ConfigError, match="set NOPE"):
            await client.create_session(model="fake-gpt", provider=keyless)
        assert len(await client.list_sessions()) == 0
    assert server.requests == []


async def test_converted_tool_histories_are_valid_for_both_apis(server: FakeLLMServer) -> None:
    """A history with a tool call, its result and an interrupted reply, sent to both APIs."""
    history = [
        Message.user("What is the weather in Paris?"),
        Message(
            id="a1",
            role="assistant",
            parts=(
                TextPart(text="Let me check."),
                ToolCallPart(call_id="call_1", name="weather", arguments={"city": "Paris"}),
            ),
            created_at=utcnow(),
        ),
        Message(
            id="t1",
            role="tool",
            parts=(ToolResultPart(call_id="call_1", content="18 C"),),
            created_at=utcnow(),
        ),
        Message(id="a2", role="assistant", parts=(), created_at=utcnow(), interrupted=True),
        Message.user("And tomorrow?"),
    ]
    view = model_view(history)
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="sk-test", max_retries=0
    ) as oai:
        messages: Any = to_openai_messages("Be brief.", view)
        await oai.chat.completions.create(model="fake-gpt", messages=messages)
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="sk-test", max_retries=0
    ) as claude:
        turns: Any = to_anthropic_messages(view)
        weather: Any = [{"name": "weather", "description": "w", "input_schema": {"type": "object"}}]
        await claude.messages.create(
            model="fake-claude", max_tokens=100, messages=turns, tools=weather
        )
    assert [r.status for r in server.requests] == [200, 200]


@pytest.mark.parametrize("api", API)
async def test_a_stream_dropped_before_any_text_is_retried(api: str, server: FakeLLMServer) -> None:
    server.script(Fault.drop_mid_stream(after_tokens=0), FakeReply(text="second try"))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api])
        assert (await session.send_and_wait("hi")).text == "second try"
        assert len(server.requests) == 2


async def test_a_keyless_provider_never_sends_the_vendors_key(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-real-key")
    local = {
        "local-a": ProviderConfig(
            type="anthropic", base_url=server.anthropic_base_url, key_required=False
        ),
        "local-o": ProviderConfig(
            type="openai", base_url=server.openai_base_url, key_required=False
        ),
    }
    config = ClientConfig(providers=local, config_files=False)
    async with Client(store="memory://", config=config) as client:
        for model in ("local-a:fake-claude", "local-o:gpt-4o"):
            session = await client.create_session(model=model)
            with pytest.raises(AuthenticationError):  # this fake wants sk-test
                await session.send_and_wait("hi")
    sent = [
        r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in server.requests
    ]
    assert all("real-key" not in header for header in sent)


async def test_a_restarted_client_builds_its_providers_again(server: FakeLLMServer) -> None:
    client = client_for(server)
    await client.start()
    session = await client.create_session(model=MODEL["openai"])
    await session.send_and_wait("before")
    await client.stop()
    await client.start()
    for api in API:
        again = await client.create_session(model=MODEL[api])
        assert (await again.send_and_wait("after")).text
    await client.stop()


async def test_endpoints_other_than_the_vendors_are_not_priced_as_theirs(
    server: FakeLLMServer,
) -> None:
    mirror = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-test")
    config = ClientConfig(providers={"mirror": mirror}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model="mirror:gpt-4o")
        reply = await session.send_and_wait("what does this cost?")
        assert reply.usage is not None
        assert reply.usage.cost is None


async def test_secrets_in_a_url_stay_out_of_errors_and_the_history() -> None:
    leaky = ProviderConfig(
        type="openai", base_url="http://user:sk-in-url@127.0.0.1:9/v1?key=sk-in-query", api_key="k"
    )
    config = ClientConfig(
        providers={"leaky": leaky}, retry=RetryPolicy(max_attempts=1), config_files=False
    )
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model="leaky:x")
        with pytest.raises(ProviderUnavailableError) as info:
            await session.send_and_wait("hi")
        stored = (await session.messages())[-1].error or ""
    for text in (str(info.value), stored):
        assert "sk-in-url" not in text
        assert "sk-in-query" not in text


@pytest.mark.parametrize("api", API)
async def test_finish_reasons_reach_the_message_event(api: str, server: FakeLLMServer) -> None:
    server.script(FakeReply(text="cut short", finish_reason="length"), FakeReply(text="done"))
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[api])
        for expected in ("length", "stop"):
            events = [e async for e in session.stream("go")]
            final = next(e for e in events if isinstance(e, AssistantMessageEvent))
            assert final.data.finish_reason == expected


async def test_a_session_with_its_own_provider_must_name_its_model(server: FakeLLMServer) -> None:
    byok = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-test")
    async with client_for(server) as client:
        with pytest.raises(ConfigError, match="model="):
            await client.create_session(provider=byok)
    assert server.requests == []


@pytest.mark.parametrize("api", API)
async def test_the_reply_budget_is_configurable(api: str, server: FakeLLMServer) -> None:
    configs = {
        name: dataclasses.replace(config, max_tokens=123)
        for name, config in providers(server).items()
    }
    config = ClientConfig(providers=configs, config_files=False)
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model=MODEL[api])
        await session.send_and_wait("short, please")
    body = server.requests[-1].body
    assert body["max_completion_tokens" if api == "openai" else "max_tokens"] == 123


async def test_the_fake_server_reports_unused_script_items(server: FakeLLMServer) -> None:
    server.script(FakeReply(text="used"), FakeReply(text="never"))
    async with client_for(server) as client:
        await (await client.create_session(model=MODEL["openai"])).send_and_wait("one")
    assert server.remaining == 1
    with pytest.raises(AssertionError, match="never used"):
        server.assert_consumed()


async def test_azure_openai_deployments_api_version_and_api_key_header(
    server: FakeLLMServer,
) -> None:
    azure = ProviderConfig(
        type="azure", base_url=server.url, api_key="sk-test", api_version="2024-10-21"
    )
    config = ClientConfig(providers={"azure": azure}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model="azure:fake-gpt")
        reply = await session.send_and_wait("hello Azure")
    assert 'Fake reply to "hello Azure"' in reply.text
    request = server.requests[-1]
    assert request.path == "/openai/deployments/fake-gpt/chat/completions"
    assert request.headers["api-key"] == "sk-test"
    assert "authorization" not in request.headers
    assert request.status == 200  # the fake refuses Azure calls without ?api-version=


async def test_provider_on_resume_must_fit_the_session(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    byok = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-test")
    other = dataclasses.replace(byok, api_key="sk-other")
    async with client_for(server, url) as client:
        routed = await client.create_session(model="echo", session_id="routed")
        await routed.close()
        with pytest.raises(ConfigError, match="routes its model through the client"):
            await client.resume_session("routed", provider=byok)
        mine = await client.create_session(model="fake-gpt", provider=byok, session_id="mine")
        assert await client.resume_session("mine", provider=byok) == mine  # the same: fine
        with pytest.raises(ConfigError, match="open with another provider"):
            await client.resume_session("mine", provider=other)
    assert server.requests == []


async def test_local_servers_get_max_tokens_and_vendors_max_completion_tokens(
    server: FakeLLMServer,
) -> None:
    local = ProviderConfig(
        type="openai", base_url=server.openai_base_url, api_key="sk-test", max_tokens=50
    )
    vendor = dataclasses.replace(local, max_tokens=60)
    config = ClientConfig(providers={"local": local, "openai": vendor}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        await (await client.create_session(model="local:fake-gpt")).send_and_wait("a")
        await (await client.create_session(model="openai:fake-gpt")).send_and_wait("b")
    first, second = (r.body for r in server.requests)
    assert first["max_tokens"] == 50
    assert "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 60
    assert "max_tokens" not in second


async def test_an_anthropic_request_without_tools_after_a_tool_history(
    server: FakeLLMServer,
) -> None:
    server.script(
        FakeReply(tool_calls=(FakeToolCall(id="t1", name="add", arguments={"a": 1, "b": 2}),)),
        FakeReply(text="3"),
        FakeReply(text="no tools now"),
    )
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL["anthropic"], tools=[add])
        assert (await session.send_and_wait("add")).text == "3"
        await session.close()
        plain = await client.resume_session(session.session_id)  # no tools given again
        assert (await plain.send_and_wait("chat")).text == "no tools now"
    assert [r.status for r in server.requests] == [200, 200, 200]
    stub = server.requests[-1].body["tools"]
    assert [t["name"] for t in stub] == ["add"]


@pytest.mark.parametrize("first", API)
async def test_tool_history_survives_a_provider_switch(first: str, server: FakeLLMServer) -> None:
    server.script(
        FakeReply(tool_calls=(FakeToolCall(id="t1", name="add", arguments={"a": 1, "b": 2}),)),
        FakeReply(text="3"),
        FakeReply(text="still fine"),
    )
    async with client_for(server) as client:
        session = await client.create_session(model=MODEL[first], tools=[add])
        assert (await session.send_and_wait("add")).text == "3"
        other = "anthropic" if first == "openai" else "openai"
        await session.set_model(MODEL[other])
        assert (await session.send_and_wait("again")).text == "still fine"
    assert [r.status for r in server.requests] == [200, 200, 200]
    assert server.requests[-1].api == other
