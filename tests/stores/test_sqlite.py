"""What only the SQLite store promises: its file, WAL, migrations, durability, append-only."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parley.errors import ConfigError, StoreError
from parley.info import SessionInfo
from parley.messages import Message, TextPart, ToolCallPart, Usage
from parley.stores import MemoryStore, SessionQuery, SQLiteStore, store_from_url
from parley.stores.postgres import PostgresStore
from parley.stores.sqlite import MIGRATIONS

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_info(session_id: str, **metadata: str) -> SessionInfo:
    return SessionInfo(
        session_id=session_id,
        model="echo",
        title=None,
        created_at=NOW,
        updated_at=NOW,
        message_count=0,
        usage=Usage(),
        metadata=metadata,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "parley.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def pragma(path: Path, name: str) -> object:
    """Read a PRAGMA through a connection of our own, not the store's."""
    with closing(sqlite3.connect(path)) as conn:
        value: object = conn.execute(f"PRAGMA {name}").fetchone()[0]
        return value


# --- the file -------------------------------------------------------------------------------


async def test_open_creates_the_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "parley.db"
    store = SQLiteStore(path)
    assert not path.parent.exists()
    await store.open()
    try:
        assert path.is_file()
    finally:
        await store.close()


async def test_journal_mode_is_wal(store: SQLiteStore) -> None:
    assert pragma(store.path, "journal_mode") == "wal"


async def test_user_version_counts_the_migrations(store: SQLiteStore) -> None:
    assert len(MIGRATIONS) >= 1
    assert pragma(store.path, "user_version") == len(MIGRATIONS)


async def test_migration_names_are_numbered_in_order() -> None:
    numbers = [int(name.split("_", 1)[0]) for name, _ in MIGRATIONS]
    assert numbers == list(range(1, len(MIGRATIONS) + 1))


