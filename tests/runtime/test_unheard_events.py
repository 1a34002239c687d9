"""Events nobody listens to are not built; whoever starts listening still sees a linked chain."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parley import Client, ClientConfig, SessionEvent
from parley.events import MessageDeltaData
from parley.runtime import agent, live


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(
        store=f"sqlite:///{tmp_path / 'p.db'}", config=ClientConfig(config_files=False)
    ) as c:
        yield c


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The events the runtime builds, by type (and the delta payloads, as "delta data")."""
    made: list[str] = []
    deliver = live.LiveSession.deliver

    def counting_deliver(
        self: live.LiveSession, event_cls: Any, data: Any, turn: Any = None
    ) -> None:
        deliver(self, event_cls, data, turn)  # every event built is built here
        made.append(event_cls.__name__)

    def counting_delta(**fields: str) -> MessageDeltaData:
        made.append("delta data")
        return MessageDeltaData(**fields)

    monkeypatch.setattr(live.LiveSession, "deliver", counting_deliver)
    monkeypatch.setattr(agent, "MessageDeltaData", counting_delta)
    return made


async def test_a_turn_nobody_listens_to_builds_no_event(client: Client, built: list[str]) -> None:
    session = await client.create_session(model="echo:x")
    reply = await session.send_and_wait("hello there, echo")
    assert "hello there, echo" in reply.text
    assert built == []
    # the same turn with a handler builds every event, deltas included
    seen: list[SessionEvent] = []
    session.on(seen.append)
    await session.send_and_wait("hello again")
    deltas = [e for e in seen if e.type == "assistant.message_delta"]
    assert len(deltas) > 3
    assert built.count("delta data") == len(deltas)
    assert len([b for b in built if b != "delta data"]) == len(seen)


@pytest.mark.parametrize("listener", ["session", "client", "stream"])
async def test_a_late_listener_sees_a_chain_linked_to_what_it_missed(
    client: Client, listener: str
) -> None:
    session = await client.create_session(model="echo:x")
    await session.send_and_wait("nobody hears this one")
    seen: list[SessionEvent] = []
    if listener == "session":
        session.on(seen.append)
        await session.send_and_wait("now someone listens")
    elif listener == "client":
        client.on(seen.append)
        await session.send_and_wait("now someone listens")
    else:
        seen = [e async for e in session.stream("now someone listens")]
    assert seen[0].type == "user.message"
    # it follows events that happened (unseen), so it is not the first of the session
    assert seen[0].parent_id is not None
    assert seen[0].parent_id not in {e.id for e in seen}
    for before, after in itertools.pairwise(seen):
        assert after.parent_id == before.id
    assert len({e.id for e in seen}) == len(seen)


async def test_every_event_is_chained_when_listened_to_from_the_start(client: Client) -> None:
    seen: list[SessionEvent] = []
    client.on(seen.append)
    session = await client.create_session(model="echo:x")
    await session.send_and_wait("one")
    await session.send_and_wait("two")
    assert seen[0].type == "session.start"
    assert seen[0].parent_id is None
    for before, after in itertools.pairwise(seen):
        assert after.parent_id == before.id
