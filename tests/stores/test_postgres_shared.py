"""Several clients on one PostgreSQL database, as separate worker processes would be.

Each client here has its own `PostgresStore` (its own pool, lock connection and LISTEN
connection), exactly what a second process has; tests/test_scale_out.py does the same with real
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from parley import (
    Client,
    ClientConfig,
    ConfigError,
    SessionBusyError,
    SessionEvent,
    StoreError,
    TurnAbortedError,
)
from parley.messages import Message
from parley.models import EchoModel
from parley.stores.base import SessionQuery
from parley.stores.postgres import MIGRATIONS, PostgresStore
from parley.stores.postgres.events import CHUNK_BYTES
from parley.stores.postgres.schema import migrate
from parley.stores.postgres.store import list_sql
from parley.stores.postgres.turns import TurnLocks


@contextlib.asynccontextmanager
async def worker(url: str, **store_options: object) -> AsyncIterator[Client]:
    """A client as one worker process has it: its own store, a fast and a slow echo model."""
    providers = {"slow": EchoModel(token_delay=0.03, provider="slow")}
    store = PostgresStore(url, poll=0.2, **store_options)  # type: ignore[arg-type]
    try:
        async with Client(store=store, config=ClientConfig(providers=providers)) as client:
            yield client
    finally:
        await store.close()  # a client closes only the stores it made itself


def user_texts(history: list[Message]) -> list[str]:
    return [m.text for m in history if m.role == "user"]


def assert_whole(history: list[Message]) -> None:
    """Alternating, and every reply answered the whole history before it (echo counts it)."""
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)
    for number, reply in enumerate(history[1::2], start=1):
        expected = "the first message" if number == 1 else f"#{number} here"
        assert expected in reply.text, (number, reply.text)


async def test_two_workers_sending_to_one_session_never_interleave(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        mine = await a.create_session(session_id="shared", model="slow:x")
        theirs = await b.resume_session("shared")
        sends = [mine.send_and_wait(f"a{i}") for i in range(4)]
        sends += [theirs.send_and_wait(f"b{i}") for i in range(4)]
        await asyncio.gather(*sends)

        history = await mine.messages()
        assert history == await theirs.messages()  # both see the store, not a stale copy
    assert len(history) == 16
    assert_whole(history)
    said = user_texts(history)
    assert sorted(said) == sorted([f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)])
    assert [t for t in said if t[0] == "a"] == ["a0", "a1", "a2", "a3"]  # each worker's FIFO
    assert [t for t in said if t[0] == "b"] == ["b0", "b1", "b2", "b3"]


async def test_a_worker_picks_up_the_model_another_worker_set(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        mine = await a.create_session(session_id="m", model="echo")
        theirs = await b.resume_session("m")
        await mine.set_model("slow:x")
        reply = await theirs.send_and_wait("which model?")
    assert reply.model == "slow:x"


async def test_on_busy_reject_answers_across_workers(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        mine = await a.create_session(session_id="r", model="slow:x")
        theirs = await b.resume_session("r", on_busy="reject")
        started = asyncio.Event()
        b.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
        running = asyncio.create_task(mine.send_and_wait("a long answer, word after word"))
        await asyncio.wait_for(started.wait(), 10)  # a's turn holds the session now

        with pytest.raises(SessionBusyError, match="'r' is busy"):
            await theirs.send("now?")
        with pytest.raises(SessionBusyError):
            await theirs.send_and_wait("now?")
        with pytest.raises(SessionBusyError):
            async for _ in theirs.stream("now?"):
                pass
        await running
        reply = await theirs.send_and_wait("and now?")  # free again: it runs
        history = await theirs.messages()
    assert "#2 here" in reply.text
    assert user_texts(history) == ["a long answer, word after word", "and now?"]


async def test_abort_while_waiting_for_another_worker_stores_nothing(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        mine = await a.create_session(session_id="w", model="slow:x")
        theirs = await b.resume_session("w")
        started = asyncio.Event()
        b.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
        running = asyncio.create_task(mine.send_and_wait("one two three four five six"))
        await asyncio.wait_for(started.wait(), 10)
        waiting = asyncio.create_task(theirs.send_and_wait("queued behind a"))
        await asyncio.sleep(0.1)
        assert theirs.busy
        assert await theirs.abort()
        with pytest.raises(TurnAbortedError, match="while it waited for another worker"):
            await waiting
        await running
        history = await mine.messages()
    assert user_texts(history) == ["one two three four five six"]
    assert not history[1].interrupted


async def test_events_reach_every_worker_whole(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        seen: list[SessionEvent] = []
        idle = asyncio.Event()

        def collect(event: SessionEvent) -> None:
            seen.append(event)
            if event.type == "session.idle":
                idle.set()

        b.on(collect)
        session = await a.create_session(session_id="ev", model="slow:x")
        big = "word " * (3 * CHUNK_BYTES // 5)  # three notifications' worth of JSON
        reply = await session.send_and_wait(big)
        await asyncio.wait_for(idle.wait(), 10)

    kinds = [e.type for e in seen]
    assert kinds[0] == "session.start"
    assert "assistant.message_delta" in kinds
    assert kinds[-3:] == ["assistant.usage", "assistant.turn_end", "session.idle"]
    assert {e.session_id for e in seen} == {"ev"}
    user = next(e for e in seen if e.type == "user.message")
    assert user.data.content == big  # chunked on the way, whole on arrival
    final = next(e for e in seen if e.type == "assistant.message")
    assert final.data.content == reply.text
    deltas = "".join(e.data.delta_content for e in seen if e.type == "assistant.message_delta")
    assert deltas == reply.text
    parents = [e.parent_id for e in seen[1:]]
    assert parents == [e.id for e in seen[:-1]]  # the chain arrives in order


@pytest.mark.parametrize("mode", ["durable", "off"])
async def test_share_events_limits_what_other_workers_see(postgres_url: str, mode: str) -> None:
    async with worker(postgres_url, share_events=mode) as a, worker(postgres_url) as b:
        seen: list[str] = []
        ended = asyncio.Event()

        def collect(event: SessionEvent) -> None:
            seen.append(event.type)
            if event.type == "assistant.turn_end":
                ended.set()

        b.on(collect)
        session = await a.create_session(model="slow:x")
        await session.send_and_wait("hello there")
        with contextlib.suppress(TimeoutError):  # with "off" it never comes: allow a second
            await asyncio.wait_for(ended.wait(), 10 if mode == "durable" else 1)
    if mode == "off":
        assert seen == []
    else:  # no text deltas, no idle
        assert seen == [
            "session.start",
            "user.message",
            "assistant.turn_start",
            "assistant.message",
            "assistant.usage",
            "assistant.turn_end",
        ]


@pytest.mark.slow
async def test_a_worker_that_dies_holding_a_session_releases_it(
    postgres_url: str, tmp_path: Path
) -> None:
    child_code = textwrap.dedent(
        """
        import asyncio, sys
        from parley import Client, ClientConfig
        from parley.models import EchoModel

        async def main(url: str) -> None:
            slow = EchoModel(token_delay=0.2, provider="slow")
            async with Client(store=url, config=ClientConfig(providers={"slow": slow})) as client:
                session = await client.resume_session("held")
                client.on(lambda e: print("STREAMING", flush=True)
                          if e.type == "assistant.message_delta" else None)
                await session.send_and_wait(" ".join(["word"] * 200), timeout=None)

        asyncio.run(main(sys.argv[1]))
        """
    )
    async with worker(postgres_url) as survivor, worker(postgres_url) as newcomer:
        session = await survivor.create_session(session_id="held", model="slow:x")
        await session.send_and_wait("before")
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", child_code, postgres_url, stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert line.strip() == b"STREAMING"  # the child holds the session, mid-turn
        # A worker that opens the session now sees the child's turn open, and must not close
        # it: the child is running it.
        late = await newcomer.resume_session("held")
        assert [m.role for m in await late.messages()] == ["user", "assistant", "user"]

        waiting = asyncio.create_task(late.send_and_wait("later", timeout=None))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # queued behind the child's turn
        os.kill(child.pid, signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        first = await asyncio.wait_for(waiting, 30)  # the lock went with the connection
        second = await session.send_and_wait("after")  # the first worker catches up too

        history = await session.messages()
    assert user_texts(history) == ["before", " ".join(["word"] * 200), "later", "after"]
    assert history[3].interrupted  # the child's cut-off turn, closed by the next one
    assert history[3].error == "the process stopped before this reply was complete"
    assert sum(m.interrupted for m in history) == 1
    assert [history[5], history[7]] == [first, second]
    assert [m.role for m in history] == ["user", "assistant"] * 4
    assert "#3 here" in history[5].text  # each sent the whole history, the mended turn too
    assert "#4 here" in history[7].text


async def test_a_worker_that_lost_its_lock_cannot_write(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    second = PostgresStore(postgres_url)
    await first.open()
    await second.open()
    try:
        async with worker(postgres_url) as setup:
            await setup.create_session(session_id="f", model="echo")
        lease = await first.acquire("f", wait=False)
        assert lease is not None
        assert await second.acquire("f", wait=False) is None  # held
        await first.append_messages("f", [Message.user("under the first lease")])

        # The first worker's lock connection drops (a network cut, a server restart...).
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted"
            )
        taken = await second.acquire("f", wait=True)
        assert taken is not None
        assert taken.message_count == 1

        with pytest.raises(StoreError, match="taken over by another worker"):
            await first.append_messages("f", [Message.user("stale write")])
        await second.append_messages("f", [Message.user("the new holder writes")])
        await second.release(taken)
        await first.release(lease)
        history = await second.read_messages("f")
    finally:
        await first.close()
        await second.close()
    assert [m.text for m in history] == ["under the first lease", "the new holder writes"]


async def test_histories_are_append_only_in_the_database(postgres_url: str) -> None:
    async with worker(postgres_url) as client:
        session = await client.create_session(model="echo")
        await session.send_and_wait("keep me")
    with (
        psycopg.connect(postgres_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("UPDATE messages SET body = '{}'")


async def test_a_version_1_database_is_migrated_in_place(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute(
            "CREATE TABLE parley_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        for statement in MIGRATIONS[0][1].split(";"):
            if statement.strip():
                await conn.execute(statement.encode())
        await conn.execute("INSERT INTO parley_migrations VALUES (1, '0001_initial')")
        await conn.execute(
            "INSERT INTO sessions (session_id, model, created_at, updated_at) "
            "VALUES ('old', 'echo', 0, 0)"
        )
        await conn.commit()
    async with worker(postgres_url) as client:
        session = await client.resume_session("old")
        reply = await session.send_and_wait("still here?")
        assert "the first message" in reply.text
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT version, name FROM parley_migrations ORDER BY 1")
        assert await cursor.fetchall() == [(n + 1, name) for n, (name, _) in enumerate(MIGRATIONS)]
        async with conn.transaction():
            await migrate(conn)  # again: nothing to do, nothing fails


@pytest.mark.parametrize(
    "query",
    [
        SessionQuery(),
        SessionQuery(model="model-3"),
        SessionQuery(tag="owner"),
        SessionQuery(tag="rare"),
        SessionQuery(metadata={"owner": "user-7"}),
    ],
    ids=["newest", "model", "common-tag", "rare-tag", "metadata"],
)
async def test_listing_100k_sessions_reads_indexes_only(
    listed_100k: str, query: SessionQuery
) -> None:
    """At 100k sessions every listing filter is served by an index, never a full table scan
    (timings are the benchmarks' business; plans are deterministic once analysed)."""
    store = PostgresStore(listed_100k)
    await store.open()
    try:
        page = await store.list_sessions(query)
        following = (
            await store.list_sessions(
                SessionQuery(
                    cursor=page.next_cursor,
                    model=query.model,
                    tag=query.tag,
                    metadata=query.metadata,
                )
            )
            if page.next_cursor
            else None
        )
    finally:
        await store.close()
    assert len(page) == (10 if query.tag == "rare" else 50)
    if following is not None:
        assert following[0].updated_at <= page[-1].updated_at
    sql, params = list_sql(query)
    async with await psycopg.AsyncConnection.connect(listed_100k) as conn:
        cursor = await conn.execute(f"EXPLAIN {sql}".encode(), params)
        plan = "\n".join(row[0] for row in await cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan


@pytest.fixture(scope="module")
def listed_100k(postgres_server: str) -> str:
    """A database with 100,000 sessions: five models, an owner tag on each (1,000 owners),
    and a rare tag on ten."""
    name = "listing_100k"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{postgres_server}/{name}"
    asyncio.run(_open_and_close(url))  # the schema, by the store's own migrations
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, model, title, metadata, created_at, updated_at) "
            "SELECT 's' || g, 'model-' || (g % 5), 'title ' || g, '{}', g, g * 1000 "
            "FROM generate_series(1, 100000) g"
        )
        conn.execute(
            "INSERT INTO session_tags SELECT 's' || g, 'owner', 'user-' || (g % 1000) "
            "FROM generate_series(1, 100000) g"
        )
        conn.execute(
            "INSERT INTO session_tags SELECT 's' || g, 'rare', 'x' "
            "FROM generate_series(1, 100000) g WHERE g % 10000 = 0"
        )
        conn.execute("ANALYZE")
    return url


