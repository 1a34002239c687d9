"""The tool loop: model -> tools -> model, and a history where every call has its result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conftest import assert_tool_pairs
from copilot_runtime import embedded_and_remote
from parley import (
    Client,
    ClientConfig,
    ConfigError,
    MessageOptions,
    PermissionRequest,
    SessionEvent,
    ToolExecutionCompleteEvent,
    ToolLoopError,
    TurnAbortedError,
    approve_all,
    tool,
)
from parley.messages import ToolResultPart
from parley.models.base import StreamToolCall
from parley.runtime.history import model_view
from parley.testing import Reply, ScriptedModel

client = pytest.fixture(name="client", params=["embedded", "remote"])(embedded_and_remote)

RELEASE = asyncio.Event()


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool(timeout=0.2)
async def slow(seconds: float) -> str:
    """Wait a while."""
    await asyncio.sleep(seconds)
    return "waited"


@tool
def broken() -> str:
    """Always fails."""
    raise RuntimeError("the tool broke")


def calls(*items: tuple[str, str, dict[str, object]], text: str = "") -> Reply:
    return Reply(
        text=text,
        tool_calls=tuple(StreamToolCall(call_id=c, name=n, arguments=a) for c, n, a in items),
    )


@pytest.fixture
async def tool_client(sqlite_url: str, scripted: ScriptedModel) -> AsyncIterator[Client]:
    config = ClientConfig(providers={"scripted": scripted}, config_files=False)
    async with Client(store=sqlite_url, config=config) as client:
        yield client


async def test_a_tool_round_trip(tool_client: Client, scripted: ScriptedModel) -> None:
    scripted.add(calls(("c1", "add", {"a": 2, "b": 3}), text="Let me add."), "5")
    session = await tool_client.create_session(model="scripted:x", tools=[add])
    events: list[SessionEvent] = []
    session.on(events.append)
    reply = await session.send_and_wait("what is 2 + 3?")
    assert reply.text == "5"
    history = await session.messages()
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[2].parts == (ToolResultPart(call_id="c1", content="5"),)
    assert_tool_pairs(history)
    kinds = [e.type for e in events if e.type.startswith("tool.")]
    assert kinds == ["tool.execution_start", "tool.execution_complete"]
    done = next(e for e in events if isinstance(e, ToolExecutionCompleteEvent))
    assert done.data.tool_call_id == "c1"
    assert done.data.success
    assert done.data.result == "5"
    assert done.data.duration_ms >= 0
    second = scripted.requests[1]
    assert [t.name for t in second.tools] == ["add"]
    assert second.messages[-1].role == "tool"


async def test_calls_of_one_response_run_concurrently(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(
        calls(("a", "slow", {"seconds": 0.05}), ("b", "slow", {"seconds": 0.05})), "both done"
    )
    session = await tool_client.create_session(model="scripted:x", tools=[slow])
    order: list[str] = []
    session.on(lambda e: order.append(e.type) if e.type.startswith("tool.") else None)
    await session.send_and_wait("wait twice")
    assert order == ["tool.execution_start"] * 2 + ["tool.execution_complete"] * 2


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (("c", "add", {"a": "two", "b": 3}), "invalid arguments for add: a: Input should be"),
        (("c", "broken", {}), "tool 'broken' failed: RuntimeError: the tool broke"),
        (("c", "slow", {"seconds": 5}), "did not finish within its 0.2s timeout"),
        (("c", "nope", {}), "there is no tool 'nope'"),
    ],
)
async def test_failing_calls_answer_the_model_and_the_session_goes_on(
    tool_client: Client,
    scripted: ScriptedModel,
    call: tuple[str, str, dict[str, object]],
    expected: str,
) -> None:
    scripted.add(calls(call), "recovered")
    session = await tool_client.create_session(model="scripted:x", tools=[add, broken, slow])
    reply = await session.send_and_wait("go")
    assert reply.text == "recovered"
    result = (await session.messages())[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.is_error
    assert expected in result.content


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_permission_hook_can_deny(
    tool_client: Client, scripted: ScriptedModel, asynchronous: bool
) -> None:
    asked: list[PermissionRequest] = []

    def deny(request: PermissionRequest) -> bool:
        asked.append(request)
        return False

    async def deny_later(request: PermissionRequest) -> bool:
        return deny(request)

    scripted.add(calls(("c", "add", {"a": 1, "b": 1})), "ok, I won't")
    session = await tool_client.create_session(
        model="scripted:x", tools=[add], on_permission_request=deny_later if asynchronous else deny
    )
    await session.send_and_wait("add")
    assert asked[0].tool_name == "add"
    assert asked[0].arguments == {"a": 1, "b": 1}
    result = (await session.messages())[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert "permission to run 'add' was denied" in result.content
    scripted.add(calls(("d", "add", {"a": 1, "b": 1})), "allowed")
    allowed = await tool_client.create_session(
        model="scripted:x", tools=[add], on_permission_request=approve_all
    )
    await allowed.send_and_wait("add")
    assert (await allowed.messages())[2].parts[0] == ToolResultPart(call_id="d", content="2")


async def test_max_tool_rounds_stops_the_loop_with_a_valid_history(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(*[calls((f"c{i}", "add", {"a": i, "b": 1})) for i in range(3)], "after")
    session = await tool_client.create_session(model="scripted:x", tools=[add], max_tool_rounds=2)
    with pytest.raises(ToolLoopError, match="max_tool_rounds"):
        await session.send_and_wait("loop")
    history = await session.messages()
    assert_tool_pairs(history)
    last = history[-1].parts[0]
    assert isinstance(last, ToolResultPart)
    assert last.content.startswith("not run")
    assert (await session.send_and_wait("and now?")).text == "after"
    assert_tool_pairs(await session.messages())


async def test_abort_during_a_tool_call_answers_it_as_cancelled(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    started = asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Never returns."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    scripted.add(calls(("c", "wait_forever", {})), "after the abort")
    session = await tool_client.create_session(model="scripted:x", tools=[wait_forever])
    waiter = asyncio.ensure_future(session.send_and_wait("start"))
    await started.wait()
    assert await session.abort()
    with pytest.raises(TurnAbortedError):
        await waiter
    history = await session.messages()
    assert_tool_pairs(history)
    result = history[-1].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.content.startswith("cancelled")
    assert (await session.send_and_wait("next")).text == "after the abort"


async def test_tools_given_with_one_send(tool_client: Client, scripted: ScriptedModel) -> None:
    scripted.add(calls(("c", "add", {"a": 4, "b": 4})), "8", "no tools now")
    session = await tool_client.create_session(model="scripted:x")
    assert (await session.send_and_wait(MessageOptions(prompt="add", tools=[add]))).text == "8"
    await session.send_and_wait("plain")
    assert [t.name for t in scripted.requests[0].tools] == ["add"]
    assert list(scripted.requests[2].tools) == []
    with pytest.raises(ConfigError, match="Tool objects"):
        await session.send(MessageOptions(prompt="x", tools=[lambda: 1]))


async def test_resume_takes_the_tools_again_and_keeps_them_when_open(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    session = await tool_client.create_session(model="scripted:x", tools=[add], session_id="t")
    again = await tool_client.resume_session("t")  # open: its tools stay
    scripted.add(calls(("c", "add", {"a": 1, "b": 2})), "3")
    assert (await again.send_and_wait("add")).text == "3"
    await session.close()
    reopened = await tool_client.resume_session("t", tools=[add])
    scripted.add(calls(("d", "add", {"a": 2, "b": 2})), "4")
    assert (await reopened.send_and_wait("add")).text == "4"
    assert_tool_pairs(await reopened.messages())


async def test_history_windows_never_split_a_call_from_its_result(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(calls(("c1", "add", {"a": 1, "b": 1})), "2", "x", "y")
    session = await tool_client.create_session(
        model="scripted:x", tools=[add], max_history_messages=3
    )
    await session.send_and_wait("first")
    await session.send_and_wait("second")
    await session.send_and_wait("third")
    for request in scripted.requests:
        assert request.messages[0].role == "user"
        assert_tool_pairs(list(request.messages))
    history = await session.messages()
    for size in range(1, len(history) + 1):
        window = model_view(history, size)
        assert window[0].role == "user"
        assert_tool_pairs(window)


async def test_a_sends_tool_replaces_the_sessions_namesake(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    @tool(name="add")
    def add_differently(a: int, b: int) -> int:
        """Add, then add one."""
        return a + b + 1

    scripted.add(calls(("c", "add", {"a": 1, "b": 1})), "3")
    session = await tool_client.create_session(model="scripted:x", tools=[add])
    await session.send_and_wait(MessageOptions(prompt="add", tools=[add_differently]))
    assert [t.name for t in scripted.requests[0].tools] == ["add"]
    assert (await session.messages())[2].parts[0] == ToolResultPart(call_id="c", content="3")


async def test_a_running_tool_is_activity_for_send_and_wait(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    @tool(timeout=5)
    async def thinks() -> str:
        """Takes longer than the caller's inactivity timeout."""
        await asyncio.sleep(0.5)
        return "thought"

    scripted.add(calls(("c", "thinks", {})), "done")
    session = await tool_client.create_session(model="scripted:x", tools=[thinks])
    assert (await session.send_and_wait("think", timeout=0.2)).text == "done"


