"""The torture test: worker processes sharing sessions on one PostgreSQL database.

Four real processes (tests/scale_out/worker.py) serve the same 50 session ids at once, every
turn against one FakeLLMServer. Every history must hold every turn exactly once, alternating,
each worker's turns in the order it sent them, and each reply must answer the whole history
before it (the fake's default reply counts the user messages it was sent). Then again with one
worker killed by SIGKILL mid-run: the others finish, and no turn that was committed is lost.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import RunPython
from parley import Client, ClientConfig, ProviderConfig
from parley.messages import Message
from parley.testing import FakeLLMServer

WORKER = Path(__file__).parent / "scale_out" / "worker.py"
WORKERS = 4
SESSIONS = 50
_PROMPT = re.compile(r"^w(\d) (s\d\d) t(\d+)$")
_COUNT = re.compile(r"\(user message #(\d+);")


async def create_sessions(url: str, base_url: str) -> None:
    fake = ProviderConfig(type="openai", base_url=base_url, api_key="sk-test")
    config = ClientConfig(default_model="fake:fake-gpt", providers={"fake": fake})
    async with Client(store=url, config=config) as client:
        for s in range(SESSIONS):
            await client.create_session(session_id=f"s{s:02d}")


async def start_worker(
    url: str, server: FakeLLMServer, worker: int, turns: int, log: Path, *extra: str
) -> asyncio.subprocess.Process:
    with log.with_suffix(".err").open("wb") as errors:  # the child keeps its own copy
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            url,
            server.openai_base_url,
            str(worker),
            str(SESSIONS),
            str(turns),
            str(log),
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"READY\n"
    return process


async def histories(url: str) -> dict[str, list[Message]]:
    """Every session's history, as a client that resumes them sees it."""
    async with Client(store=url) as client:
        return {
            f"s{s:02d}": await (await client.resume_session(f"s{s:02d}")).messages()
            for s in range(SESSIONS)
        }


def committed(logs: list[Path]) -> dict[str, tuple[str, str]]:
    """What the workers saw stored: reply id -> (session, prompt)."""
    seen: dict[str, tuple[str, str]] = {}
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                session_id, prompt, reply_id = line.split("\t")
                seen[reply_id] = (session_id, prompt)
    return seen


def check_history(session_id: str, history: list[Message]) -> dict[str, list[int]]:
    """The invariants every history keeps; returns each worker's turn numbers, in order."""
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2), session_id
    order: dict[str, list[int]] = defaultdict(list)
    for number, (user, reply) in enumerate(zip(history[0::2], history[1::2], strict=True), 1):
        match = _PROMPT.match(user.text)
        assert match is not None, user.text
        assert match[2] == session_id, user.text
        order[match[1]].append(int(match[3]))
        if reply.interrupted:  # only the turn a killed worker left open
            assert reply.error == "the process stopped before this reply was complete"
            continue
        # The model was sent this whole history: every user message so far, no more, no less.
        count = _COUNT.search(reply.text)
        assert count is not None, reply.text
        assert int(count[1]) == number, (session_id, number, reply.text)
        assert f'"{user.text}"' in reply.text
    for worker, turns in order.items():
        assert turns == sorted(turns), (session_id, worker, turns)  # each worker's FIFO
        assert len(turns) == len(set(turns)), (session_id, worker, turns)  # each turn once
    return order


