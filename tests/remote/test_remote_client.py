"""`Client(url=...)` beyond the core tests (which run it too): connecting, tokens, a runtime
that goes away, what stays with the runtime's host, and what a remote caller giving up does.

Each test runs `parley serve` in this process over real TCP (`hosting`), for an embedded
client on a SQLite file: the runtime side, which the tests also read to check what it stored.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from copilot_runtime import hosting, start_tcp
from parley import (
    Client,
    ClientConfig,
    ConfigError,
    MessageOptions,
    ProviderConfig,
    RuntimeConnectionError,
    Session,
    SessionClosedError,
    SessionEvent,
    TurnTimeoutError,
    tool,
)
from parley.models import EchoModel, ModelAdapter
from parley.testing import Reply, ScriptedModel


@pytest.fixture
async def embedded(tmp_path: Path, scripted: ScriptedModel) -> AsyncIterator[Client]:
    providers: dict[str, ModelAdapter] = {
        "scripted": scripted,
        "slow": EchoModel(token_delay=0.02, provider="slow"),
    }
    store = f"sqlite:///{tmp_path / 'runtime.db'}"
    async with Client(store=store, config=ClientConfig(providers=providers)) as client:
        yield client


def idle_of(client: Client) -> asyncio.Queue[str]:
    """The ids of the sessions that go idle, as `client` sees them."""
    idle: asyncio.Queue[str] = asyncio.Queue()
    client.on(lambda e: idle.put_nowait(e.session_id) if e.type == "session.idle" else None)
    return idle


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_client_with_a_url_is_a_client_of_that_runtime(embedded: Client) -> None:
    async with hosting(embedded) as (_, url), Client(url=url) as remote:
        assert isinstance(remote, Client)
        assert url in repr(remote)
        assert remote.default_model == embedded.default_model
        session = await remote.create_session(session_id="here")
        assert isinstance(session, Session)
        assert remote.live_sessions == 1
        await session.send_and_wait("hello")
        assert (await embedded.get_session("here")).message_count == 2  # stored by the runtime
        await session.close()
        assert remote.live_sessions == 0
    assert "stopped" in repr(remote)


def test_a_url_that_is_not_tcp_or_comes_with_a_store_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"tcp://127\.0\.0\.1:4321"):
        Client(url="http://127.0.0.1:4321")
    with pytest.raises(ConfigError, match="tcp://"):
        Client(url="tcp://127.0.0.1")  # no port
    with pytest.raises(ConfigError, match=r"store: .*parley serve"):
        Client(store="memory://", url="tcp://127.0.0.1:4321")
    with pytest.raises(ConfigError, match="config, idle_ttl: "):
        Client(url="tcp://127.0.0.1:4321", config=ClientConfig(), idle_ttl=5)
    with pytest.raises(ConfigError, match="url="):
        Client(token="secret")


async def test_an_unreachable_runtime_is_a_runtime_connection_error() -> None:
    port = free_port()
    client = Client(url=f"tcp://127.0.0.1:{port}")
    with pytest.raises(RuntimeConnectionError, match=f"parley serve --port {port}") as info:
        await client.start()
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(SessionClosedError, match="start"):
        await client.create_session()


async def test_the_token_is_checked_and_read_from_the_environment(
    embedded: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COPILOT_CONNECTION_TOKEN", raising=False)
    async with hosting(embedded, token="s3cret") as (_, url):
        for wrong in ("nope", None):
            with pytest.raises(ConfigError, match="token"):
                async with Client(url=url, token=wrong):
                    pass
        async with Client(url=url, token="s3cret") as remote:
            assert (await remote.create_session()).session_id
        monkeypatch.setenv("COPILOT_CONNECTION_TOKEN", "s3cret")
        async with Client(url=url) as remote:
            assert len(await remote.list_sessions()) == 1


async def test_a_runtime_that_goes_away_mid_turn_keeps_what_it_stored(embedded: Client) -> None:
    idle = idle_of(embedded)
    async with hosting(embedded) as (server, url):
        remote = Client(url=url)
        await remote.start()
        session = await remote.create_session(model="slow:x", session_id="cut")
        seen: list[str] = []

        async def read_until_cut() -> None:
            async for event in session.stream("tell me a story"):
                seen.append(event.type)
                if event.type == "assistant.message_delta" and seen.count(event.type) == 1:
                    (connection,) = server.connections  # the line drops; the turn goes on
                    await connection.peer.close()

        with pytest.raises(RuntimeConnectionError, match="lost its connection"):
            await read_until_cut()
        assert "user.message" in seen
        with pytest.raises(SessionClosedError, match="lost its connection"):
            await session.send("anyone there?")
        assert await idle.get() == "cut"  # the turn finished in the runtime
        await remote.stop()
    stored = await (await embedded.resume_session("cut")).messages()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert not stored[1].interrupted


async def test_client_on_sees_every_sessions_events_on_the_runtime(embedded: Client) -> None:
    async with hosting(embedded) as (_, url), Client(url=url) as other:
        seen: asyncio.Queue[SessionEvent] = asyncio.Queue()
        watcher = Client(url=url)
        watcher.on(seen.put_nowait)  # before start: the subscription is made at start
        async with watcher:
            await watcher.list_sessions()  # the subscription is in before the other's turn
            session = await other.create_session(session_id="theirs")
            await session.send_and_wait("hi")
            kinds: list[str] = []
            while not kinds or kinds[-1] != "session.idle":
                event = await asyncio.wait_for(seen.get(), 10)
                assert event.session_id == "theirs"
                kinds.append(event.type)
        assert kinds[0] == "user.message"
        assert "assistant.message" in kinds


async def test_what_stays_with_the_runtimes_host_says_so(embedded: Client) -> None:
    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return key

    async with hosting(embedded) as (_, url), Client(url=url) as remote:
        key = ProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1", api_key="k")
        with pytest.raises(ConfigError, match="provider"):
            await remote.create_session(model="openai:gpt-x", provider=key)
        session = await remote.create_session()
        with pytest.raises(ConfigError, match="create_session or resume_session"):
            await session.send(MessageOptions(prompt="hi", tools=[lookup]))
        with pytest.raises(ConfigError, match="remote client"):
            await remote.compare(["hi"], models=["echo"])
        with pytest.raises(ConfigError, match="remote client"):
            _ = remote.models
        assert (await remote.list_sessions()).sessions[0].message_count == 0  # nothing sent


async def test_cancelling_a_remote_send_and_wait_lets_the_turn_finish(embedded: Client) -> None:
    idle = idle_of(embedded)
    async with hosting(embedded) as (_, url), Client(url=url) as remote:
        session = await remote.create_session(model="slow:x", session_id="c")
        streaming = asyncio.Event()
        session.on(lambda e: streaming.set() if e.type == "assistant.message_delta" else None)
        waiting = asyncio.ensure_future(session.send_and_wait("a long answer please"))
        await streaming.wait()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await idle.get() == "c"
        stored = await session.messages()
        assert [m.role for m in stored] == ["user", "assistant"]
        assert not stored[1].interrupted  # as embedded: giving up waiting is not an abort


async def test_the_timeout_counts_inactivity_in_the_runtime(
    embedded: Client, scripted: ScriptedModel
) -> None:
    scripted.add(Reply(text="never", hang=True), "back")
    async with hosting(embedded) as (_, url), Client(url=url) as remote:
        session = await remote.create_session(model="scripted:x")
        with pytest.raises(TurnTimeoutError, match=r"no event for 0\.3s"):
            await session.send_and_wait("hello?", timeout=0.3)
        assert (await session.send_and_wait("again")).text == "back"
        with pytest.raises(ConfigError, match="timeout"):
            await session.send_and_wait("x", timeout=0)


async def test_stop_disconnects_and_the_runtime_finishes_the_turn(embedded: Client) -> None:
    idle = idle_of(embedded)
    async with hosting(embedded) as (_, url):
        remote = Client(url=url)
        await remote.start()
        session = await remote.create_session(model="slow:x", session_id="left")
        await session.send("finish this without me")
        await remote.stop()
        with pytest.raises(SessionClosedError, match="client stopped"):
            await session.send("too late")
        assert await idle.get() == "left"
        async with Client(url=url) as again:
            stored = await (await again.resume_session("left")).messages()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert not stored[1].interrupted


async def test_stop_ends_a_running_stream_here_not_there(embedded: Client) -> None:
    idle = idle_of(embedded)
    async with hosting(embedded) as (_, url):
        remote = Client(url=url)
        await remote.start()
        session = await remote.create_session(model="slow:x", session_id="s")
        stream = session.stream("a long answer please")
        async for event in stream:
            if event.type == "assistant.message_delta":
                break
        await remote.stop()
        with pytest.raises(SessionClosedError, match="client stopped"):
            await anext(stream)
        assert await idle.get() == "s"


async def test_a_runtime_process_stopped_while_a_client_is_connected_exits_quietly(
    sqlite_url: str,
) -> None:
    """The real `parley-runtime --port 0` process, SIGTERM while a remote client holds a
    session: it exits 0 with nothing but its own log lines on stderr, and the client's next
    call says the connection is gone."""
    served = await start_tcp(sqlite_url)
    async with Client(url=f"tcp://127.0.0.1:{served.port}") as remote:
        session = await remote.create_session(session_id="kept")
        await session.send_and_wait("hello")
        assert await served.stop() == 0
        with pytest.raises((RuntimeConnectionError, SessionClosedError), match="connection"):
            await session.send_and_wait("still there?")
    assert "Traceback" not in served.stderr[0]
    assert "ERROR" not in served.stderr[0]
    async with Client(store=sqlite_url) as embedded:
        assert (await embedded.get_session("kept")).message_count == 2