async def _open_and_close(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()


async def test_events_flow_again_after_the_listen_connection_drops(postgres_url: str) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        replies = asyncio.Queue[str]()
        b.on(lambda e: replies.put_nowait(e.session_id) if e.type == "assistant.message" else None)
        session = await a.create_session(session_id="relisten", model="echo")
        await session.send_and_wait("before")
        assert await asyncio.wait_for(replies.get(), 10) == "relisten"

        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%%' AND datname = current_database()"
            )
            assert await cursor.fetchone() == (2,)  # both workers' listeners are cut

        # Events sent while b is reconnecting are lost (delivery is at most once); once it
        # listens again, they flow: keep sending until one arrives.
        for _ in range(50):
            await session.send_and_wait("after")
            try:
                assert await asyncio.wait_for(replies.get(), 0.2) == "relisten"
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("b never heard from a again after its LISTEN connection dropped")


async def test_one_process_never_takes_a_session_twice(postgres_url: str) -> None:
    locks = TurnLocks(postgres_url, name="locks")
    other = TurnLocks(postgres_url, name="other")
    await locks.open()
    await other.open()
    try:
        # Two asks at once from one process: advisory locks nest within a connection, so
        # the second must be refused here, not by the server.
        assert sorted(await asyncio.gather(locks.try_lock("s"), locks.try_lock("s"))) == [
            False,
            True,
        ]
        await locks.unlock("s")
        assert await other.try_lock("s")  # released for good: nothing nested stays behind
        await other.unlock("s")

        # The lock connection drops while nothing is held, then two asks race to reconnect:
        # one new connection, and the locks it takes really exclude other workers.
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            pid = locks._conn.info.backend_pid if locks._conn else None
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert list(await asyncio.gather(locks.try_lock("x"), locks.try_lock("y"))) == [True, True]
        assert not await other.try_lock("x")
        assert not await other.try_lock("y")
    finally:
        await locks.close()
        await other.close()
    with pytest.raises(StoreError, match="closed"):
        await locks.try_lock("z")  # a closed one never reconnects behind your back


