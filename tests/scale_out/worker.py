"""One worker process of the scale-out torture test (tests/test_scale_out.py).

Serves shared sessions of a PostgreSQL store against a FakeLLMServer: sends every turn of every
session at once (each session's turns queue in order), and writes one line per turn the moment
`send_and_wait` returns (the turn is stored by then): ``session<TAB>prompt<TAB>reply id``.
Prints READY once its sessions are open, DONE at the end.

    python worker.py STORE_URL OPENAI_BASE_URL WORKER SESSIONS TURNS LOG [DIE_AFTER]

With DIE_AFTER, the worker SIGKILLs itself once that many of its turns are stored, in the
middle of streaming the next reply: a worker dying mid-turn, holding a session, at a moment
the test can count on even on a busy machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import TextIO

from parley import Client, ClientConfig, ProviderConfig, Session

DIE_AFTER = int(sys.argv[7]) if len(sys.argv) > 7 else None
done = 0


async def turn(session: Session, log: TextIO, prompt: str) -> None:
    global done
    reply_id = None
    async for event in session.stream(prompt):  # this turn's own events only
        if event.type == "assistant.message_delta" and DIE_AFTER is not None and done >= DIE_AFTER:
            # Mid-reply: this turn's user message is stored and it holds its session.
            os.kill(os.getpid(), signal.SIGKILL)
        elif event.type == "assistant.message" and not event.data.interrupted:
            reply_id = event.data.message_id  # stored by the time it is emitted
        elif event.type == "session.error":
            raise RuntimeError(f"{prompt}: {event.data.message}")
    assert reply_id is not None, prompt
    log.write(f"{session.session_id}\t{prompt}\t{reply_id}\n")
    log.flush()
    done += 1


async def main(url: str, base_url: str, worker: int, sessions: int, turns: int, path: str) -> None:
    fake = ProviderConfig(type="openai", base_url=base_url, api_key="sk-test", timeout=60)
    config = ClientConfig(default_model="fake:fake-gpt", providers={"fake": fake})
    with open(path, "a", encoding="utf-8") as log:  # noqa: ASYNC230 - one open, before any turn
        async with Client(store=url, config=config) as client:
            opened = [await client.resume_session(f"s{s:02d}") for s in range(sessions)]
            print("READY", flush=True)
            # Tasks start in this order, so each session's turns queue here as t0, t1, t2...
            await asyncio.gather(
                *(
                    turn(session, log, f"w{worker} {session.session_id} t{t}")
                    for t in range(turns)
                    for session in opened
                )
            )
    print("DONE", flush=True)


if __name__ == "__main__":
    url, base_url, worker, sessions, turns, path = sys.argv[1:7]
    asyncio.run(main(url, base_url, int(worker), int(sessions), int(turns), path))
