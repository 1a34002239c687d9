"""Property: tool histories stay valid, and both real wire formats accept every request.

Random sequences of plain sends, tool calls, failing tools, several calls at once, aborts in
the middle of a tool call, switches between OpenAI and Anthropic, history windows and restarts
run through the official SDKs against FakeLLMServer, which validates tool pairing the way the
real APIs do. Every request must be accepted, and the stored history must pair every call
with exactly one later result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_tool_pairs
from parley import (
    Client,
    ClientConfig,
    ProviderConfig,
    RetryPolicy,
    Session,
    Tool,
    TurnAbortedError,
    tool,
)
from parley.testing import FakeLLMServer, FakeReply, FakeToolCall

MODELS = ("openai:fake-gpt", "anthropic:fake-claude")
OPS = ("plain", "tool", "fail", "two", "abort", "switch", "restart")


def make_tools(blocking: asyncio.Event) -> list[Tool]:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @tool
    def broken() -> str:
        """Always fails."""
        raise ValueError("broken on purpose")

    @tool
    async def block() -> str:
        """Waits until the turn is aborted."""
        blocking.set()
        await asyncio.Event().wait()
        return "never"

    return [add, broken, block]


def make_client(server: FakeLLMServer, url: str) -> Client:
    providers = {
        "openai": ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-test"),
        "anthropic": ProviderConfig(
            type="anthropic", base_url=server.anthropic_base_url, api_key="sk-test"
        ),
    }
    config = ClientConfig(
        providers=providers, retry=RetryPolicy(max_attempts=1), config_files=False
    )
    return Client(store=url, config=config)


async def scenario(url: str, ops: list[str], window: int | None) -> None:
    ids = (f"call_{n}" for n in itertools.count())
    blocking = asyncio.Event()
    tools = make_tools(blocking)
    async with FakeLLMServer(api_key="sk-test") as server:
        client = make_client(server, url)
        await client.start()
        session: Session = await client.create_session(
            model=MODELS[0], tools=tools, max_history_messages=window, session_id="p"
        )
        model = 0
        for op in ops:
            if op == "plain":
                server.script(FakeReply(text="plain answer"))
                await session.send_and_wait("just talk")
            elif op in ("tool", "fail", "two"):
                names = {"tool": ["add"], "fail": ["broken"], "two": ["add", "broken"]}[op]
                asked = tuple(
                    FakeToolCall(
                        id=next(ids), name=name, arguments={"a": 1, "b": 2} if name == "add" else {}
                    )
                    for name in names
                )
                server.script(FakeReply(tool_calls=asked), FakeReply(text="with tools"))
                await session.send_and_wait(f"use {op}")
            elif op == "abort":
                blocking.clear()
                server.script(
                    FakeReply(tool_calls=(FakeToolCall(id=next(ids), name="block", arguments={}),))
                )
                waiter = asyncio.ensure_future(session.send_and_wait("block"))
                await blocking.wait()
                await session.abort()
                with contextlib.suppress(TurnAbortedError):
                    await waiter
            elif op == "switch":
                model = 1 - model
                await session.set_model(MODELS[model])
            else:  # restart: a new client over the same file; tools are given again
                await client.stop()
                client = make_client(server, url)
                await client.start()
                session = await client.resume_session("p", tools=tools, max_history_messages=window)
        server.script(FakeReply(text="last"))
        await session.send_and_wait("are we good?")
        history = await session.messages()
        await client.stop()
        refused = [
            (r.api, r.status, r.body.get("messages")) for r in server.requests if r.status != 200
        ]
        assert refused == []
        assert server.remaining == 0
    assert_tool_pairs(history)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.sampled_from(OPS), max_size=12),
    window=st.one_of(st.none(), st.integers(min_value=2, max_value=8)),
)
def test_any_mix_of_tools_aborts_switches_and_restarts_keeps_requests_valid(
    ops: list[str], window: int | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(f"sqlite:///{Path(folder) / 'p.db'}", ops, window))