async def test_two_clients_cannot_share_one_store_object(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        async with Client(store=store):
            with pytest.raises(ConfigError, match="give each client its own store"):
                async with Client(store=store):
                    pass
    finally:
        await store.close()


async def test_a_session_deleted_and_created_again_elsewhere_starts_afresh(
    postgres_url: str,
) -> None:
    async with worker(postgres_url) as a, worker(postgres_url) as b:
        mine = await a.create_session(session_id="again", model="echo", system_message="old")
        await mine.send_and_wait("OLD secret")
        await b.delete_session("again")
        await b.create_session(session_id="again", model="echo", system_message="new")
        theirs = await b.resume_session("again")
        await theirs.send_and_wait("new one")  # the same length as a's copy: 2 messages

        reply = await mine.send_and_wait("what did I say?")
        history = await mine.messages()
    assert "OLD secret" not in reply.text
    assert user_texts(history) == ["new one", "what did I say?"]
    assert mine._live.system_message == "new"


async def test_a_turns_events_reach_other_workers_before_the_next_turns(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresStore(postgres_url, poll=0.05)
    try:
        async with (
            Client(store=store) as a,
            worker(postgres_url) as b,
            worker(postgres_url) as observer,
        ):
            assert store._events is not None
            send = store._events._send

            async def slow_send(batch: list[str]) -> None:  # a's events lag behind its turns
                await asyncio.sleep(0.3)
                await send(batch)

            monkeypatch.setattr(store._events, "_send", slow_send)
            said: list[str] = []
            observer.on(lambda e: said.append(e.data.content) if e.type == "user.message" else None)
            mine = await a.create_session(session_id="order", model="echo")
            theirs = await b.resume_session("order")
            await asyncio.gather(mine.send_and_wait("a0"), theirs.send_and_wait("b0"))
            await asyncio.gather(mine.send_and_wait("a1"), theirs.send_and_wait("b1"))
            history = await theirs.messages()
            for _ in range(100):
                if len(said) == 4:
                    break
                await asyncio.sleep(0.05)
    finally:
        await store.close()
    assert said == user_texts(history)
