"""Fixtures for the `parley serve` tests: `parley-runtime` as a real process, official Copilot
SDK clients pointed at it, and a FakeLLMServer the runtime reaches. A pytest plugin, loaded by
tests/conftest.py; tests/server imports its classes."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import re
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from copilot import CopilotClient
from copilot.client import RuntimeConnection

from parley import Client, ClientConfig
from parley.models import EchoModel, ModelAdapter
from parley.server import CopilotServer, serve_tcp
from parley.server.framing import encode_frame, read_frame
from parley.testing import FakeLLMServer, ScriptedModel

RUNTIME = Path(sys.executable).with_name("parley-runtime")


@dataclass
class TcpRuntime:
    """A `parley-runtime --port 0` process and the port it announced."""

    process: asyncio.subprocess.Process
    port: int
    stderr: list[str]

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.terminate()
        _, err = await asyncio.wait_for(self.process.communicate(), 10)  # closes the pipes
        self.stderr.append(err.decode())
        assert self.process.returncode is not None
        return self.process.returncode


async def start_tcp(store_url: str, *args: str, env: dict[str, str] | None = None) -> TcpRuntime:
    process = await asyncio.create_subprocess_exec(
        str(RUNTIME),
        "--store",
        store_url,
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    match = re.match(r"listening on port (\d+)", line)
    if match is None:
        assert process.stderr is not None
        problem = (await process.stderr.read()).decode()
        raise AssertionError(f"no port announced: {line!r}; stderr: {problem}")
    return TcpRuntime(process, int(match.group(1)), [])


TRANSPORTS = ["stdio", "cli_path", "tcp"]


@dataclass
class Sdk:
    """Makes official `CopilotClient`s on parley over one transport."""

    transport: str
    store_url: str
    server: TcpRuntime | None

    def client(self) -> CopilotClient:
        if self.transport == "stdio":
            connection = RuntimeConnection.for_stdio(
                path=str(RUNTIME), args=["--store", self.store_url]
            )
            return CopilotClient(connection=connection)
        if self.transport == "cli_path":
            env = {**os.environ, "COPILOT_CLI_PATH": str(RUNTIME), "PARLEY_STORE": self.store_url}
            return CopilotClient(env=env)
        assert self.server is not None
        return CopilotClient(connection=RuntimeConnection.for_uri(f"127.0.0.1:{self.server.port}"))

    async def release_store(self) -> None:
        """Stop the TCP server, if any, so another client may open the SQLite file."""
        if self.server is not None:
            assert await self.server.stop() in (0, -15)
            self.server = None


@pytest.fixture
def _no_runtime_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK must never fetch its own runtime: fail at once instead."""
    monkeypatch.setenv("COPILOT_SKIP_CLI_DOWNLOAD", "1")
    monkeypatch.setenv("COPILOT_CLI_EXTRACT_DIR", os.path.join(os.getcwd(), "no-runtime-here"))


