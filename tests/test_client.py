"""Client: creating, resuming, listing and deleting sessions, on every store."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from copilot_runtime import embedded_and_remote
from parley import (
    Client,
    ClientConfig,
    ConfigError,
    InvalidSessionIdError,
    SessionBusyError,
    SessionClosedError,
    SessionConfig,
    SessionEvent,
    SessionExistsError,
    SessionNotFoundError,
    UnknownModelError,
)

client = pytest.fixture(name="client", params=["embedded", "remote"])(embedded_and_remote)


async def test_create_session_from_config_and_from_kwargs(client: Client) -> None:
    a = await client.create_session(SessionConfig(model="echo:alpha", title="A"))
    b = await client.create_session(model="echo:beta", metadata={"owner": "u1"})
    assert (a.model, a.title) == ("echo:alpha", "A")
    assert b.model == "echo:beta"
    info = await client.get_session(b.session_id)
    assert info.metadata == {"owner": "u1"}
    assert info.tags == {"owner": "u1"}
    assert info.message_count == 0


async def test_config_and_kwargs_together_is_a_config_error(client: Client) -> None:
    with pytest.raises(ConfigError, match="not both"):
        await client.create_session(SessionConfig(), model="echo")


async def test_unknown_kwarg_is_a_config_error(client: Client) -> None:
    with pytest.raises(ConfigError, match="modle"):
        await client.create_session(modle="echo")


async def test_generated_ids_are_unique_uuids(client: Client) -> None:
    ids = {(await client.create_session()).session_id for _ in range(20)}
    assert len(ids) == 20
    for session_id in ids:
        assert str(uuid.UUID(session_id)) == session_id


async def test_default_model_is_echo(client: Client) -> None:
    session = await client.create_session()
    assert session.model == "echo"
    reply = await session.send_and_wait("hi")
    assert reply.text.startswith("[offline echo")


async def test_caller_chosen_id_and_duplicate(client: Client) -> None:
    session = await client.create_session(session_id="user-123-chat")
    assert session.session_id == "user-123-chat"
    with pytest.raises(SessionExistsError, match="user-123-chat"):
        await client.create_session(session_id="user-123-chat")


async def test_duplicate_id_of_a_session_not_live_is_rejected_by_the_store(
    sqlite_url: str,
) -> None:
    async with Client(store=sqlite_url) as first:
        await first.create_session(session_id="taken")
    async with Client(store=sqlite_url) as second:
        with pytest.raises(SessionExistsError):
            await second.create_session(session_id="taken")


@pytest.mark.parametrize(
    "bad_id", ["", "x" * 129, "a\nb", "a/b", "a\\b", "a..b", " lead", "trail ", "tab\t"]
)
async def test_invalid_ids_are_rejected_everywhere(client: Client, bad_id: str) -> None:
    with pytest.raises(InvalidSessionIdError):
        await client.create_session(session_id=bad_id)
    with pytest.raises(InvalidSessionIdError):
        await client.resume_session(bad_id)
    with pytest.raises(InvalidSessionIdError):
        await client.get_session(bad_id)
    with pytest.raises(InvalidSessionIdError):
        await client.delete_session(bad_id)


async def test_unknown_ids_raise_session_not_found(client: Client) -> None:
    for call in (client.resume_session, client.get_session, client.delete_session):
        with pytest.raises(SessionNotFoundError, match="no-such") as info:
            await call("no-such")
        assert isinstance(info.value, KeyError)


async def test_unknown_model_fails_at_create_with_what_to_do(client: Client) -> None:
    with pytest.raises(UnknownModelError, match="configured: ") as info:
        await client.create_session(model="mystery-model")
    assert "'provider:model'" in str(info.value)
    with pytest.raises(UnknownModelError, match="no provider 'nowhere'"):
        await client.create_session(model="nowhere:x")
    # A known family whose provider has no key: said at create, naming the variable to set.
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        await client.create_session(model="gpt-5")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        await client.create_session(model="anthropic:claude-sonnet-4-5")
    page = await client.list_sessions()
    assert len(page) == 0  # nothing half-created


async def test_bad_default_model_fails_at_start(tmp_path: Path) -> None:
    client = Client(store="memory://", config=ClientConfig(default_model="mystery"))
    with pytest.raises(UnknownModelError):
        await client.start()


async def test_bad_store_arguments() -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        Client(store="mysql://x")
    with pytest.raises(ConfigError):
        Client(store=42)  # type: ignore[arg-type]


async def test_store_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env" / "p.db"
    monkeypatch.setenv("PARLEY_STORE", f"sqlite:///{db}")
    async with Client() as client:
        await client.create_session(session_id="from-env")
    assert db.exists()


async def test_default_store_is_dot_parley_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARLEY_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    async with Client() as client:
        await client.create_session(session_id="here")
    assert (tmp_path / ".parley" / "parley.db").exists()


async def test_a_client_that_is_not_running_says_so(store_url: str) -> None:
    client = Client(store=store_url)
    with pytest.raises(SessionClosedError, match="start"):
        await client.create_session()
    async with client:
        session = await client.create_session()
    with pytest.raises(SessionClosedError):
        await session.send("after stop")
    with pytest.raises(SessionClosedError):
        await client.list_sessions()


async def test_start_and_stop_are_idempotent(store_url: str) -> None:
    client = Client(store=store_url)
    await client.start()
    await client.start()
    await client.create_session(session_id="s")
    await client.stop()
    await client.stop()


async def test_resume_returns_full_history_after_restart(sqlite_url: str) -> None:
    async with Client(store=sqlite_url) as client:
        session = await client.create_session(session_id="keep", system_message="be brief")
        await session.send_and_wait("first")
        await session.send_and_wait("second")
        before = await session.messages()
    async with Client(store=sqlite_url) as client:
        events: list[SessionEvent] = []
        client.on(events.append)
        again = await client.resume_session("keep")
        assert await again.messages() == before
        assert [e.type for e in events] == ["session.resume"]
        reply = await again.send_and_wait("third")
        assert "#3" in reply.text
        assert '"first"' in reply.text
        info = await client.get_session("keep")
        assert info.message_count == 6
        assert info.system_message == "be brief"


async def test_resume_of_a_live_session_shares_its_state(client: Client) -> None:
    session = await client.create_session()
    again = await client.resume_session(session.session_id)
    assert again == session
    await again.send_and_wait("hello")
    assert len(await session.messages()) == 2


async def test_list_sessions_is_newest_first_with_cursor_paging(client: Client) -> None:
    created = [await client.create_session(session_id=f"s{i:02}") for i in range(12)]
    # Touch them in a known order: the last one touched is the newest.
    for session in reversed(created):
        await session.send_and_wait("touch")
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.list_sessions(limit=5, cursor=cursor)
        seen.extend(info.session_id for info in page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"s{i:02}" for i in range(12)]


async def test_list_sessions_reads_metadata_only_and_filters(client: Client) -> None:
    a = await client.create_session(model="echo:alpha", metadata={"owner": "ann", "beta": "1"})
    await client.create_session(model="echo:beta", metadata={"owner": "bob"})
    await client.create_session(model="echo:alpha", metadata={"owner": "bob"})
    await a.send_and_wait("count me")
    assert {i.model for i in await client.list_sessions(model="echo:alpha")} == {"echo:alpha"}
    assert len(await client.list_sessions(model="echo:alpha")) == 2
    owned = await client.list_sessions(metadata={"owner": "bob"})
    assert {i.metadata["owner"] for i in owned} == {"bob"}
    assert len(owned) == 2
    tagged = await client.list_sessions(tag="beta")
    assert [i.session_id for i in tagged] == [a.session_id]
    info = tagged[0]
    assert info.message_count == 2
    assert info.usage.output_tokens > 0
    assert info.title == "count me"
    assert info.created_at <= info.updated_at
    with pytest.raises(ConfigError):
        await client.list_sessions(limit=0)
    with pytest.raises(ConfigError, match="cursor"):
        await client.list_sessions(cursor="garbage!")


async def test_delete_removes_the_history_too(client: Client) -> None:
    session = await client.create_session(session_id="gone")
    await session.send_and_wait("remember me")
    await client.delete_session("gone")
    with pytest.raises(SessionNotFoundError):
        await client.get_session("gone")
    with pytest.raises(SessionClosedError, match="deleted") as closed:
        await session.send("still there?")
    assert "create_session" in str(closed.value)
    assert "resume_session" not in str(closed.value)
    fresh = await client.create_session(session_id="gone")
    assert await fresh.messages() == []


async def test_delete_aborts_a_running_turn_first(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    seen: list[SessionEvent] = []
    session.on(seen.append)
    stream = session.stream("a long answer please")
    async for event in stream:
        if event.type == "assistant.message_delta":
            break
    waiter = asyncio.ensure_future(session.send_and_wait("queued behind it"))
    await asyncio.sleep(0)
    await client.delete_session(session.session_id)
    with pytest.raises(SessionClosedError, match="deleted"):
        await waiter
    kinds = [e.type for e in seen]
    assert "abort" in kinds
    assert kinds[-1] == "session.idle"
    with pytest.raises(SessionNotFoundError):
        await client.get_session(session.session_id)
    await stream.aclose()


async def test_client_on_sees_every_session_and_unsubscribes(client: Client) -> None:
    events: list[SessionEvent] = []
    stop = client.on(events.append)
    a = await client.create_session()
    b = await client.create_session()
    await a.send_and_wait("one")
    await b.send_and_wait("two")
    assert {e.session_id for e in events} == {a.session_id, b.session_id}
    stop()
    count = len(events)
    await a.send_and_wait("three")
    assert len(events) == count


async def test_async_handlers_and_failing_handlers(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []

    async def async_handler(event: SessionEvent) -> None:
        got.append(event.type)

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("handler bug")

    client.on(broken)
    client.on(async_handler)
    session = await client.create_session()
    reply = await session.send_and_wait("still works")
    assert reply.text
    await client.stop()  # drains async handlers
    assert "session.idle" in got
    assert "handler bug" in caplog.text


async def test_resume_on_busy_applies_to_a_live_session(client: Client) -> None:
    session = await client.create_session(model="slow:x")
    again = await client.resume_session(session.session_id, on_busy="reject")
    task = asyncio.ensure_future(session.send_and_wait("first"))
    await asyncio.sleep(0)
    with pytest.raises(SessionBusyError):
        await again.send("second")
    await task
    with pytest.raises(ConfigError):
        await client.resume_session(session.session_id, on_busy="drop")  # type: ignore[arg-type]


async def test_session_async_handlers_finish_before_close_returns(client: Client) -> None:
    finished: list[str] = []

    async def slow_handler(event: SessionEvent) -> None:
        await asyncio.sleep(0.01)
        finished.append(event.type)

    session = await client.create_session()
    session.on(slow_handler)
    await session.send_and_wait("hello")
    await session.close()
    assert finished.count("session.idle") == 1
    assert "assistant.message" in finished


async def test_get_session_reports_the_on_busy_in_effect(client: Client) -> None:
    session = await client.create_session(on_busy="reject", session_id="ob")
    assert (await client.get_session("ob")).on_busy == "reject"
    await client.resume_session("ob", on_busy="enqueue")
    assert (await client.get_session("ob")).on_busy == "enqueue"
    await session.close()
    assert (await client.get_session("ob")).on_busy == "reject"  # the stored setting


async def test_update_session_changes_title_and_metadata(client: Client) -> None:
    session = await client.create_session(session_id="u", metadata={"owner": "ann"})
    info = await client.update_session("u", title="Renamed", metadata={"owner": "bob"})
    assert (info.title, dict(info.metadata)) == ("Renamed", {"owner": "bob"})
    assert session.title == "Renamed"
    assert len(await client.list_sessions(metadata={"owner": "bob"})) == 1
    assert len(await client.list_sessions(metadata={"owner": "ann"})) == 0
    with pytest.raises(ConfigError, match="metadata"):
        await client.update_session("u", metadata={"owner": 1})  # type: ignore[dict-item]
    with pytest.raises(SessionNotFoundError):
        await client.update_session("nobody", title="x")


async def test_export_and_import_between_stores(client: Client, tmp_path: Path) -> None:
    session = await client.create_session(session_id="move-me", system_message="Be kind.")
    await session.send_and_wait("first")
    await session.send_and_wait("second")
    data = await client.export_session("move-me")
    async with Client(store=f"sqlite:///{tmp_path / 'other.db'}") as other:
        info = await other.import_session(data)
        assert info.message_count == 4
        assert info.system_message == "Be kind."
        assert await other.export_session("move-me") == data
        resumed = await other.resume_session("move-me")
        assert "#3 here" in (await resumed.send_and_wait("third")).text
