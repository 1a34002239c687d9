"""The memory store's own details (the Store contract is in test_store_contract.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from parley.config import ProviderConfig
from parley.info import SessionInfo
from parley.messages import Message, Usage
from parley.stores import MemoryStore


async def test_an_append_keeps_every_other_field_of_the_session() -> None:
    # append_messages copies SessionInfo field by field: a field added later must be kept too.
    store = MemoryStore()
    await store.open()
    at = datetime(2024, 1, 1, tzinfo=UTC)
    info = SessionInfo(
        session_id="s",
        model="echo:x",
        title="a title",
        created_at=at,
        updated_at=at,
        message_count=0,
        usage=Usage(input_tokens=1, output_tokens=2, cost=0.5),
        metadata={"owner": "u1"},
        system_message="be brief",
        on_busy="reject",
        provider=ProviderConfig(type="openai", base_url="http://localhost:1"),
        busy=True,
    )
    assert all(getattr(info, f.name) != f.default for f in dataclasses.fields(SessionInfo)), (
        "every field is set to something other than its default"
    )
    await store.create_session(info)
    reply = Message.user("hello")
    await store.append_messages("s", [reply])
    after = await store.get_session("s")
    changed = {"updated_at", "message_count", "usage", "busy"}  # busy: the runtime's to say
    for f in dataclasses.fields(SessionInfo):
        if f.name not in changed:
            assert getattr(after, f.name) == getattr(info, f.name), f.name
    assert after.message_count == 1
    assert after.busy is False
    assert after.updated_at > at
    assert await store.read_messages("s") == [reply]
