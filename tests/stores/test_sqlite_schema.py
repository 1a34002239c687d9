"""The SQLite schema: migrating older files with their histories, and how messages are laid out."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parley.errors import StoreError
from parley.info import SessionInfo
from parley.messages import (
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    message_to_json,
)
from parley.stores import SQLiteStore
from parley.stores.base import SessionQuery
from parley.stores.sqlite import MIGRATIONS
from parley.stores.sqlite.schema import MESSAGE_COLUMNS, message_from_row, message_to_row

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def info(session_id: str) -> SessionInfo:
    return SessionInfo(
        session_id=session_id,
        model="echo",
        title=None,
        created_at=T0,
        updated_at=T0,
        message_count=0,
        usage=Usage(),
    )


def every_kind(tag: str) -> list[Message]:
    """One message of each shape a history holds."""
    call = ToolCallPart(call_id=f"c-{tag}", name="lookup", arguments={"q": "ü", "n": [1, 2]})
    return [
        Message(id=f"{tag}-u", role="user", parts=(TextPart(text=f"hi {tag}"),), created_at=T0),
        Message(
            id=f"{tag}-a",
            role="assistant",
            parts=(TextPart(text="let me look"), call),
            created_at=T0 + timedelta(microseconds=7),
            model="openai:gpt-4o",
            usage=Usage(input_tokens=12, output_tokens=3, cached_tokens=4, cost=None),
        ),
        Message(
            id=f"{tag}-t",
            role="tool",
            parts=(ToolResultPart(call_id=f"c-{tag}", content="boom", is_error=True),),
            created_at=T0 + timedelta(seconds=1),
        ),
        Message(
            id=f"{tag}-x",
            role="assistant",
            parts=(TextPart(text='half "a" re\nply'),),
            created_at=T0 + timedelta(seconds=2),
            model="anthropic:claude",
            usage=Usage(input_tokens=20, output_tokens=0, cost=0.0015),
            interrupted=True,
            error="the process stopped",
        ),
        Message(id=f"{tag}-e", role="assistant", parts=(), created_at=T0 + timedelta(hours=1)),
    ]


@pytest.mark.parametrize("message", every_kind("k"), ids=lambda m: m.id)
def test_a_message_survives_its_row(message: Message) -> None:
    assert message_from_row(message_to_row(message)) == message


def test_a_plain_text_message_keeps_its_text_outside_json() -> None:
    columns = MESSAGE_COLUMNS.split(", ")
    row = dict(zip(columns, message_to_row(Message.user('a "q"')), strict=True))
    assert row["text"] == 'a "q"'
    assert row["parts"] is None


def test_a_row_with_an_unknown_role_is_refused() -> None:
    row = list(message_to_row(Message.user("x")))
    row[1] = "system"
    with pytest.raises(ValueError, match="unknown message role 'system'"):
        message_from_row(tuple(row))


def old_file(path: Path, version: int) -> None:
    """A file as parley at schema `version` left it: two sessions whose turns interleaved."""
    with closing(sqlite3.connect(path)) as conn:
        for _name, step in MIGRATIONS[:version]:
            assert isinstance(step, str)
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
        histories = {"old-a": every_kind("a"), "old-b": every_kind("b")}
        for session_id in histories:
            conn.execute(
                "INSERT INTO sessions (session_id, model, created_at, updated_at, message_count) "
                "VALUES (?, 'echo', 0, 0, 5)",
                (session_id,),
            )
        for seq in range(5):
            for session_id, history in histories.items():
                message = history[seq]
                conn.execute(
                    "INSERT INTO messages (session_id, seq, message_id, role, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (session_id, seq, message.id, message.role, message_to_json(message)),
                )
        conn.commit()


@pytest.mark.parametrize("version", [1, 2])
async def test_an_older_file_is_migrated_with_its_histories(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.db"
    old_file(path, version)
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.read_messages("old-a") == every_kind("a")
        assert await store.read_messages("old-b") == every_kind("b")
        more = Message.user("new")
        await store.append_messages("old-a", [more])
        assert await store.read_messages("old-a") == [*every_kind("a"), more]
        assert await store.read_messages("old-b") == every_kind("b")
        await store.create_session(info("fresh"))
        await store.append_messages("fresh", [Message.user("first")])
        assert [m.text for m in await store.read_messages("fresh")] == ["first"]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    old_file(path, 2)
    with closing(sqlite3.connect(path)) as conn:  # a row the migration cannot read
        conn.execute(
            "INSERT INTO messages (session_id, seq, message_id, role, body) "
            "VALUES ('old-a', 5, 'bad', 'user', 'not json')"
        )
        conn.commit()
    with pytest.raises(StoreError, match=r"0003_clustered_compact_messages.*file is unchanged"):
        await SQLiteStore(path).open()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 11
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sessions)")]
        assert "number" not in columns


async def test_a_history_is_read_by_one_range_of_the_table_itself(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    await store.open()
    try:
        await store.create_session(info("s"))
        conn = store._reader  # long reads run on the worker thread's connection
        assert conn is not None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            await store.read_messages("s")
        finally:
            conn.set_trace_callback(None)
        select = next(s for s in statements if "FROM messages" in s)
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {select}"))
        assert "USING INTEGER PRIMARY KEY" in plan, plan
        indexes = [row[1] for row in conn.execute("PRAGMA index_list(messages)")]
        assert indexes == []  # no second copy of anything
    finally:
        await store.close()


async def test_deleting_a_session_deletes_its_rows_and_a_new_one_starts_empty(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        for session_id in ("keep", "gone"):
            await store.create_session(info(session_id))
            await store.append_messages(session_id, every_kind(session_id))
        await store.delete_session("gone")  # the highest number, which a new session reuses
        await store.create_session(info("gone"))
        await store.create_session(info("other"))
        assert await store.read_messages("gone") == []
        assert await store.read_messages("other") == []
        assert await store.read_messages("keep") == every_kind("keep")
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 5


async def test_an_append_moves_its_session_in_one_index_only(tmp_path: Path) -> None:
    # Each index holding updated_at is a page more in every append's WAL commit: only the
    # newest-first listing's index holds it (migration 0005).
    store = SQLiteStore(tmp_path / "p.db")
    await store.open()
    try:
        conn = store._reader
        assert conn is not None
        holding = [
            name
            for _, name, *_ in conn.execute("PRAGMA index_list(sessions)")
            if any(col[2] == "updated_at" for col in conn.execute(f"PRAGMA index_info({name})"))
        ]
        assert holding == ["sessions_by_updated"]
        model_index = [col[2] for col in conn.execute("PRAGMA index_info(sessions_by_model)")]
        assert model_index == ["model"]
    finally:
        await store.close()


async def test_a_file_with_the_older_model_index_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with closing(sqlite3.connect(path)) as conn:
        for _name, step in MIGRATIONS[:4]:
            if isinstance(step, str):
                conn.executescript(step)
            else:
                step(conn)
        conn.execute("PRAGMA user_version = 4")
        for i, model in enumerate(("a", "b", "a")):
            conn.execute(
                "INSERT INTO sessions (session_id, number, model, created_at, updated_at) "
                "VALUES (?, ?, ?, 0, ?)",
                (f"s{i}", i + 1, model, i),
            )
        conn.commit()
    store = SQLiteStore(path)
    await store.open()
    try:
        page = await store.list_sessions(SessionQuery(model="a", limit=10))
        assert [s.session_id for s in page.sessions] == ["s2", "s0"]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
