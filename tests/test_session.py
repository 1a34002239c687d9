"""Session: sending, streaming, events, abort, timeouts and failures, on every store."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from copilot_runtime import embedded_and_remote
from parley import (
    AssistantMessageEvent,
    Client,
    ClientConfig,
    ConfigError,
    InvalidPromptError,
    MessageOptions,
    ProviderResponseError,
    RateLimitError,
    SessionClosedError,
    SessionErrorEvent,
    SessionEvent,
    TurnAbortedError,
    TurnTimeoutError,
    UnknownModelError,
)
from parley.testing import Reply, ScriptedModel

client = pytest.fixture(name="client", params=["embedded", "remote"])(embedded_and_remote)


TURN = [
    "user.message",
    "assistant.turn_start",
    "assistant.message",
    "assistant.usage",
    "assistant.turn_end",
    "session.idle",
]


def durable(events: list[SessionEvent]) -> list[str]:
    return [e.type for e in events if e.type != "assistant.message_delta"]


async def test_send_and_wait_returns_the_assistant_message(
    client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(Reply(text="Use python -m venv .venv", input_tokens=11, output_tokens=5))
    session = await client.create_session(model="scripted:m1")
    reply = await session.send_and_wait("How do I create a virtual environment?")
    assert reply.role == "assistant"
    assert reply.text == "Use python -m venv .venv"
    assert reply.model == "scripted:m1"
    assert reply.usage is not None
    assert reply.usage.input_tokens == 11
    assert reply.usage.output_tokens == 5
    assert not reply.interrupted
    stored = await session.messages()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1] == reply
    scripted.assert_consumed()


async def test_send_queues_and_returns_the_user_message_id(client: Client) -> None:
    session = await client.create_session()
    events: list[SessionEvent] = []
    session.on(events.append)
    message_id = await session.send(MessageOptions(prompt="queued"))
    await session.send_and_wait("after it")
    users = [e for e in events if e.type == "user.message"]
    assert users[0].data.message_id == message_id
    assert users[0].data.content == "queued"
    assert (await session.messages())[0].id == message_id


async def test_stream_yields_exactly_one_turn_in_order(client: Client) -> None:
    session = await client.create_session(model="echo:alpha")
    events = [e async for e in session.stream("hello")]
    assert durable(events) == TURN
    deltas = [e.data.delta_content for e in events if e.type == "assistant.message_delta"]
    assert len(deltas) > 3
    final = next(e for e in events if isinstance(e, AssistantMessageEvent))
    assert "".join(deltas) == final.data.content
    assert {e.session_id for e in events} == {session.session_id}
    # every event points at the previous one of the session
    for before, after in itertools.pairwise(events):
        assert after.parent_id == before.id
    assert [e.ephemeral for e in events if e.type in ("assistant.message_delta", "session.idle")]
    assert all(
        e.ephemeral == (e.type in ("assistant.message_delta", "session.idle")) for e in events
    )


async def test_stream_of_a_queued_turn_only_has_its_own_events(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    first = asyncio.create_task(session.send_and_wait("first"))
    events = [e async for e in session.stream("second")]
    await first
    contents = [e.data.content for e in events if e.type == "user.message"]
    assert contents == ["second"]
    assert durable(events) == TURN


async def test_each_session_sees_only_its_own_history(
    client: Client, scripted: ScriptedModel
) -> None:
    scripted.add("a1", "b1", "a2")
    a = await client.create_session(model="scripted:x", system_message="You are A")
    b = await client.create_session(model="scripted:x")
    await a.send_and_wait("to A")
    await b.send_and_wait("to B")
    await a.send_and_wait("again A")
    third = scripted.requests[2]
    assert [m.text for m in third.messages] == ["to A", "a1", "again A"]
    assert third.system == "You are A"
    assert scripted.requests[1].system is None
    assert [m.text for m in scripted.requests[1].messages] == ["to B"]


async def test_abort_keeps_the_partial_reply_and_the_session_usable(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    waiter = asyncio.create_task(session.send_and_wait("tell me a long story"))
    seen: list[SessionEvent] = []
    got_delta = asyncio.Event()

    def watch(event: SessionEvent) -> None:
        seen.append(event)
        if event.type == "assistant.message_delta":
            got_delta.set()

    session.on(watch)
    await got_delta.wait()
    assert await session.abort() is True
    with pytest.raises(TurnAbortedError, match="interrupted"):
        await waiter
    kinds = durable(seen)
    assert kinds[-4:] == ["assistant.message", "abort", "assistant.turn_end", "session.idle"]
    message_event = next(e for e in seen if isinstance(e, AssistantMessageEvent))
    assert message_event.data.interrupted
    stored = await session.messages()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].interrupted
    assert stored[1].text == message_event.data.content
    assert stored[1].text  # some text had streamed before the abort
    assert await session.abort() is False  # nothing running now
    reply = await session.send_and_wait("go on")
    assert not reply.interrupted
    assert "#2" in reply.text


async def test_inactivity_timeout_aborts_and_raises(
    client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(Reply(text="I started but", hang=True), "recovered")
    session = await client.create_session(model="scripted:x")
    with pytest.raises(TurnTimeoutError, match="timeout="):
        await session.send_and_wait("hang please", timeout=0.2)
    stored = await session.messages()
    assert stored[-1].interrupted
    assert stored[-1].text == "I started but"
    assert (await session.send_and_wait("again")).text == "recovered"


async def test_timeout_counts_inactivity_not_total_time(client: Client) -> None:
    # ~30 tokens, 0.02 s apart: more than 0.3 s in all, never 0.3 s without an event.
    session = await client.create_session(model="slow:x")
    reply = await session.send_and_wait("a reply that streams for a while " * 2, timeout=0.3)
    assert not reply.interrupted
    assert len(reply.text.split()) > 15


async def test_abort_by_message_id_stops_that_turn_only(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    streaming = asyncio.Event()
    session.on(lambda e: streaming.set() if e.type == "assistant.message_delta" else None)
    first = await session.send("first")
    second = await session.send("second")
    await session.send("third")
    await streaming.wait()  # "first" is running; the other two are queued
    assert await session.abort(message_id=second) is True  # taken out of the queue
    assert await session.abort(message_id=second) is False  # gone already
    assert await session.abort(message_id="no-such-turn") is False
    assert await session.abort(message_id=first) is True
    reply = await session.send_and_wait("fourth")  # runs after "third", which still ran
    assert not reply.interrupted
    stored = await session.messages()
    assert [m.text for m in stored if m.role == "user"] == ["first", "third", "fourth"]
    assert [m.interrupted for m in stored if m.role == "assistant"] == [True, False, False]
    assert await session.abort(message_id=first) is False  # over


async def test_provider_error_is_raised_stored_and_recoverable(
    client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(Reply(text="partial", error=RateLimitError("slow down", retry_after=2)), "ok")
    session = await client.create_session(model="scripted:x")
    events: list[SessionEvent] = []
    session.on(events.append)
    with pytest.raises(RateLimitError) as info:
        await session.send_and_wait("go")
    assert info.value.retry_after == 2
    errors = [e for e in events if isinstance(e, SessionErrorEvent)]
    assert errors[0].data.error_type == "RateLimitError"
    assert durable(events)[-3:] == ["session.error", "assistant.turn_end", "session.idle"]
    stored = await session.messages()
    assert stored[-1].interrupted
    assert stored[-1].text == "partial"
    assert stored[-1].error == "slow down"
    assert (await session.send_and_wait("retry")).text == "ok"
    assert [m.role for m in await session.messages()] == ["user", "assistant"] * 2


async def test_an_adapter_bug_becomes_a_provider_error(
    client: Client, scripted: ScriptedModel
) -> None:
    scripted.add(ZeroDivisionError("adapter bug"))
    session = await client.create_session(model="scripted:x")
    with pytest.raises(ProviderResponseError, match="adapter bug"):
        await session.send_and_wait("boom")
    events = [e async for e in session.stream("more")]  # script exhausted: also an error
    assert any(e.type == "session.error" for e in events)
    assert events[-1].type == "session.idle"


async def test_set_model_applies_to_the_next_turn_and_persists(client: Client) -> None:
    session = await client.create_session(model="echo:alpha")
    await session.send_and_wait("one")
    await session.set_model("echo:beta")
    reply = await session.send_and_wait("two")
    assert reply.model == "echo:beta"
    assert "echo:beta" in reply.text
    assert (await client.get_session(session.session_id)).model == "echo:beta"
    with pytest.raises(UnknownModelError):
        await session.set_model("nowhere:x")
    assert session.model == "echo:beta"


async def test_close_drops_queued_turns_and_keeps_the_history(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    running = asyncio.create_task(session.send_and_wait("first"))
    queued = asyncio.create_task(session.send_and_wait("second"))
    started = asyncio.Event()
    session.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
    await started.wait()
    await session.close()
    with pytest.raises(TurnAbortedError):
        await running
    with pytest.raises(SessionClosedError, match="before this turn ran"):
        await queued
    with pytest.raises(SessionClosedError, match="resume_session"):
        await session.send("third")
    stored = await session.messages()  # read from the store once closed
    assert [m.text for m in stored if m.role == "user"] == ["first"]
    again = await client.resume_session(session.session_id)
    assert (await again.send_and_wait("third")).text


async def test_session_is_an_async_context_manager(client: Client) -> None:
    async with await client.create_session() as session:
        await session.send_and_wait("inside")
    with pytest.raises(SessionClosedError):
        await session.send("outside")


async def test_send_rejects_wrong_types(client: Client) -> None:
    session = await client.create_session()
    with pytest.raises(TypeError, match="MessageOptions"):
        await session.send(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await session.send_and_wait("x", timeout=0)


async def test_first_message_becomes_the_title(client: Client) -> None:
    session = await client.create_session()
    long = "word " * 40
    await session.send_and_wait(long)
    await session.send_and_wait("second message")
    info = await client.get_session(session.session_id)
    assert info.title is not None
    assert info.title.startswith("word word")
    assert len(info.title) <= 60
    assert session.title == info.title
    titled = await client.create_session(title="Mine")
    await titled.send_and_wait("not the title")
    assert (await client.get_session(titled.session_id)).title == "Mine"


async def test_empty_and_huge_prompts_are_rejected_before_anything_is_stored(
    store_url: str,
) -> None:
    async with Client(store=store_url, config=ClientConfig(max_prompt_chars=1000)) as client:
        session = await client.create_session()
        await session.send_and_wait("kept")
        for bad in ("", "   \n"):
            with pytest.raises(InvalidPromptError, match="empty"):
                await session.send(bad)
        with pytest.raises(InvalidPromptError, match="1,001 characters") as info:
            await session.send_and_wait("x" * 1001)
        assert "max_prompt_chars" in str(info.value)
        assert len(await session.messages()) == 2
        assert (await client.get_session(session.session_id)).message_count == 2
    with pytest.raises(ConfigError):
        ClientConfig(max_prompt_chars=0)


async def test_unscripted_calls_fail_the_turn_and_assert_consumed(
    client: Client, scripted: ScriptedModel
) -> None:
    session = await client.create_session(model="scripted:x")
    with pytest.raises(ProviderResponseError, match="not scripted"):
        await session.send_and_wait("nobody scripted this")
    with pytest.raises(AssertionError, match="beyond the end of the script"):
        scripted.assert_consumed()
