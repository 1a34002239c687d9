"""The Store contract, run against every store: each test runs once per store kind."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from parley.errors import ConfigError, SessionExistsError, SessionNotFoundError
from parley.info import SessionInfo
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, Usage
from parley.stores import Store
from parley.stores.base import SessionQuery, encode_cursor

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_info(
    session_id: str,
    *,
    model: str = "echo",
    updated_at: datetime = BASE,
    metadata: dict[str, str] | None = None,
    title: str | None = None,
) -> SessionInfo:
    return SessionInfo(
        session_id=session_id,
        model=model,
        title=title,
        created_at=BASE - timedelta(days=1),
        updated_at=updated_at,
        message_count=0,
        usage=Usage(),
        metadata=dict(metadata or {}),
    )


async def list_ids(
    store: Store,
    *,
    limit: int = 50,
    model: str | None = None,
    metadata: dict[str, str] | None = None,
    tag: str | None = None,
) -> list[str]:
    """Every matching id, following cursors to the end."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        query = SessionQuery(
            limit=limit, cursor=cursor, model=model, metadata=metadata or {}, tag=tag
        )
        page = await store.list_sessions(query)
        ids.extend(info.session_id for info in page)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def at(second: int) -> datetime:
    return BASE + timedelta(seconds=second)


# --- create / get ---------------------------------------------------------------------------


async def test_create_then_get_returns_what_was_created(store: Store) -> None:
    info = SessionInfo(
        session_id="user-123-chat",
        model="echo:alpha",
        title="Greetings",
        created_at=BASE,
        updated_at=BASE + timedelta(microseconds=123_457),
        message_count=0,
        usage=Usage(),
        metadata={"owner": "u-42", "lang": "日本語"},
        system_message="Be brief.",
    )
    await store.create_session(info)
    got = await store.get_session("user-123-chat")
    assert got == info
    assert got.busy is False


async def test_create_with_a_taken_id_raises_session_exists(store: Store) -> None:
    await store.create_session(make_info("dup", model="echo"))
    with pytest.raises(SessionExistsError, match="dup"):
        await store.create_session(make_info("dup", model="other"))
    # The first session is untouched.
    assert (await store.get_session("dup")).model == "echo"


async def test_unknown_ids_raise_session_not_found(store: Store) -> None:
    await store.create_session(make_info("known"))
    with pytest.raises(SessionNotFoundError) as info:
        await store.get_session("missing")
    assert info.value.session_id == "missing"
    with pytest.raises(SessionNotFoundError):
        await store.update_session("missing", title="x")
    with pytest.raises(SessionNotFoundError):
        await store.delete_session("missing")
    with pytest.raises(SessionNotFoundError):
        await store.append_messages("missing", [Message.user("hi")])
    with pytest.raises(SessionNotFoundError):
        await store.read_messages("missing")
    # Failed calls leave the store as it was.
    assert await list_ids(store) == ["known"]


# --- listing --------------------------------------------------------------------------------


async def test_list_is_newest_first_with_ties_broken_by_id_descending(store: Store) -> None:
    await store.create_session(make_info("b", updated_at=at(10)))
    await store.create_session(make_info("old", updated_at=at(1)))
    await store.create_session(make_info("a", updated_at=at(10)))
    await store.create_session(make_info("new", updated_at=at(20)))
    await store.create_session(make_info("c", updated_at=at(10)))
    page = await store.list_sessions(SessionQuery())
    assert [i.session_id for i in page] == ["new", "c", "b", "a", "old"]
    assert page.next_cursor is None


async def test_list_of_an_empty_store_is_empty(store: Store) -> None:
    page = await store.list_sessions(SessionQuery())
    assert len(page) == 0
    assert page.next_cursor is None


