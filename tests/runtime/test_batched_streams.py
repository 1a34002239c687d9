"""Adapters that pass their events in lists (`stream_batches`): read list by list, to the finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from parley import Client, ClientConfig, SessionEvent, TurnAbortedError
from parley.events import AssistantMessageDeltaEvent
from parley.models.base import (
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamUsage,
)


class Batched:
    """Passes its events in the lists given; `stream` must never be used."""

    provider = "batched"
    offline = True

    def __init__(self, *batches: list[StreamEvent], hang: bool = False) -> None:
        self.batches = batches
        self.hang = hang
        self.closed = False

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        raise AssertionError("the runtime reads stream_batches when an adapter has it")

    async def stream_batches(
        self, request: ModelRequest
    ) -> AsyncGenerator[list[StreamEvent], None]:
        try:
            for batch in self.batches:
                yield batch
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.closed = True

    async def aclose(self) -> None:
        pass


def client_for(adapter: Batched) -> Client:
    config = ClientConfig(providers={"batched": adapter}, config_files=False)
    return Client(store="memory://", config=config)


async def test_a_batched_stream_is_read_to_its_finish_and_no_further() -> None:
    adapter = Batched(
        [StreamTextDelta(text="Hello"), StreamTextDelta(text=", ")],
        [
            StreamTextDelta(text="world"),
            StreamUsage(input_tokens=3, output_tokens=4, cached_tokens=0, cost=None),
            StreamFinish(reason="stop"),
            StreamTextDelta(text="after the finish"),
        ],
        [StreamTextDelta(text="nor this")],
    )
    async with client_for(adapter) as client:
        session = await client.create_session(model="batched:m")
        deltas: list[str] = []

        def watch(event: SessionEvent) -> None:
            if isinstance(event, AssistantMessageDeltaEvent):
                deltas.append(event.data.delta_content)

        session.on(watch)
        reply = await session.send_and_wait("hi")
    assert reply.text == "Hello, world"
    assert deltas == ["Hello", ", ", "world"]
    assert reply.usage is not None
    assert reply.usage.output_tokens == 4
    assert adapter.closed


async def test_an_abort_closes_a_batched_stream_and_keeps_its_text() -> None:
    adapter = Batched([StreamTextDelta(text="partial ")], hang=True)
    async with client_for(adapter) as client:
        session = await client.create_session(model="batched:m")
        streaming = asyncio.Event()

        def watch(event: SessionEvent) -> None:
            if event.type == "assistant.message_delta":
                streaming.set()

        session.on(watch)
        waiter = asyncio.create_task(session.send_and_wait("hi"))
        await streaming.wait()
        assert await session.abort() is True
        with pytest.raises(TurnAbortedError):
            await waiter
        stored = (await session.messages())[1]
    assert stored.interrupted
    assert stored.text == "partial "
    assert adapter.closed