@pytest.mark.slow
async def test_four_workers_share_fifty_sessions(postgres_url: str, tmp_path: Path) -> None:
    turns = 3
    async with FakeLLMServer(time_to_first_token=0.002, tokens_per_second=5000) as server:
        await create_sessions(postgres_url, server.openai_base_url)
        logs = [tmp_path / f"w{w}.log" for w in range(WORKERS)]
        workers = [
            await start_worker(postgres_url, server, w, turns, logs[w]) for w in range(WORKERS)
        ]
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate() for p in workers)), timeout=300
        )
        assert [p.returncode for p in workers] == [0] * WORKERS
        assert all(out.endswith(b"DONE\n") for out, _ in outputs)
        model_calls = len(server.requests)

    stored = await histories(postgres_url)
    for session_id, history in stored.items():
        order = check_history(session_id, history)
        assert len(history) == 2 * WORKERS * turns
        assert not any(m.interrupted for m in history)
        assert dict(order) == {str(w): [0, 1, 2] for w in range(WORKERS)}
    assert model_calls == WORKERS * SESSIONS * turns  # no turn was sent twice
    replies = {m.id for history in stored.values() for m in history if m.role == "assistant"}
    assert set(committed(logs)) == replies


@pytest.mark.slow
async def test_a_worker_killed_mid_run_loses_no_committed_turn(
    postgres_url: str, tmp_path: Path
) -> None:
    turns = 4
    async with FakeLLMServer(time_to_first_token=0.01, tokens_per_second=500) as server:
        await create_sessions(postgres_url, server.openai_base_url)
        logs = [tmp_path / f"w{w}.log" for w in range(WORKERS)]
        # Worker 0 SIGKILLs itself a quarter of the way through, mid-reply, with its other
        # turns in flight.
        die_after = str(SESSIONS * turns // 4)
        victim = await start_worker(postgres_url, server, 0, turns, logs[0], die_after)
        workers = [victim]
        workers += [await start_worker(postgres_url, server, w, turns, logs[w]) for w in (1, 2, 3)]
        assert await asyncio.wait_for(victim.wait(), 300) == -signal.SIGKILL
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate() for p in workers[1:])), timeout=300
        )
        assert [p.returncode for p in workers[1:]] == [0] * (WORKERS - 1)
        assert all(out.endswith(b"DONE\n") for out, _ in outputs)

    stored = await histories(postgres_url)
    by_id = {m.id: (sid, i, h) for sid, h in stored.items() for i, m in enumerate(h)}
    seen = committed(logs)
    victim_turns = [p for sid, p in seen.values() if p.startswith("w0 ")]
    assert SESSIONS * turns // 4 <= len(victim_turns) < SESSIONS * turns  # it died mid-run
    for reply_id, (session_id, prompt) in seen.items():
        assert reply_id in by_id, f"committed turn {prompt!r} is missing"
        where, index, history = by_id[reply_id]
        assert where == session_id
        assert history[index - 1].text == prompt
        assert not history[index].interrupted
    interrupted = 0
    for session_id, history in stored.items():
        order = check_history(session_id, history)
        for w in range(1, WORKERS):  # the survivors finished every turn
            assert order[str(w)] == list(range(turns)), (session_id, w)
        interrupted += sum(m.interrupted for m in history)
    # The victim's turns that were running when it died were closed as interrupted (by the
    # next turn of their session); every other stored turn was completed.
    assert 1 <= interrupted <= SESSIONS  # it died holding sessions, and they were released


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scale_out.py"


@pytest.mark.slow
def test_the_scale_out_example_runs_on_a_real_database(
    postgres_url: str, run_python: RunPython
) -> None:
    for run in (1, 2):  # the second run starts its sessions afresh
        done = run_python(str(EXAMPLE), postgres_url)
        assert done.returncode == 0, done.stderr
        for name in ("alice-chat", "bob-chat", "team-retro"):
            assert f"{name}: 12 messages, 6 replies seen live" in done.stdout, (run, done.stdout)
        for worker in range(3):
            assert done.stdout.count(f"worker {worker}, turn 1") == 3
        for number in range(2, 7):  # every reply was sent the whole history before it
            assert done.stdout.count(f"your message #{number} here") == 3


def test_the_scale_out_example_asks_for_a_postgres_url(run_python: RunPython) -> None:
    done = run_python(str(EXAMPLE))
    assert done.returncode == 2
    assert "give a postgresql:// URL" in done.stderr
