"""The official Copilot Python SDK (1.0.27, unchanged) driving `parley serve`.

Each test runs over three transports (see the `sdk` fixture): stdio by path, stdio through
`COPILOT_CLI_PATH`, and TCP through `RuntimeConnection.for_uri`.
"""

from __future__ import annotations

import asyncio

import pytest
from copilot.session import PermissionHandler
from copilot.session_events import (
    AssistantMessageData,
    AssistantMessageDeltaData,
    SessionIdleData,
    UserMessageData,
)

from copilot_runtime import Sdk
from parley import Client

pytestmark = pytest.mark.slow

approve = PermissionHandler.approve_all


def _text(event: object) -> str:
    data = getattr(event, "data", None)
    assert isinstance(data, AssistantMessageData), f"not an assistant.message: {event!r}"
    return data.content


async def test_seed_scenario(sdk: Sdk, sqlite_url: str) -> None:
    """Three sessions (one with a chosen id), a turn and a follow-up in each, list, delete."""
    async with sdk.client() as client:
        s1 = await client.create_session(on_permission_request=approve, model="echo:alpha")
        s2 = await client.create_session(on_permission_request=approve, model="echo:alpha")
        s3 = await client.create_session(
            on_permission_request=approve, model="echo:beta", session_id="user-123-chat"
        )
        assert s3.session_id == "user-123-chat"
        openings = {s1: "I am working on a Python project", s2: "Setting up tsconfig", s3: "Go mod"}
        replies = await asyncio.gather(*(s.send_and_wait(t) for s, t in openings.items()))
        assert [_text(r).split("]")[0] for r in replies] == [
            "[offline echo · echo:alpha",
            "[offline echo · echo:alpha",
            "[offline echo · echo:beta",
        ]
        follow_ups = await asyncio.gather(*(s.send_and_wait("and then?") for s in openings))
        for (session, opening), reply in zip(openings.items(), follow_ups, strict=True):
            assert opening in _text(reply), f"{session.session_id} lost its own history"
            others = [o for o in openings.values() if o != opening]
            assert not any(o in _text(reply) for o in others)

        listed = {info.session_id for info in await client.list_sessions()}
        assert {s1.session_id, s2.session_id, "user-123-chat"} <= listed
        await client.delete_session("user-123-chat")
        listed = {info.session_id for info in await client.list_sessions()}
        assert "user-123-chat" not in listed
        assert {s1.session_id, s2.session_id} <= listed

    await sdk.release_store()
    async with Client(store=sqlite_url) as parley:  # what the runtime stored
        history = await (await parley.resume_session(s1.session_id)).messages()
        assert [m.role for m in history] == ["user", "assistant"] * 2
        assert history[0].text == "I am working on a Python project"
        assert (await parley.get_session(s2.session_id)).model == "echo:alpha"


async def test_readme_quick_start_with_streamed_deltas(sdk: Sdk) -> None:
    """`send` plus `session.on` until `session.idle`, as in the SDK's README, streaming."""
    async with sdk.client() as client:
        session = await client.create_session(
            on_permission_request=approve, model="echo:alpha", streaming=True
        )
        deltas: list[str] = []
        finals: list[str] = []
        users: list[str] = []
        done = asyncio.Event()

        def on_event(event: object) -> None:
            match getattr(event, "data", None):
                case AssistantMessageDeltaData() as data:
                    deltas.append(data.delta_content or "")
                case AssistantMessageData() as data:
                    finals.append(data.content)
                case UserMessageData() as data:
                    users.append(data.content)
                case SessionIdleData():
                    done.set()

        session.on(on_event)
        message_id = await session.send("What is 2+2?")
        await asyncio.wait_for(done.wait(), 30)
        assert isinstance(message_id, str)
        assert message_id
        assert users == ["What is 2+2?"]
        assert len(finals) == 1
        assert "What is 2+2?" in finals[0]
        assert len(deltas) > 3, "the reply was not streamed"
        assert "".join(deltas) == finals[0]


async def test_set_model_get_events_and_resume(sdk: Sdk) -> None:
    async with sdk.client() as client:
        session = await client.create_session(on_permission_request=approve, model="echo:alpha")
        first = await session.send_and_wait("remember the word tangerine")
        assert "echo:alpha" in _text(first)
        await session.set_model("echo:beta")
        second = await session.send_and_wait("which word?")
        assert "echo:beta" in _text(second)
        assert "tangerine" in _text(second)

        events = await session.get_events()
        kinds = [event.type.value for event in events]
        assert kinds == ["user.message", "assistant.message"] * 2
        assert events[0].data.content == "remember the word tangerine"  # type: ignore[union-attr]
        assert [e.parent_id for e in events[1:]] == [e.id for e in events[:-1]]
        session_id = session.session_id
        await session.disconnect()

        again = await client.resume_session(session_id, on_permission_request=approve)
        assert len(await again.get_events()) == 4
        third = await again.send_and_wait("and now?")
        assert "tangerine" in _text(third)
