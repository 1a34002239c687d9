"""The official Copilot Python SDK and parley serve: client-side tools, permissions, abort,
cancellation, a restarted server, and errors. A `FakeLLMServer` plays the model
(`openai:fake-gpt`, 40 tokens a second) where echo cannot: tool calls and slow replies."""

from __future__ import annotations

import asyncio

import pytest
from copilot import define_tool
from copilot.session import PermissionHandler
from copilot.session_events import (
    AssistantMessageData,
    AssistantMessageDeltaData,
    SessionIdleData,
)
from pydantic import BaseModel, Field

from copilot_runtime import Sdk
from parley import Client
from parley.testing import FakeLLMServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.slow
approve = PermissionHandler.approve_all
MODEL = "openai:fake-gpt"


class LookupIssueParams(BaseModel):
    id: str = Field(description="Issue identifier")


def _text(event: object) -> str:
    data = getattr(event, "data", None)
    assert isinstance(data, AssistantMessageData), f"not an assistant.message: {event!r}"
    return data.content


async def test_client_side_tool_round_trip(sdk: Sdk, llm: FakeLLMServer) -> None:
    """A tool made with the SDK's `define_tool` runs in the SDK's process when the model
    calls it; its result goes back to the model; permission is asked first."""
    calls: list[str] = []

    @define_tool(description="Fetch issue details from our tracker")
    async def lookup_issue(params: LookupIssueParams) -> str:
        calls.append(params.id)
        return f"issue {params.id}: the login page times out"

    asked: list[str] = []

    def on_permission(request: object, invocation: object) -> object:
        asked.append(str(getattr(request, "tool_name", "")))
        return approve(request, invocation)  # type: ignore[arg-type]

    llm.script(
        FakeReply(tool_calls=(FakeToolCall("call_1", "lookup_issue", {"id": "42"}),)),
        FakeReply(text="Issue 42 is a login timeout."),
    )
    async with sdk.client() as client:
        session = await client.create_session(
            on_permission_request=on_permission,  # type: ignore[arg-type]
            model=MODEL,
            tools=[lookup_issue],
        )
        reply = await session.send_and_wait("What is issue 42 about?", timeout=30)
    assert _text(reply) == "Issue 42 is a login timeout."
    assert calls == ["42"]
    assert asked == ["lookup_issue"]
    offered = llm.requests[0].body["tools"]
    assert [t["function"]["name"] for t in offered] == ["lookup_issue"]
    assert offered[0]["function"]["parameters"]["properties"]["id"]["type"] == "string"
    answer = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"]
    assert answer == [
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "issue 42: the login page times out",
        }
    ]


async def test_denied_permission_keeps_the_tool_from_running(sdk: Sdk, llm: FakeLLMServer) -> None:
    from copilot.generated.rpc import PermissionDecisionReject

    ran: list[str] = []

    @define_tool(description="Delete a file")
    def delete_file(params: LookupIssueParams) -> str:
        ran.append(params.id)
        return "deleted"

    llm.script(
        FakeReply(tool_calls=(FakeToolCall("call_9", "delete_file", {"id": "a.txt"}),)),
        FakeReply(text="I was not allowed to."),
    )
    async with sdk.client() as client:
        session = await client.create_session(
            on_permission_request=lambda request, invocation: PermissionDecisionReject(),
            model=MODEL,
            tools=[delete_file],
        )
        reply = await session.send_and_wait("Delete a.txt", timeout=30)
    assert _text(reply) == "I was not allowed to."
    assert ran == []
    tool_message = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"]
    assert "denied" in tool_message[0]["content"]


async def test_abort_keeps_the_partial_reply(sdk: Sdk, llm: FakeLLMServer) -> None:
    words = " ".join(f"w{i}" for i in range(400))  # 10 s at 40 tokens a second
    llm.script(FakeReply(text=words))
    async with sdk.client() as client:
        session = await client.create_session(
            on_permission_request=approve, model=MODEL, streaming=True
        )
        deltas: list[str] = []
        idle = asyncio.Event()
        some = asyncio.Event()

        def on_event(event: object) -> None:
            match getattr(event, "data", None):
                case AssistantMessageDeltaData() as data:
                    deltas.append(data.delta_content or "")
                    if len(deltas) >= 5:
                        some.set()
                case SessionIdleData():
                    idle.set()

        session.on(on_event)
        await session.send("Say many words")
        await asyncio.wait_for(some.wait(), 20)
        await session.abort()
        await asyncio.wait_for(idle.wait(), 20)
        events = await session.get_events()
        session_id = session.session_id
    stored = [e for e in events if e.type.value == "assistant.message"]
    assert len(stored) == 1
    partial = _text(stored[0])
    assert partial.startswith("w0 w1 w2 w3")
    assert len(partial) < len(words)
    await sdk.release_store()
    async with Client(store=sdk.store_url) as parley:
        history = await (await parley.resume_session(session_id)).messages()
    assert history[-1].interrupted
    assert history[-1].text == partial


async def test_send_and_wait_timeout_cancels_the_turn(sdk: Sdk, llm: FakeLLMServer) -> None:
    """The SDK's timeout sends `$/cancelRequest`; the server aborts the turn, so the session
    takes the next send at once instead of finishing the long reply first."""
    llm.script(FakeReply(text=" ".join(["slow"] * 400)), FakeReply(text="quick answer"))
    async with sdk.client() as client:
        session = await client.create_session(on_permission_request=approve, model=MODEL)
        with pytest.raises(TimeoutError):
            await session.send_and_wait("Say a lot", timeout=1.0)
        reply = await asyncio.wait_for(session.send_and_wait("Now briefly", timeout=30), 8)
    assert _text(reply) == "quick answer"


async def test_resume_after_the_server_restarts(sqlite_url: str, runtime: object) -> None:
    """History comes back from parley's store in a new runtime process."""
    one = Sdk("stdio", sqlite_url, None)
    async with one.client() as client:
        session = await client.create_session(on_permission_request=approve, model="echo:alpha")
        await session.send_and_wait("my name is Ada")
        session_id = session.session_id
    # that runtime process has exited; a new one reads the same SQLite file
    async with one.client() as client:
        again = await client.resume_session(session_id, on_permission_request=approve)
        events = await again.get_events()
        assert [e.type.value for e in events] == ["user.message", "assistant.message"]
        reply = await again.send_and_wait("what is my name?")
    assert "my name is Ada" in _text(reply)


async def test_errors_are_typed_and_clear(sdk: Sdk) -> None:
    async with sdk.client() as client:
        with pytest.raises(Exception, match="no-such-provider") as unknown:
            await client.create_session(on_permission_request=approve, model="no-such-provider:x")
        assert getattr(unknown.value, "code", None) == -32602
        await client.create_session(on_permission_request=approve, session_id="taken")
        with pytest.raises(Exception, match="taken") as taken:
            await client.create_session(on_permission_request=approve, session_id="taken")
        assert getattr(taken.value, "data", {})["errorType"] == "SessionExistsError"
        with pytest.raises(Exception, match="session id") as bad:
            await client.create_session(on_permission_request=approve, session_id="bad id/..")
        assert getattr(bad.value, "data", {})["errorType"] == "InvalidSessionIdError"
        with pytest.raises(Exception, match=r"not found|no session") as missing:
            await client.resume_session("never-made", on_permission_request=approve)
        assert getattr(missing.value, "data", {}) == {
            "errorType": "SessionNotFoundError",
            "sessionId": "never-made",
        }
        models = await client.list_models()
        assert "echo" in [m.id for m in models]
