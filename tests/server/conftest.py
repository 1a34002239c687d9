"""Fixtures for `parley serve`: the runtime as a real process, and the official Copilot SDK."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from runtime_process import RUNTIME, TRANSPORTS, Sdk, TcpRuntime, start_tcp


@pytest.fixture(autouse=True)
def _no_runtime_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK must never fetch its own runtime: fail at once instead."""
    monkeypatch.setenv("COPILOT_SKIP_CLI_DOWNLOAD", "1")
    monkeypatch.setenv("COPILOT_CLI_EXTRACT_DIR", os.path.join(os.getcwd(), "no-runtime-here"))


@pytest.fixture(autouse=True)
def _sdk_pipes() -> Iterator[None]:
    """The SDK 1.0.27 never closes its child's stdout and stderr pipes (client.py spawns them
    and only closes stdin); collect them here, quietly, rather than let the ResourceWarning
    fail whichever later test the garbage collector happens to run in."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def runtime() -> Path:
    assert RUNTIME.exists(), f"{RUNTIME} is missing: pip install -e . makes it"
    return RUNTIME


@pytest.fixture
async def tcp_runtime(sqlite_url: str) -> AsyncIterator[TcpRuntime]:
    running = await start_tcp(sqlite_url)
    yield running
    await running.stop()


@pytest.fixture(params=TRANSPORTS)
async def sdk(request: pytest.FixtureRequest, sqlite_url: str, runtime: Path) -> AsyncIterator[Sdk]:
    """Official `CopilotClient`s on parley, over one transport per run of the test: a stdio
    child given by path, a stdio child found through `COPILOT_CLI_PATH`, and an already running
    TCP server (`RuntimeConnection.for_uri`). All share one SQLite store."""
    server = await start_tcp(sqlite_url) if request.param == "tcp" else None
    made = Sdk(request.param, sqlite_url, server)
    yield made
    await made.release_store()
