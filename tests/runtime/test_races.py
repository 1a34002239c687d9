"""Races and partial failures: the session table and every history stay consistent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from copilot_runtime import embedded_and_remote
from parley import (
    Client,
    ClientConfig,
    Message,
    SessionClosedError,
    SessionEvent,
    SessionNotFoundError,
    StoreError,
    TurnAbortedError,
)
from parley.models import EchoModel
from parley.models.base import ModelRequest, StreamEvent
from parley.runtime.history import UNSTORED_NOTE
from parley.stores import MemoryStore

client = pytest.fixture(name="client", params=["embedded", "remote"])(embedded_and_remote)


class FaultyStore(MemoryStore):
    """A memory store whose next writes can be made to fail or to wait at a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_assistant_appends = 0
        self.fail_updates = 0
        self.assistant_gate: asyncio.Event | None = None
        self.assistant_waiting = asyncio.Event()
        self.read_gate: asyncio.Event | None = None

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        if messages[-1].role == "assistant":
            if self.assistant_gate is not None:
                self.assistant_waiting.set()
                await self.assistant_gate.wait()
            if self.fail_assistant_appends:
                self.fail_assistant_appends -= 1
                raise StoreError("disk full (simulated)")
        await super().append_messages(session_id, messages)

    async def update_session(self, session_id: str, **changes: object) -> None:
        if self.fail_updates:
            self.fail_updates -= 1
            raise StoreError("disk full (simulated)")
        await super().update_session(session_id, **changes)  # type: ignore[arg-type]

    async def read_messages(self, session_id: str) -> list[Message]:
        if self.read_gate is not None:
            await self.read_gate.wait()
        return await super().read_messages(session_id)


@pytest.fixture
def faulty() -> FaultyStore:
    return FaultyStore()


@pytest.fixture
async def client_on_faulty(faulty: FaultyStore) -> Client:
    slow = EchoModel(token_delay=0.01, provider="slow")
    client = Client(store=faulty, config=ClientConfig(providers={"slow": slow}))
    await client.start()
    return client


async def test_a_reply_that_cannot_be_stored_never_breaks_alternation(
    client_on_faulty: Client, faulty: FaultyStore
) -> None:
    client = client_on_faulty
    session = await client.create_session(session_id="s")
    await session.send_and_wait("one")
    faulty.fail_assistant_appends = 1
    with pytest.raises(StoreError, match="disk full"):
        await session.send_and_wait("two")
    reply = await session.send_and_wait("three")
    assert "#3 here" in reply.text
    stored = await faulty.read_messages("s")
    assert [m.role for m in stored] == ["user", "assistant"] * 3
    assert stored[3].interrupted
    assert stored[3].error == UNSTORED_NOTE
    assert await session.messages() == stored
    await client.stop()


async def test_a_title_that_cannot_be_stored_does_not_fail_the_turn(
    client_on_faulty: Client, faulty: FaultyStore
) -> None:
    session = await client_on_faulty.create_session(session_id="t")
    faulty.fail_updates = 1
    reply = await session.send_and_wait("first words")
    assert reply.text
    assert [m.role for m in await faulty.read_messages("t")] == ["user", "assistant"]
    await client_on_faulty.stop()


async def test_an_abort_that_comes_while_the_reply_is_stored_is_refused(
    client_on_faulty: Client, faulty: FaultyStore
) -> None:
    session = await client_on_faulty.create_session()
    faulty.assistant_gate = asyncio.Event()
    waiter = asyncio.ensure_future(session.send_and_wait("finish me"))
    await faulty.assistant_waiting.wait()  # the model is done; its reply is being stored
    assert await session.abort() is False
    faulty.assistant_gate.set()
    reply = await waiter
    assert not reply.interrupted
    assert reply.error is None
    await client_on_faulty.stop()


async def test_cancelling_one_resume_does_not_cancel_another(
    client_on_faulty: Client, faulty: FaultyStore
) -> None:
    client = client_on_faulty
    session = await client.create_session(session_id="r")
    await session.close()
    faulty.read_gate = asyncio.Event()
    first = asyncio.ensure_future(client.resume_session("r"))
    second = asyncio.ensure_future(client.resume_session("r"))
    await asyncio.sleep(0.01)
    first.cancel()
    faulty.read_gate.set()
    resumed = await second
    assert first.cancelled()
    assert (await resumed.send_and_wait("still fine")).text
    await client.stop()


async def test_concurrent_resumes_share_one_live_session(sqlite_url: str) -> None:
    async with Client(store=sqlite_url) as client:
        await (await client.create_session(session_id="shared")).close()
        a, b = await asyncio.gather(
            client.resume_session("shared"), client.resume_session("shared")
        )
        assert a == b
        await asyncio.gather(a.send_and_wait("from a"), b.send_and_wait("from b"))
        assert [m.role for m in await a.messages()] == ["user", "assistant"] * 2


