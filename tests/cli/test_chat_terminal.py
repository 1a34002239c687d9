"""`parley chat` in a real pseudo-terminal: typing, streaming, Ctrl-C, and what was stored."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from parley import Client
from parley.testing import FakeLLMServer, FakeReply

LONG = " ".join(f"word{i}" for i in range(200))


class ServerThread:
    """A FakeLLMServer on its own event loop, so a blocking pexpect test can talk to it."""

    def __init__(self) -> None:
        self.server = FakeLLMServer(api_key="sk-chat", tokens_per_second=40)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            async with self.server:
                self.ready.set()
                await self.stop.wait()

        self.loop.run_until_complete(serve())
        self.loop.close()

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        assert self.ready.wait(30)
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with ServerThread() as server:
        yield server


@pytest.mark.slow
def test_chat_streams_and_ctrl_c_stops_a_reply(fake: FakeLLMServer, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    fake.script(
        FakeReply(text="Hello! How can I help?"),
        FakeReply(text="Go modules start with go mod init."),
        FakeReply(text=LONG),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "OPENAI_"))}
    env |= {
        "OPENAI_BASE_URL": fake.openai_base_url,
        "OPENAI_API_KEY": "sk-chat",
        "COLUMNS": "200",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "parley", "--store", f"sqlite:///{db}", "chat", "--new", "-m", "openai:fake-gpt"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect("you> ")
        child.sendline("hi there")
        child.expect("Hello! How can I help\\?")
        child.expect("you> ")
        child.sendline("How do I start a Go module?")
        child.expect("go mod init")
        child.expect("you> ")
        child.sendline("tell me everything")
        child.expect("word5 ")  # streaming has begun
        child.sendintr()
        child.expect("interrupted")
        child.expect("you> ")
        child.sendintr()  # at the prompt: leave
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0

    async def stored() -> list[tuple[str, str, bool]]:
        async with Client(store=f"sqlite:///{db}") as client:
            info = (await client.list_sessions())[0]
            history = await (await client.resume_session(info.session_id)).messages()
            return [(m.role, m.text, m.interrupted) for m in history]

    history = asyncio.run(stored())
    assert [role for role, _, _ in history] == ["user", "assistant"] * 3
    assert history[1][1] == "Hello! How can I help?"
    last_text, last_interrupted = history[5][1], history[5][2]
    assert last_interrupted
    assert last_text.startswith("word0 word1 ")
    assert len(last_text) < len(LONG)  # cut short by Ctrl-C, the part that streamed kept