async def test_paging_visits_every_session_once_in_order(store: Store) -> None:
    # Three sessions per timestamp, so ties straddle page boundaries.
    infos = [make_info(f"s{i:02d}", updated_at=at(i // 3)) for i in range(25)]
    for info in reversed(infos):
        await store.create_session(info)
    expected = [
        i.session_id
        for i in sorted(infos, key=lambda i: (i.updated_at, i.session_id), reverse=True)
    ]

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(SessionQuery(limit=7, cursor=cursor))
        pages.append([i.session_id for i in page])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [sid for p in pages for sid in p] == expected


async def test_no_cursor_when_the_page_is_exactly_full(store: Store) -> None:
    for i in range(7):
        await store.create_session(make_info(f"s{i}", updated_at=at(i)))
    page = await store.list_sessions(SessionQuery(limit=7))
    assert len(page) == 7
    assert page.next_cursor is None
    first = await store.list_sessions(SessionQuery(limit=6))
    assert first.next_cursor is not None
    rest = await store.list_sessions(SessionQuery(limit=6, cursor=first.next_cursor))
    assert [i.session_id for i in rest] == ["s0"]
    assert rest.next_cursor is None


async def test_cursor_of_a_deleted_session_still_resumes_after_it(store: Store) -> None:
    for i in range(6):
        await store.create_session(make_info(f"s{i}", updated_at=at(i)))
    first = await store.list_sessions(SessionQuery(limit=3))
    assert [i.session_id for i in first] == ["s5", "s4", "s3"]
    await store.delete_session("s3")
    assert first.next_cursor is not None
    rest = await store.list_sessions(SessionQuery(limit=3, cursor=first.next_cursor))
    assert [i.session_id for i in rest] == ["s2", "s1", "s0"]


async def test_filter_by_model(store: Store) -> None:
    for i in range(9):
        model = "echo:alpha" if i % 3 == 0 else "echo"
        await store.create_session(make_info(f"s{i}", model=model, updated_at=at(i)))
    assert await list_ids(store, model="echo:alpha", limit=2) == ["s6", "s3", "s0"]
    assert await list_ids(store, model="nothing") == []


async def test_filter_by_metadata_requires_every_pair(store: Store) -> None:
    await store.create_session(
        make_info("both", metadata={"owner": "u1", "team": "red"}, updated_at=at(3))
    )
    await store.create_session(make_info("owner-only", metadata={"owner": "u1"}, updated_at=at(2)))
    await store.create_session(
        make_info("other-team", metadata={"owner": "u1", "team": "blue"}, updated_at=at(1))
    )
    await store.create_session(make_info("none", updated_at=at(0)))

    assert await list_ids(store, metadata={"owner": "u1"}) == ["both", "owner-only", "other-team"]
    assert await list_ids(store, metadata={"owner": "u1", "team": "red"}) == ["both"]
    assert await list_ids(store, metadata={"owner": "u2"}) == []
    assert await list_ids(store, metadata={"owner": "u1", "missing": "x"}) == []


async def test_filter_by_tag_means_key_present(store: Store) -> None:
    await store.create_session(make_info("t1", metadata={"pinned": ""}, updated_at=at(3)))
    await store.create_session(make_info("t2", metadata={"pinned": "yes"}, updated_at=at(2)))
    await store.create_session(make_info("t3", metadata={"owner": "pinned"}, updated_at=at(1)))
    assert await list_ids(store, tag="pinned") == ["t1", "t2"]
    assert await list_ids(store, tag="owner") == ["t3"]
    assert await list_ids(store, tag="absent") == []


async def test_filters_combine_and_page(store: Store) -> None:
    for i in range(12):
        await store.create_session(
            make_info(
                f"s{i:02d}",
                model="a" if i % 2 else "b",
                metadata={"owner": "u1" if i % 3 else "u2", **({"vip": "1"} if i < 6 else {})},
                updated_at=at(i),
            )
        )
    # model a: odd; owner u1: not a multiple of 3; vip: i < 6.
    assert await list_ids(store, model="a", metadata={"owner": "u1"}, limit=1) == [
        "s11",
        "s07",
        "s05",
        "s01",
    ]
    assert await list_ids(store, model="a", metadata={"owner": "u1"}, tag="vip", limit=1) == [
        "s05",
        "s01",
    ]


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", "!!!", "", "W10", "WyJ4IiwieSJd", "eyJhIjoxfQ", "WzEsMiwzXQ", "e30"],
)
async def test_malformed_cursor_is_a_config_error(store: Store, cursor: str) -> None:
    await store.create_session(make_info("s"))
    with pytest.raises(ConfigError, match="cursor"):
        await store.list_sessions(SessionQuery(cursor=cursor))


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_out_of_range_is_a_config_error(store: Store, limit: int) -> None:
    with pytest.raises(ConfigError, match="limit"):
        await store.list_sessions(SessionQuery(limit=limit))


async def test_limit_bounds_are_inclusive(store: Store) -> None:
    await store.create_session(make_info("s0", updated_at=at(0)))
    await store.create_session(make_info("s1", updated_at=at(1)))
    one = await store.list_sessions(SessionQuery(limit=1))
    assert [i.session_id for i in one] == ["s1"]
    assert one.next_cursor is not None
    assert len(await store.list_sessions(SessionQuery(limit=1000))) == 2


async def test_a_foreign_cursor_pages_from_that_position(store: Store) -> None:
    for i in range(5):
        await store.create_session(make_info(f"s{i}", updated_at=at(i)))
    cursor = encode_cursor(at(3), "s3")
    assert [i.session_id for i in await store.list_sessions(SessionQuery(cursor=cursor))] == [
        "s2",
        "s1",
        "s0",
    ]
    # Same time, id just above: s3 itself is included (its id sorts below "s3~").
    cursor = encode_cursor(at(3), "s3~")
    page = await store.list_sessions(SessionQuery(cursor=cursor))
    assert [i.session_id for i in page] == ["s3", "s2", "s1", "s0"]


# --- update ---------------------------------------------------------------------------------


async def test_update_changes_fields_and_touches_updated_at(store: Store) -> None:
    await store.create_session(make_info("s", title="before", metadata={"owner": "u1"}))
    before = await store.get_session("s")
    await store.update_session("s", model="echo:beta", title="after", metadata={"owner": "u2"})
    after = await store.get_session("s")
    assert after.model == "echo:beta"
    assert after.title == "after"
    assert dict(after.metadata) == {"owner": "u2"}
    assert after.updated_at > before.updated_at
    assert after.created_at == before.created_at
    assert after.message_count == before.message_count


async def test_update_leaves_unnamed_fields_alone(store: Store) -> None:
    await store.create_session(make_info("s", model="m", title="t", metadata={"k": "v"}))
    await store.update_session("s", title="t2")
    got = await store.get_session("s")
    assert (got.model, got.title, dict(got.metadata)) == ("m", "t2", {"k": "v"})
    await store.update_session("s")
    got2 = await store.get_session("s")
    assert (got2.model, got2.title, dict(got2.metadata)) == ("m", "t2", {"k": "v"})
    assert got2.updated_at >= got.updated_at > BASE


async def test_update_moves_the_session_to_the_front(store: Store) -> None:
    for i in range(3):
        await store.create_session(make_info(f"s{i}", updated_at=at(i)))
    await store.update_session("s0", title="bumped")
    assert await list_ids(store) == ["s0", "s2", "s1"]


async def test_metadata_filter_follows_the_update(store: Store) -> None:
    await store.create_session(make_info("s", metadata={"owner": "u1", "vip": "1"}))
    await store.create_session(make_info("t", metadata={"owner": "u1"}))
    await store.update_session("s", metadata={"owner": "u2"})
    assert await list_ids(store, metadata={"owner": "u1"}) == ["t"]
    assert await list_ids(store, metadata={"owner": "u2"}) == ["s"]
    assert await list_ids(store, tag="vip") == []
    await store.update_session("s", metadata={})
    assert await list_ids(store, tag="owner") == ["t"]
    assert dict((await store.get_session("s")).metadata) == {}


async def test_model_filter_follows_the_update(store: Store) -> None:
    await store.create_session(make_info("s", model="a"))
    await store.update_session("s", model="b")
    assert await list_ids(store, model="a") == []
    assert await list_ids(store, model="b") == ["s"]


# --- history --------------------------------------------------------------------------------


def sample_history() -> list[Message]:
    t = BASE + timedelta(minutes=5)
    return [
        Message(
            id="m1", role="user", parts=(TextPart(text="What's 2+2? «ünïcode»"),), created_at=t
        ),
        Message(
            id="m2",
            role="assistant",
            parts=(
                TextPart(text="Let me check."),
                ToolCallPart(call_id="c1", name="calc", arguments={"expr": "2+2", "n": [1, 2]}),
            ),
            created_at=t + timedelta(seconds=1),
            model="echo:alpha",
            usage=Usage(input_tokens=10, output_tokens=5, cost=0.25),
        ),
        Message(
            id="m3",
            role="tool",
            parts=(
                ToolResultPart(call_id="c1", content="4"),
                ToolResultPart(call_id="c2", content="boom", is_error=True),
            ),
            created_at=t + timedelta(seconds=2, microseconds=7),
        ),
        Message(
            id="m4",
            role="assistant",
            parts=(TextPart(text="It is"),),
            created_at=t + timedelta(seconds=3),
            model="echo:alpha",
            usage=Usage(input_tokens=20, output_tokens=2, cost=0.5),
            interrupted=True,
            error="provider timed out",
        ),
    ]


async def test_read_returns_exactly_what_was_appended_in_order(store: Store) -> None:
    await store.create_session(make_info("s"))
    assert await store.read_messages("s") == []
    history = sample_history()
    await store.append_messages("s", history[:1])
    await store.append_messages("s", history[1:3])
    await store.append_messages("s", history[3:])
    assert await store.read_messages("s") == history


async def test_append_updates_count_usage_and_updated_at(store: Store) -> None:
    await store.create_session(make_info("s"))
    history = sample_history()
    await store.append_messages("s", history[:2])
    info = await store.get_session("s")
    assert info.message_count == 2
    assert info.usage == Usage(input_tokens=10, output_tokens=5, cost=0.25)
    assert info.updated_at > BASE
    first_update = info.updated_at

    await store.append_messages("s", history[2:])
    info = await store.get_session("s")
    assert info.message_count == 4
    assert info.usage == Usage(input_tokens=30, output_tokens=7, cost=0.75)
    assert info.updated_at >= first_update
    assert info.created_at == BASE - timedelta(days=1)


async def test_append_of_nothing_changes_no_count(store: Store) -> None:
    await store.create_session(make_info("s"))
    await store.append_messages("s", [])
    info = await store.get_session("s")
    assert info.message_count == 0
    assert info.usage == Usage()
    assert await store.read_messages("s") == []


async def test_append_moves_the_session_to_the_front(store: Store) -> None:
    for i in range(3):
        await store.create_session(make_info(f"s{i}", updated_at=at(i)))
    await store.append_messages("s1", [Message.user("hello")])
    assert await list_ids(store) == ["s1", "s2", "s0"]


async def test_histories_are_kept_apart(store: Store) -> None:
    await store.create_session(make_info("a"))
    await store.create_session(make_info("b"))
    a = [Message.user(f"a{i}") for i in range(3)]
    b = [Message.user(f"b{i}") for i in range(2)]
    for ma, mb in zip(a, b, strict=False):
        await store.append_messages("a", [ma])
        await store.append_messages("b", [mb])
    await store.append_messages("a", a[2:])
    assert await store.read_messages("a") == a
    assert await store.read_messages("b") == b
    assert (await store.get_session("a")).message_count == 3
    assert (await store.get_session("b")).message_count == 2


# --- delete ---------------------------------------------------------------------------------


async def test_delete_removes_session_and_history(store: Store) -> None:
    await store.create_session(make_info("gone", metadata={"owner": "u1"}))
    await store.create_session(make_info("kept", metadata={"owner": "u1"}))
    await store.append_messages("gone", sample_history())
    await store.append_messages("kept", [Message.user("stay")])

    await store.delete_session("gone")

    with pytest.raises(SessionNotFoundError):
        await store.get_session("gone")
    with pytest.raises(SessionNotFoundError):
        await store.read_messages("gone")
    with pytest.raises(SessionNotFoundError):
        await store.delete_session("gone")
    assert await list_ids(store) == ["kept"]
    assert await list_ids(store, metadata={"owner": "u1"}) == ["kept"]
    assert [m.text for m in await store.read_messages("kept")] == ["stay"]


async def test_a_new_session_with_a_deleted_id_starts_empty(store: Store) -> None:
    await store.create_session(make_info("again", metadata={"old": "1"}))
    await store.append_messages("again", sample_history())
    await store.delete_session("again")

    await store.create_session(make_info("again", model="fresh"))
    info = await store.get_session("again")
    assert info.model == "fresh"
    assert info.message_count == 0
    assert info.usage == Usage()
    assert await store.read_messages("again") == []
    assert await list_ids(store, tag="old") == []

    message = Message.user("new start")
    await store.append_messages("again", [message])
    assert await store.read_messages("again") == [message]


@pytest.mark.parametrize("micros", [2**63, -(2**70), True], ids=["huge", "very-negative", "bool"])
async def test_cursor_with_impossible_position_is_a_config_error(store: Store, micros: int) -> None:
    # Well-formed JSON, but no encode_cursor output: no datetime is that far out, and a bool
    # is not a timestamp. Stores must answer ConfigError, never a bare OverflowError.
    raw = json.dumps([micros, "x"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    await store.create_session(make_info("s"))
    with pytest.raises(ConfigError, match="cursor"):
        await store.list_sessions(SessionQuery(cursor=cursor))
