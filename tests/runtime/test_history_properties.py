"""Property: whatever mix of sends, waits, aborts, closes and restarts, histories stay valid."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parley import Client, ClientConfig, Message, ParleyError, Session
from parley.models import EchoModel

SESSIONS = 3
Op = tuple[str, int]

operations = st.lists(
    st.tuples(st.sampled_from(["send", "wait", "abort", "close", "restart"]), st.integers(0, 2)),
    max_size=20,
)


@dataclass
class Ledger:
    """What the test did to one session, to check its history against."""

    sent: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)


def check_history(history: list[Message], ledger: Ledger) -> None:
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)
    assert len(history) % 2 == 0
    prompts = [m.text for m in history[0::2]]
    # Stored prompts are a subsequence of what was sent, in order: nothing reordered,
    # duplicated or taken from another session (dropped queued turns may be missing).
    remaining = iter(ledger.sent)
    assert all(any(p == s for s in remaining) for p in prompts)
    for prompt in ledger.completed:
        index = prompts.index(prompt)
        reply = history[2 * index + 1]
        assert not reply.interrupted
        assert f'You said "{prompt}"' in reply.text


def make_client(url: str) -> Client:
    slow = EchoModel(token_delay=0.001, provider="slow")
    return Client(store=url, config=ClientConfig(providers={"slow": slow}))


async def scenario(url: str, ops: list[Op]) -> None:
    client = make_client(url)
    await client.start()
    ids = [f"s{i}" for i in range(SESSIONS)]
    sessions: list[Session] = [
        await client.create_session(session_id=i, model="slow:x") for i in ids
    ]
    ledgers = [Ledger() for _ in ids]
    waits: list[tuple[int, str, asyncio.Future[Message]]] = []
    for step, (op, i) in enumerate(ops):
        prompt = f"p{step}"
        if op == "send":
            await sessions[i].send(prompt)
            ledgers[i].sent.append(prompt)
        elif op == "wait":
            ledgers[i].sent.append(prompt)
            waits.append((i, prompt, asyncio.ensure_future(sessions[i].send_and_wait(prompt))))
            await asyncio.sleep(0)
        elif op == "abort":
            await sessions[i].abort()
        elif op == "close":
            await sessions[i].close()
            sessions[i] = await client.resume_session(ids[i])
        else:  # restart: a new client over the same store
            await client.stop()
            client = make_client(url)
            await client.start()
            sessions = [await client.resume_session(i) for i in ids]
    results = await asyncio.gather(*(w for _, _, w in waits), return_exceptions=True)
    for (i, prompt, _), result in zip(waits, results, strict=True):
        if isinstance(result, Message):
            assert f'You said "{prompt}"' in result.text  # the reply to this very prompt
            ledgers[i].completed.append(prompt)
        else:
            assert isinstance(result, ParleyError)  # aborted, closed: never anything else
    for n, session in enumerate(sessions):
        final = f"final-{n}"
        ledgers[n].sent.append(final)
        ledgers[n].completed.append(final)
        await session.send_and_wait(final)  # FIFO: everything queued before it is done
        check_history(await session.messages(), ledgers[n])
    live = [await s.messages() for s in sessions]
    await client.stop()
    async with make_client(url) as reopened:
        for n, session_id in enumerate(ids):
            stored = await (await reopened.resume_session(session_id)).messages()
            assert stored == live[n]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_histories_stay_valid_under_any_sequence_of_operations(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(f"sqlite:///{Path(folder) / 'p.db'}", ops))