async def test_open_twice_and_close_twice_are_harmless(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    await store.open()
    await store.open()
    await store.create_session(make_info("s"))
    await store.close()
    await store.close()
    assert pragma(tmp_path / "x.db", "user_version") == len(MIGRATIONS)


async def test_a_store_that_is_not_open_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    with pytest.raises(StoreError, match="not open"):
        await store.get_session("s")


async def test_reopening_keeps_sessions_and_messages(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    history = [
        Message.user("remember me"),
        Message(
            id="a1",
            role="assistant",
            parts=(TextPart(text="ok"), ToolCallPart(call_id="c", name="t", arguments={"x": 1})),
            created_at=NOW,
            model="echo",
            usage=Usage(input_tokens=3, output_tokens=1, cost=0.5),
        ),
    ]
    first = SQLiteStore(path)
    await first.open()
    await first.create_session(make_info("keep", owner="u1"))
    await first.append_messages("keep", history)
    before = await first.get_session("keep")
    await first.close()

    second = SQLiteStore(path)
    await second.open()
    try:
        assert await second.get_session("keep") == before
        assert await second.read_messages("keep") == history
        assert pragma(path, "user_version") == len(MIGRATIONS)
        # History keeps growing where it stopped.
        more = Message.user("and again")
        await second.append_messages("keep", [more])
        assert await second.read_messages("keep") == [*history, more]
    finally:
        await second.close()


async def test_a_newer_schema_is_refused_with_upgrade_advice(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        conn.commit()
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="upgrade parley") as info:
        await store.open()
    assert str(len(MIGRATIONS) + 1) in str(info.value)
    # Nothing was migrated or left half-open.
    assert pragma(path, "user_version") == len(MIGRATIONS) + 1
    with pytest.raises(StoreError, match="not open"):
        await store.get_session("s")


# --- append-only history --------------------------------------------------------------------

_WRITE = re.compile(
    r"^\s*(?:(INSERT)(?:\s+OR\s+\w+)?\s+INTO|(REPLACE)\s+INTO|(UPDATE)(?:\s+OR\s+\w+)?|"
    r"(DELETE)\s+FROM)\s+\"?(\w+)",
    re.IGNORECASE,
)


def writes_to(statements: list[str], table: str) -> list[str]:
    """The verbs (INSERT, REPLACE, UPDATE, DELETE) of the statements that write `table`."""
    verbs = []
    for sql in statements:
        match = _WRITE.match(sql)
        if match and match.group(5).lower() == table:
            verb = next(g for g in match.groups()[:4] if g)
            verbs.append(verb.upper())
    return verbs


async def test_append_writes_only_the_new_row(store: SQLiteStore) -> None:
    await store.create_session(make_info("s"))
    for i in range(10):
        await store.append_messages("s", [Message.user(f"message {i}")])
    statements: list[str] = []
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(statements.append)
    try:
        await store.append_messages("s", [Message.user("the eleventh")])
    finally:
        conn.set_trace_callback(None)

    assert statements, "the trace callback saw nothing"
    assert writes_to(statements, "messages") == ["INSERT"], statements
    # Counts and usage are kept on the session row by the same transaction.
    assert writes_to(statements, "sessions") == ["UPDATE"], statements
    assert writes_to(statements, "session_tags") == [], statements
    # And the history is intact.
    assert [m.text for m in await store.read_messages("s")] == [
        *(f"message {i}" for i in range(10)),
        "the eleventh",
    ]
    assert (await store.get_session("s")).message_count == 11


async def test_append_of_many_messages_inserts_one_row_each(store: SQLiteStore) -> None:
    await store.create_session(make_info("s"))
    await store.append_messages("s", [Message.user("first")])
    statements: list[str] = []
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(statements.append)
    try:
        await store.append_messages("s", [Message.user(f"m{i}") for i in range(3)])
    finally:
        conn.set_trace_callback(None)
    assert writes_to(statements, "messages") == ["INSERT"] * 3, statements


def test_writes_to_recognises_each_kind_of_write() -> None:
    statements = [
        "INSERT INTO messages (a) VALUES (1)",
        "insert or replace into messages values (1)",
        "REPLACE INTO messages VALUES (1)",
        'UPDATE "messages" SET body = 1',
        "DELETE FROM messages WHERE 1",
        "UPDATE sessions SET message_count = message_count + 1",
        "SELECT * FROM messages",
    ]
    assert writes_to(statements, "messages") == ["INSERT", "INSERT", "REPLACE", "UPDATE", "DELETE"]
    assert writes_to(statements, "sessions") == ["UPDATE"]


# --- store URLs -----------------------------------------------------------------------------


def test_sqlite_url_with_three_slashes_is_relative() -> None:
    store = store_from_url("sqlite:///rel.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == Path("rel.db")
    assert not store.path.is_absolute()
    nested = store_from_url("sqlite:///data/dir/p.db")
    assert isinstance(nested, SQLiteStore)
    assert nested.path == Path("data/dir/p.db")


def test_sqlite_url_with_four_slashes_is_absolute() -> None:
    store = store_from_url("sqlite:////abs/x.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == Path("/abs/x.db")
    assert store.path.is_absolute()


def test_scheme_is_case_insensitive() -> None:
    assert isinstance(store_from_url("SQLite:///x.db"), SQLiteStore)
    assert isinstance(store_from_url("MEMORY://"), MemoryStore)


def test_memory_url() -> None:
    assert isinstance(store_from_url("memory://"), MemoryStore)
    with pytest.raises(ConfigError, match="memory:// takes no path"):
        store_from_url("memory://somewhere")


@pytest.mark.parametrize("url", ["postgresql://u:secret@localhost/db", "postgres://localhost/db"])
def test_postgres_urls_make_a_postgres_store(url: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, PostgresStore)
    assert "secret" not in repr(store)


@pytest.mark.parametrize("url", ["foo://x", "parley.db", "", "sqlite:/x.db"])
def test_unknown_url_names_the_forms_that_exist(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        store_from_url(url)
    message = str(info.value)
    assert "unknown store URL" in message
    assert "sqlite:///" in message
    assert "memory://" in message


@pytest.mark.parametrize("url", ["sqlite://x", "sqlite://", "sqlite:///"])
def test_bad_sqlite_url_says_what_to_write(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        store_from_url(url)
    message = str(info.value)
    assert repr(url) in message
    assert "sqlite:///relative/path.db" in message
    assert "sqlite:////absolute/path.db" in message


async def test_store_from_url_gives_a_working_store(tmp_path: Path) -> None:
    path = tmp_path / "via-url" / "p.db"
    store = store_from_url(f"sqlite:///{path}")
    await store.open()
    try:
        await store.create_session(make_info("s"))
        assert (await store.get_session("s")).session_id == "s"
    finally:
        await store.close()
    assert path.is_file()


async def test_a_path_that_cannot_be_a_database_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SQLiteStore(blocker / "parley.db")
    with pytest.raises(StoreError, match="writable"):
        await store.open()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db"):
        await SQLiteStore(garbage).open()


# --- threads and checkpoints ----------------------------------------------------------------


async def test_writes_run_on_the_loop_thread_and_long_reads_on_the_worker(
    store: SQLiteStore,
) -> None:
    assert store._conn is not None
    assert store._reader is not None
    threads: dict[str, set[int]] = {"writer": set(), "reader": set()}
    store._conn.set_trace_callback(lambda _: threads["writer"].add(threading.get_ident()))
    store._reader.set_trace_callback(lambda _: threads["reader"].add(threading.get_ident()))
    await store.create_session(make_info("s"))
    await store.append_messages("s", [Message.user("hi")])
    await store.get_session("s")
    assert [m.text for m in await store.read_messages("s")] == ["hi"]
    await store.list_sessions(SessionQuery())
    assert threads["writer"] == {threading.get_ident()}
    assert len(threads["reader"]) == 1
    assert threads["reader"] != threads["writer"]


def wal_restarts(store: SQLiteStore) -> int:
    """The WAL header's checkpoint sequence number: it grows each time the WAL starts again
    from its beginning (read from the file, so that looking changes nothing)."""
    header = store.path.with_name(store.path.name + "-wal").read_bytes()[:16]
    return int.from_bytes(header[12:16], "big")


async def test_after_a_quiet_moment_the_wal_starts_again(store: SQLiteStore) -> None:
    await store.create_session(make_info("s"))
    for i in range(300):
        await store.append_messages("s", [Message.user(f"{i} " + "x" * 1000)])
    before = wal_restarts(store)
    await asyncio.sleep(1.3)  # the quiet checkpoint runs on the worker thread
    await store.read_messages("s")  # which is first-in first-out: it has finished
    await store.append_messages("s", [Message.user("after")])
    assert wal_restarts(store) == before + 1
    assert len(await store.read_messages("s")) == 301


async def test_the_wal_stays_bounded_under_writes_without_a_pause(store: SQLiteStore) -> None:
    await store.create_session(make_info("s"))
    writes = 5000
    for i in range(writes):
        await store.append_messages("s", [Message.user(f"{i} " + "x" * 1000)])
    wal = store.path.with_name(store.path.name + "-wal").stat().st_size
    # each write adds two pages or more: without checkpoints the WAL would be over 80 MB
    assert wal <= (4096 + 64) * (8192 + 24), wal
    assert len(await store.read_messages("s")) == writes