async def test_a_permission_hook_that_raises_denies_the_call(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    def broken_hook(request: PermissionRequest) -> bool:
        raise RuntimeError("policy service down")

    scripted.add(calls(("c", "add", {"a": 1, "b": 1})), "ok")
    session = await tool_client.create_session(
        model="scripted:x", tools=[add], on_permission_request=broken_hook
    )
    await session.send_and_wait("add")
    result = (await session.messages())[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert "permission check for 'add' failed (RuntimeError: policy service down)" in result.content


async def test_resuming_an_open_session_changes_only_what_is_given(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    await tool_client.create_session(model="scripted:x", tools=[add], session_id="keep")
    again = await tool_client.resume_session("keep", on_permission_request=approve_all)
    scripted.add(calls(("c", "add", {"a": 2, "b": 5})), "7")
    await again.send_and_wait("add")
    assert (await again.messages())[2].parts[0] == ToolResultPart(call_id="c", content="7")


async def test_a_token_budget_keeps_recent_whole_turns(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(calls(("c1", "add", {"a": 1, "b": 1})), "2", "x" * 400, "y", "z")
    session = await tool_client.create_session(
        model="scripted:x", tools=[add], max_history_tokens=60
    )
    for prompt in ("first", "second " * 30, "third", "fourth"):
        await session.send_and_wait(prompt)
    last = scripted.requests[-1]
    assert last.messages[0].role == "user"
    assert last.messages[-1].text == "fourth"
    assert len(last.messages) < len(await session.messages())
    assert_tool_pairs(list(last.messages))
    history = await session.messages()
    for budget in (1, 10, 50, 100, 1000):
        window = model_view(history, max_tokens=budget)
        assert window[0].role == "user"
        assert window[-1] == history[-1] or history[-1].role != "user"
        assert_tool_pairs(window)


async def test_a_turn_keeps_the_tools_it_started_with(
    tool_client: Client, scripted: ScriptedModel
) -> None:
    running = asyncio.Event()
    go_on = asyncio.Event()

    @tool
    async def first() -> str:
        """The tool the turn starts with."""
        running.set()
        await go_on.wait()
        return "one"

    scripted.add(calls(("c1", "first", {})), calls(("c2", "first", {})), "done")
    session = await tool_client.create_session(model="scripted:x", tools=[first], session_id="k")
    waiter = asyncio.ensure_future(session.send_and_wait("go"))
    await running.wait()
    await tool_client.resume_session("k", tools=[add])  # changes the next turns, not this one
    go_on.set()
    assert (await waiter).text == "done"
    assert [t.name for t in scripted.requests[1].tools] == ["first"]
    results = [m.parts[0] for m in await session.messages() if m.role == "tool"]
    assert results == [
        ToolResultPart(call_id="c1", content="one"),
        ToolResultPart(call_id="c2", content="one"),
    ]
