"""Idle eviction: sessions beyond `max_live_sessions` or idle past `idle_ttl` leave memory, and
come back from the store, with the same history, on their next send or read."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from parley import Client, ClientConfig, ConfigError, SessionEvent, StoreError
from parley.models import EchoModel
from parley.stores import MemoryStore


@pytest.fixture
async def small(store_url: str) -> AsyncIterator[Client]:
    """A client that keeps at most two sessions in memory."""
    providers = {"slow": EchoModel(token_delay=0.02, provider="slow")}
    config = ClientConfig(providers=providers)
    async with Client(store=store_url, config=config, max_live_sessions=2) as client:
        yield client


def in_memory(client: Client, session_id: str) -> bool:
    live = client._runtime.table.get(session_id)
    return live is not None and not live.stale


async def test_least_recently_used_sessions_leave_memory_and_come_back(small: Client) -> None:
    sessions = [await small.create_session(session_id=f"s{i}") for i in range(4)]
    for session in sessions:
        await session.send_and_wait(f"first to {session.session_id}")
    assert small.live_sessions == 2
    assert [in_memory(small, f"s{i}") for i in range(4)] == [False, False, True, True]
    before = {
        s.session_id: await small._runtime.store.read_messages(s.session_id) for s in sessions
    }

    reply = await sessions[0].send_and_wait("second to s0")  # transparently reloaded
    assert "#2 here" in reply.text  # the model was sent the history that was evicted
    assert "first to s0" in reply.text
    assert (await sessions[0].messages())[:2] == before["s0"]
    assert small.live_sessions == 2
    assert [in_memory(small, f"s{i}") for i in range(4)] == [True, False, False, True]

    assert await sessions[1].messages() == before["s1"]  # a read brings it back too
    assert in_memory(small, "s1") or small._runtime.table.get("s1") is not None


async def test_a_session_with_a_running_turn_is_never_evicted(small: Client) -> None:
    busy = await small.create_session(session_id="busy", model="slow:x")
    started = asyncio.Event()
    busy.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
    running = asyncio.create_task(busy.send_and_wait("a long answer, word after word"))
    await started.wait()
    others = [await small.create_session(session_id=f"o{i}") for i in range(3)]
    for other in others:
        await other.send_and_wait("hello")
        assert in_memory(small, "busy")  # the least recently used, but running
    assert small.live_sessions == 2  # the idle ones made room instead
    reply = await running
    assert reply.text
    assert not reply.interrupted
    await (await small.create_session()).send_and_wait("one more")  # now busy is idle: out
    assert small.live_sessions == 2
    assert not in_memory(small, "busy")
    again = await busy.send_and_wait("and again")
    assert "#2 here" in again.text


async def test_idle_sessions_leave_memory_after_the_ttl(store_url: str) -> None:
    async with Client(store=store_url, idle_ttl=0.2) as client:
        session = await client.create_session(session_id="idle")
        await session.send_and_wait("hello")
        assert client.live_sessions == 1
        for _ in range(200):  # the sweeper runs every idle_ttl / 4
            if not client.live_sessions:
                break
            await asyncio.sleep(0.05)
        assert client.live_sessions == 0
        reply = await session.send_and_wait("still there?")
        assert "#2 here" in reply.text
        assert [m.text for m in await session.messages()][0::2] == ["hello", "still there?"]


async def test_handlers_and_handles_survive_eviction(small: Client) -> None:
    session = await small.create_session(session_id="kept")
    seen: list[str] = []
    session.on(lambda e: seen.append(e.type) if e.type == "assistant.message" else None)
    await session.send_and_wait("one")
    for i in range(2):
        await (await small.create_session()).send_and_wait(f"push {i}")
    assert not in_memory(small, "kept")

    again = await small.resume_session("kept")
    assert again == session  # one object per id, evicted or not: never two queues
    await asyncio.gather(session.send_and_wait("two"), again.send_and_wait("three"))
    history = await session.messages()
    assert [m.text for m in history][0::2] == ["one", "two", "three"]
    assert seen == ["assistant.message"] * 3


async def test_an_evicted_session_nobody_holds_is_freed(small: Client) -> None:
    session = await small.create_session(session_id="let-go")
    await session.send_and_wait("remember me")
    del session
    for i in range(2):
        await (await small.create_session()).send_and_wait(f"push {i}")
    gc.collect()
    assert small._runtime.table.get("let-go") is None  # nothing of it left in memory
    back = await small.resume_session("let-go")
    reply = await back.send_and_wait("do you?")
    assert "remember me" in reply.text


async def test_a_store_failure_while_reloading_loses_nothing() -> None:
    class FlakyReads(MemoryStore):
        fail = 0

        async def read_messages(self, session_id: str):  # type: ignore[no-untyped-def]
            if self.fail:
                self.fail -= 1
                raise StoreError("disk unreadable (simulated)")
            return await super().read_messages(session_id)

    store = FlakyReads()
    async with Client(store=store, max_live_sessions=1) as client:
        first = await client.create_session(session_id="first")
        await first.send_and_wait("kept safe")
        await (await client.create_session()).send_and_wait("evicts the first")
        store.fail = 1
        errors: list[SessionEvent] = []
        first.on(lambda e: errors.append(e) if e.type == "session.error" else None)
        with pytest.raises(StoreError, match="simulated"):
            await first.send_and_wait("while the disk is bad")
        assert errors
        reply = await first.send_and_wait("and now")
        assert "#2 here" in reply.text
        assert [m.text for m in await first.messages()][0::2] == ["kept safe", "and now"]
    await store.close()


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        ({"max_live_sessions": 0}, "max_live_sessions"),
        ({"max_live_sessions": True}, "max_live_sessions"),
        ({"max_live_sessions": 1.5}, "max_live_sessions"),
        ({"idle_ttl": 0}, "idle_ttl"),
        ({"idle_ttl": -1.0}, "idle_ttl"),
        ({"idle_ttl": "10"}, "idle_ttl"),
    ],
)
def test_bad_limits_are_config_errors(limits: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Client(store="memory://", **limits)  # type: ignore[arg-type]