async def test_create_and_resume_of_one_id_never_make_two_live_sessions(sqlite_url: str) -> None:
    async with Client(store=sqlite_url) as client:
        results = await asyncio.gather(
            client.create_session(session_id="x"),
            client.resume_session("x"),
            return_exceptions=True,
        )
        created = results[0]
        assert not isinstance(created, BaseException)
        resumed = results[1]
        if not isinstance(resumed, SessionNotFoundError):
            assert resumed == created
        await asyncio.gather(created.send_and_wait("1"), created.send_and_wait("2"))
        again = await client.resume_session("x")
        assert [m.role for m in await again.messages()] == ["user", "assistant"] * 2


async def test_resume_during_close_gets_a_working_session(client: Client) -> None:
    session = await client.create_session(model="slow:x", session_id="y")
    started = asyncio.Event()
    session.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
    turn = asyncio.ensure_future(session.send_and_wait("long"))
    await started.wait()
    _, resumed = await asyncio.gather(session.close(), client.resume_session("y"))
    assert (await resumed.send_and_wait("after")).text
    with pytest.raises(SessionClosedError):
        await session.send("old handle")
    assert turn.done()


async def test_resume_during_delete_leaves_no_half_deleted_id(client: Client) -> None:
    session = await client.create_session(model="slow:x", session_id="z")
    await session.send_and_wait("hi")
    results = await asyncio.gather(
        client.delete_session("z"), client.resume_session("z"), return_exceptions=True
    )
    assert results[0] is None
    with pytest.raises(SessionNotFoundError):
        await client.get_session("z")
    fresh = await client.create_session(session_id="z")
    assert await fresh.messages() == []


async def test_stream_takes_its_place_in_the_queue_when_called(client: Client) -> None:
    session = await client.create_session()
    events = session.stream("first")
    await session.send("second")
    seen = [e async for e in events]
    assert [e.data.content for e in seen if e.type == "user.message"] == ["first"]
    await session.send_and_wait("third")
    texts = [m.text for m in await session.messages() if m.role == "user"]
    assert texts == ["first", "second", "third"]


async def test_stopping_the_client_from_an_async_handler_does_not_hang(store_url: str) -> None:
    client = Client(store=store_url)
    await client.start()
    stopped = asyncio.Event()

    async def stop_on_idle(event: SessionEvent) -> None:
        if event.type == "session.idle":
            await client.stop()
            stopped.set()

    client.on(stop_on_idle)
    session = await client.create_session()
    await session.send("bye")
    await asyncio.wait_for(stopped.wait(), timeout=10)
    with pytest.raises(SessionClosedError):
        await client.list_sessions()


async def test_listed_metadata_is_a_copy(client: Client) -> None:
    await client.create_session(metadata={"owner": "alice"})
    info = (await client.list_sessions())[0]
    info.metadata["owner"] = "mallory"  # type: ignore[index]
    (await client.get_session(info.session_id)).metadata["owner"] = "eve"  # type: ignore[index]
    assert len(await client.list_sessions(metadata={"owner": "alice"})) == 1


async def test_one_sqlite_file_serves_one_client_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    async with Client(store=url) as first:
        await first.create_session(session_id="mine")
        second = Client(store=url)
        with pytest.raises(StoreError, match="one client at a time"):
            await second.start()
    async with Client(store=url) as third:
        assert (await third.get_session("mine")).session_id == "mine"


class CancellingProbe(EchoModel):
    """Echoes slowly, recording how many cancellations its caller's task has pending."""

    def __init__(self) -> None:
        super().__init__(token_delay=0.01, provider="probe")
        self.pending: list[int] = []
        self.streaming = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        task = asyncio.current_task()
        assert task is not None
        self.pending.append(task.cancelling())
        async for item in super().stream(request):
            self.streaming.set()
            yield item


async def test_an_abort_of_the_model_call_leaves_no_cancellation_behind() -> None:
    # The model call runs in the session's worker task and an abort cancels that task: the
    # cancellation must be taken back, or the turn queued behind (same worker) would start
    # with a cancellation pending and misread its own timeouts.
    probe = CancellingProbe()
    config = ClientConfig(providers={"probe": probe}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        session = await client.create_session(model="probe:x")
        first = asyncio.create_task(session.send_and_wait("a long story, please " * 5))
        await probe.streaming.wait()
        second = asyncio.create_task(session.send_and_wait("and another one"))
        await asyncio.sleep(0)  # queued behind the first
        assert await session.abort() is True
        with pytest.raises(TurnAbortedError):
            await first
        reply = await second
        assert not reply.interrupted
        assert probe.pending == [0, 0]
