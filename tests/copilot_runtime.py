"""Fixtures for the `parley serve` tests: `parley-runtime` as a real process, official Copilot
SDK clients pointed at it, and a FakeLLMServer the runtime reaches. A pytest plugin, loaded by
tests/conftest.py; tests/server imports its classes."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from copilot import CopilotClient
from copilot.client import RuntimeConnection

from parley.testing import FakeLLMServer

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
