"""Shared fixtures. Every store here is real: SQLite files live in pytest's tmp_path."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anthropic
import openai
import psycopg
import pytest

from parley import Client, ClientConfig
from parley.messages import Message, ToolCallPart, ToolResultPart
from parley.models import EchoModel, ModelAdapter
from parley.runtime.history import open_calls
from parley.stores import MemoryStore, SQLiteStore, Store
from parley.stores.postgres import PostgresStore
from parley.testing import FakeLLMServer, ScriptedModel

# The `parley serve` fixtures (runtime processes, official Copilot SDK clients).
pytest_plugins = ("copilot_runtime",)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store kind in turn, opened: for tests of the Store contract itself."""
    s: Store
    if request.param == "postgres":
        s = PostgresStore(request.getfixturevalue("postgres_url"))
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "contract.db")
    else:
        s = MemoryStore()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store kind in turn: tests using it run once per store."""
    if request.param == "memory":
        return "memory://"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'parley.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parley.db'}"


@pytest.fixture
def scripted() -> ScriptedModel:
    """A scripted model, served as provider "scripted" by the `client` fixture."""
    return ScriptedModel()


@pytest.fixture
async def client(store_url: str, scripted: ScriptedModel) -> AsyncIterator[Client]:
    """A running client on each store kind, with `scripted:*` and a slow `slow:*` echo model."""
    providers: dict[str, ModelAdapter] = {
        "scripted": scripted,
        "slow": EchoModel(token_delay=0.02, provider="slow"),
    }
    async with Client(store=store_url, config=ClientConfig(providers=providers)) as c:
        yield c


RunPython = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_python(tmp_path: Path) -> RunPython:
    """Run `python ARGS...` as a user would: a real process in tmp_path, no PARLEY_* settings."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        return subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


PROVIDER_ENV_PREFIXES = (
    "PARLEY_",
    "OPENAI_",
    "ANTHROPIC_",
    "AZURE_OPENAI_",
    "OPENROUTER_",
    "OLLAMA_",
    "VLLM_",
    "LMSTUDIO_",
)


@pytest.fixture(autouse=True)
def hermetic_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's keys, endpoints, PARLEY_* settings or parley.toml files:
    provider and parley variables are cleared, the user config folder is empty, and each test
    runs in an empty working folder."""
    for name in list(os.environ):
        if name.startswith(PROVIDER_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


OPENAI_KEY = "sk-test-openai"
ANTHROPIC_KEY = "sk-ant-test"


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    """A FakeLLMServer on loopback that takes any key."""
    async with FakeLLMServer() as running:
        yield running


@pytest.fixture
async def oai(server: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI SDK, pointed at `server`, with its own retries off."""
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def claude(server: FakeLLMServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official Anthropic SDK, pointed at `server`, with its own retries off."""
    async with anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
    ) as client:
        yield client


def assert_tool_pairs(history: list[Message]) -> None:
    """The invariant: every tool call answered exactly once, by a later result; no orphans."""
    calls: set[str] = set()
    answered: set[str] = set()
    for message in history:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls.add(part.call_id)
            elif isinstance(part, ToolResultPart):
                assert part.call_id in calls, f"result {part.call_id} before its call"
                assert part.call_id not in answered, f"{part.call_id} answered twice"
                answered.add(part.call_id)
    assert calls == answered
    assert open_calls(history) == []


def _postgres_bin() -> Path:
    """The folder of initdb and pg_ctl: on PATH, or where Debian puts them."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.fail(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; .ci/run installs "
            "them with apt-get install postgresql"
        )
    return versions[-1].parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for the whole test run, on a free loopback port."""
    bin_dir = _postgres_bin()
    # Not under pytest's folder: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="parley-postgres-"))
    data = base / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "parley",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://parley@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the throwaway server."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"
