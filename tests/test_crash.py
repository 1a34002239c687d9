"""A process killed with SIGKILL mid-turn loses no completed turn, and its sessions go on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

from parley import Client
from parley.messages import ToolCallPart, ToolResultPart

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from parley import Client, ClientConfig
    from parley.models import EchoModel

    async def main(url: str) -> None:
        slow = EchoModel(token_delay=0.05, provider="slow")
        async with Client(store=url, config=ClientConfig(providers={"slow": slow})) as client:
            sessions = [await client.create_session(session_id=f"s{i}") for i in range(3)]
            for s in sessions:
                await s.send_and_wait(f"{s.session_id} first")
                await s.send_and_wait(f"{s.session_id} second")
                await s.set_model("slow:x")
            started = asyncio.Event()
            client.on(lambda e: started.set() if e.type == "assistant.message_delta" else None)
            turns = [
                asyncio.ensure_future(s.send_and_wait(f"{s.session_id} third")) for s in sessions
            ]
            await started.wait()
            print("STREAMING", flush=True)
            await asyncio.gather(*turns)
            print("FINISHED", flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_sigkill_while_streaming_loses_no_completed_turn(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    assert line.strip() == b"STREAMING"
    os.kill(child.pid, signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL

    async with Client(store=url) as client:
        page = await client.list_sessions()
        assert sorted(info.session_id for info in page) == ["s0", "s1", "s2"]
        for name in ("s0", "s1", "s2"):
            session = await client.resume_session(name)
            history = await session.messages()
            completed = history[:4]
            assert [m.text for m in completed[0::2]] == [f"{name} first", f"{name} second"]
            assert all(not m.interrupted for m in completed)
            assert "#2 here" in completed[3].text
            # The cut-off turn: its user message, answered by an empty interrupted reply.
            assert [m.role for m in history[4:]] == ["user", "assistant"]
            assert history[4].text == f"{name} third"
            assert history[5].interrupted
            assert history[5].error
            assert session.model == "slow:x"
            await session.set_model("echo")
            reply = await session.send_and_wait(f"{name} fourth")
            assert "#4 here" in reply.text
            assert [m.role for m in await session.messages()] == ["user", "assistant"] * 4
        # the repair was stored once: reopening does not add another marker
    async with Client(store=url) as client:
        again = await client.resume_session("s0")
        assert len(await again.messages()) == 8


TOOL_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from parley import Client, ClientConfig, tool
    from parley.models.base import StreamToolCall
    from parley.testing import Reply, ScriptedModel

    @tool
    async def long_job() -> str:
        '''Takes for ever.'''
        print("TOOL RUNNING", flush=True)
        await asyncio.Event().wait()
        return "never"

    async def main(url: str) -> None:
        model = ScriptedModel(
            "first answer",
            Reply(tool_calls=(StreamToolCall(call_id="k1", name="long_job", arguments={}),)),
        )
        config = ClientConfig(providers={"scripted": model}, config_files=False)
        async with Client(store=url, config=config) as client:
            session = await client.create_session(
                session_id="tools", model="scripted:x", tools=[long_job]
            )
            await session.send_and_wait("warm up")
            await session.send_and_wait("run the long job")

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_sigkill_during_a_tool_call_is_answered_as_cancelled_on_resume(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tools.db'}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TOOL_CHILD, url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    assert (await asyncio.wait_for(child.stdout.readline(), timeout=60)).strip() == b"TOOL RUNNING"
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    async with Client(store=url) as client:
        session = await client.resume_session("tools")
        history = await session.messages()
        assert [m.role for m in history] == ["user", "assistant", "user", "assistant", "tool"]
        call = history[3].parts[0]
        result = history[4].parts[0]
        assert isinstance(call, ToolCallPart)
        assert isinstance(result, ToolResultPart)
        assert result.call_id == call.call_id == "k1"
        assert result.is_error
        assert result.content.startswith("cancelled")
        await session.set_model("echo")
        reply = await session.send_and_wait("are you there?")
        assert "#3 here" in reply.text
