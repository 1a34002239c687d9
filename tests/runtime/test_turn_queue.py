"""The turn queue: one turn at a time per session, in arrival order; sessions run concurrently."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from copilot_runtime import embedded_and_remote
from parley import Client, ClientConfig, Message, SessionBusyError, SessionEvent
from parley.models import EchoModel

client = pytest.fixture(name="client", params=["embedded", "remote"])(embedded_and_remote)


def assert_alternates(history: list[Message], prompts: list[str]) -> None:
    """user/assistant pairs, in the order sent, each reply answering its own prompt."""
    assert [m.role for m in history] == ["user", "assistant"] * len(prompts)
    assert [m.text for m in history[0::2]] == prompts
    for user, reply in zip(history[0::2], history[1::2], strict=True):
        assert f'You said "{user.text}"' in reply.text
        assert not reply.interrupted


async def test_concurrent_sends_to_one_session_run_in_arrival_order(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    prompts = [f"message {i}" for i in range(8)]
    in_turn: list[str] = []
    overlaps: list[str] = []

    def watch(event: SessionEvent) -> None:
        if event.type == "assistant.turn_start":
            if in_turn:
                overlaps.append(event.id)
            in_turn.append(event.id)
        elif event.type == "assistant.turn_end":
            in_turn.pop()

    session.on(watch)
    # All sends are issued before the first turn finishes; gather starts them in list order.
    replies = await asyncio.gather(*(session.send_and_wait(p) for p in prompts))
    assert overlaps == []
    assert [r.text for r in replies] == [m.text for m in (await session.messages())[1::2]]
    assert_alternates(await session.messages(), prompts)
    # the n-th reply saw exactly the n earlier turns
    for n, reply in enumerate(replies[1:], start=2):
        assert f"message #{n} here" in reply.text


async def test_fire_and_forget_sends_keep_order(client: Client) -> None:
    session = await client.create_session()
    prompts = [f"p{i}" for i in range(30)]
    for prompt in prompts:
        await session.send(prompt)
    await session.send_and_wait("last")
    assert_alternates(await session.messages(), [*prompts, "last"])


async def test_different_sessions_run_concurrently(client: Client) -> None:
    a = await client.create_session(model="slow:x")
    b = await client.create_session(model="slow:x")
    order: list[str] = []
    client.on(lambda e: order.append(e.session_id) if e.type == "assistant.message_delta" else None)
    await asyncio.gather(a.send_and_wait("one two three"), b.send_and_wait("four five six"))
    # Both streamed at once: their deltas interleave instead of one block after the other.
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches > 5


async def test_on_busy_reject_raises_while_a_turn_runs(client: Client) -> None:
    session = await client.create_session(model="slow:x", on_busy="reject")
    first = asyncio.create_task(session.send_and_wait("first"))
    await asyncio.sleep(0)  # let the first send enqueue
    busy_while_running = session.busy
    assert busy_while_running
    with pytest.raises(SessionBusyError, match="on_busy='enqueue'"):
        await session.send("second")
    with pytest.raises(SessionBusyError):
        await session.send_and_wait("third")
    await first
    busy_after = session.busy
    assert not busy_after
    await session.send_and_wait("now it is free")
    assert [m.text for m in (await session.messages())[0::2]] == ["first", "now it is free"]
    info = await client.get_session(session.session_id)
    assert info.busy is False


async def test_busy_shows_in_listings(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    task = asyncio.create_task(session.send_and_wait("working"))
    await asyncio.sleep(0)
    assert (await client.get_session(session.session_id)).busy
    assert [i.busy for i in await client.list_sessions()] == [True]
    await task
    assert not (await client.get_session(session.session_id)).busy


@pytest.mark.slow
async def test_a_thousand_sessions_sending_at_once_all_complete(store_url: str) -> None:
    async with Client(store=store_url) as client:
        sessions = [await client.create_session(session_id=f"u{i:04}") for i in range(1000)]
        replies = await asyncio.gather(
            *(s.send_and_wait(f"hello from {s.session_id}") for s in sessions)
        )
        for session, reply in zip(sessions, replies, strict=True):
            assert f"hello from {session.session_id}" in reply.text
        total = 0
        cursor = None
        while True:
            page = await client.list_sessions(limit=200, cursor=cursor)
            assert all(info.message_count == 2 for info in page)
            total += len(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert total == 1000


async def test_random_interleavings_keep_every_history_valid(sqlite_url: str) -> None:
    """Many sessions, sends in a shuffled order, some aborted: every history alternates."""
    rng = random.Random(1234)
    config = ClientConfig(providers={"slow": EchoModel(token_delay=0.001, provider="slow")})
    async with Client(store=sqlite_url, config=config) as client:
        sessions = [await client.create_session(model="slow:x") for _ in range(8)]
        plan = [(rng.randrange(8), f"m{i}") for i in range(80)]
        sent: dict[str, list[str]] = {s.session_id: [] for s in sessions}
        waits = []
        for index, prompt in plan:
            session = sessions[index]
            sent[session.session_id].append(prompt)
            waits.append(asyncio.ensure_future(session.send_and_wait(prompt)))
            if rng.random() < 0.1:
                await asyncio.sleep(0.002)
                await session.abort()
        results = await asyncio.gather(*waits, return_exceptions=True)
        assert any(isinstance(r, Exception) for r in results)  # some turns were aborted
        for session in sessions:
            history = await session.messages()
            assert [m.role for m in history] == ["user", "assistant"] * len(
                sent[session.session_id]
            )
            assert [m.text for m in history[0::2]] == sent[session.session_id]