@pytest.fixture
def _sdk_pipes() -> Iterator[None]:
    """The SDK 1.0.27 never closes its child's stdout and stderr pipes (client.py spawns them
    and only closes stdin); collect them here, quietly, rather than let the ResourceWarning
    fail whichever later test the garbage collector happens to run in."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def runtime(_no_runtime_download: None, _sdk_pipes: None) -> Path:
    assert RUNTIME.exists(), f"{RUNTIME} is missing: pip install -e . makes it"
    return RUNTIME


@pytest.fixture
async def tcp_runtime(sqlite_url: str) -> AsyncIterator[TcpRuntime]:
    running = await start_tcp(sqlite_url)
    yield running
    await running.stop()


@pytest.fixture
async def llm(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLLMServer]:
    """A FakeLLMServer that the runtime processes reach as `openai:fake-gpt` (they inherit
    OPENAI_BASE_URL and OPENAI_API_KEY), streaming 40 tokens a second."""
    async with FakeLLMServer(tokens_per_second=40) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


@pytest.fixture(params=TRANSPORTS)
async def sdk(
    request: pytest.FixtureRequest, sqlite_url: str, runtime: Path, llm: FakeLLMServer
) -> AsyncIterator[Sdk]:
    """Official `CopilotClient`s on parley, over one transport per run of the test: a stdio
    child given by path, a stdio child found through `COPILOT_CLI_PATH`, and an already running
    TCP server (`RuntimeConnection.for_uri`). All share one SQLite store."""
    server = await start_tcp(sqlite_url) if request.param == "tcp" else None
    made = Sdk(request.param, sqlite_url, server)
    yield made
    await made.release_store()


# --- an in-process `parley serve` and a raw JSON-RPC client ---------------------------------


class Wire:
    """A raw JSON-RPC client: frames by hand, so tests can also send what no SDK would.
    Replies are kept by id, in order; notifications' params in `events`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.events: list[dict[str, Any]] = []
        self.replies: dict[Any, dict[str, Any]] = {}
        self.order: list[Any] = []
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        port: int = self.writer.get_extra_info("sockname")[1]
        return port

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, *messages: dict[str, Any]) -> None:
        """Frames written in one go, so the server reads them in one batch."""
        self.send_raw(b"".join(encode_frame(json.dumps(m).encode()) for m in messages))

    def request(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    async def _read(self) -> None:
        body = await asyncio.wait_for(read_frame(self.reader), 20)
        assert body is not None, "the server closed the connection"
        message: dict[str, Any] = json.loads(body)
        if "method" in message:
            self.events.append(message["params"])
        else:
            key = message["id"]
            if isinstance(key, list | dict):  # an id no server should echo, but one might
                key = json.dumps(key)
            self.replies[key] = message
            self.order.append(key)

    async def reply_to(self, request_id: Any) -> dict[str, Any]:
        while request_id not in self.replies:
            await self._read()
        return self.replies[request_id]

    async def next_reply(self) -> dict[str, Any]:
        seen = len(self.order)
        while len(self.order) == seen:
            await self._read()
        return self.replies[self.order[seen]]

    async def event(self, kind: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th event of type `kind`, once it has come."""
        while True:
            found: list[dict[str, Any]] = [
                e["event"] for e in self.events if e["event"]["type"] == kind
            ]
            if len(found) >= count:
                return found[count - 1]
            await self._read()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = f"auto-{next(self._ids)}"
        self.request(request_id, method, params or {})
        return await self.reply_to(request_id)

    async def ok(self, method: str, params: dict[str, Any] | None = None) -> Any:
        reply = await self.call(method, params)
        assert "result" in reply, reply
        return reply["result"]

    async def closed(self) -> bool:
        """Whether the server ended the connection (after any replies still on the way)."""
        while True:
            body = await asyncio.wait_for(read_frame(self.reader), 20)
            if body is None:
                return True


Connect = Callable[[], AbstractAsyncContextManager[Wire]]


@asynccontextmanager
async def serving(
    store: str, model: ScriptedModel | None = None, *, token: str | None = None
) -> AsyncIterator[tuple[CopilotServer, Connect]]:
    """A `CopilotServer` on TCP in this process, with `scripted:*` (`model`) and a slow echo
    (`slow`), and a way to connect raw clients to it."""
    providers: dict[str, ModelAdapter] = {
        "scripted": model or ScriptedModel(),
        "slow": EchoModel(token_delay=0.02, provider="slow"),
    }
    async with Client(store=store, config=ClientConfig(providers=providers)) as client:
        server = CopilotServer(client, token=token)
        ports: asyncio.Queue[int] = asyncio.Queue()
        task = asyncio.create_task(serve_tcp(server, port=0, on_listening=ports.put_nowait))
        port = await asyncio.wait_for(ports.get(), 10)

        @asynccontextmanager
        async def connect() -> AsyncIterator[Wire]:
            wire = Wire(*await asyncio.open_connection("127.0.0.1", port))
            if token is None:
                await wire.ok("ping")  # the server has this connection now
            try:
                yield wire
            finally:
                wire.writer.close()

        try:
            yield server, connect
        finally:
            server.shutdown.set()
            await asyncio.wait_for(task, 10)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite store for the in-process server of `serving`."""
    return f"sqlite:///{tmp_path / 'served.db'}"


@asynccontextmanager
async def hosting(
    embedded: Client, *, token: str | None = None
) -> AsyncIterator[tuple[CopilotServer, str]]:
    """`parley serve` for `embedded`'s sessions (in this process, over real TCP), and its URL."""
    server = CopilotServer(embedded, token=token)
    ports: asyncio.Queue[int] = asyncio.Queue()
    serving = asyncio.create_task(serve_tcp(server, port=0, on_listening=ports.put_nowait))
    try:
        port = await asyncio.wait_for(ports.get(), 10)
        yield server, f"tcp://127.0.0.1:{port}"
    finally:
        server.shutdown.set()
        await asyncio.wait_for(serving, 10)


@asynccontextmanager
async def remote_of(embedded: Client) -> AsyncIterator[Client]:
    """A `Client(url=...)` on a `parley serve` that serves `embedded`'s sessions: the same
    store and providers, reached through the protocol."""
    async with hosting(embedded) as (_, url), Client(url=url) as remote:
        yield remote


async def embedded_and_remote(
    request: pytest.FixtureRequest, client: Client
) -> AsyncIterator[Client]:
    """For a test module's ``client`` fixture (wrapped there with ``pytest.fixture(name=
    "client", params=["embedded", "remote"])``): the core tests run twice, on the embedded
    runtime and on `Client(url=...)` reaching the same runtime through `parley serve`."""
    if request.param == "embedded":
        yield client
        return
    async with remote_of(client) as remote:
        yield remote
