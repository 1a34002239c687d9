"""Several worker processes sharing sessions on one PostgreSQL database.

Run it with a database you can write to (parley creates its tables on first use):

    python examples/scale_out.py postgresql://user:password@localhost/parley

or with PARLEY_STORE set to that URL. Three worker processes start, as three copies of a web
app behind a load balancer would. Each sends turns to the same three sessions at once. The
turns of one session never interleave: they run one at a time, across all workers, and each
sees the whole history the others wrote. This process watches every worker's events with
`Client.on`, then prints each history, showing which worker sent each turn.

It runs offline on the `echo` model; pass `--model openai:gpt-5` (with OPENAI_API_KEY set) for
a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
from collections import Counter
from multiprocessing.synchronize import Barrier

from parley import Client, SessionEvent, SessionNotFoundError

SESSIONS = ("alice-chat", "bob-chat", "team-retro")
WORKERS = 3
TURNS = 2


async def serve(store: str, worker: int, start: Barrier) -> None:
    """One worker: a client of its own on the shared store, sending to every session."""
    async with Client(store=store) as client:
        sessions = [await client.resume_session(session_id) for session_id in SESSIONS]
        await asyncio.to_thread(start.wait)  # all workers send at the same moment
        await asyncio.gather(
            *(
                session.send_and_wait(f"worker {worker}, turn {turn}: hello {session.session_id}")
                for turn in range(TURNS)
                for session in sessions
            )
        )


def worker_main(store: str, worker: int, start: Barrier) -> None:
    asyncio.run(serve(store, worker, start))


async def main(store: str, model: str) -> None:
    async with Client(store=store) as client:
        for session_id in SESSIONS:  # a fresh start each run
            with contextlib.suppress(SessionNotFoundError):
                await client.delete_session(session_id)
            await client.create_session(session_id=session_id, model=model)

        seen: Counter[str] = Counter()
        all_seen = asyncio.Event()

        def watch(event: SessionEvent) -> None:
            if event.type == "assistant.message":
                seen[event.session_id] += 1
                if seen.total() == len(SESSIONS) * WORKERS * TURNS:
                    all_seen.set()

        client.on(watch)  # sees the events of sessions served by the other processes
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(WORKERS)
        workers = [
            spawn.Process(target=worker_main, args=(store, w, start)) for w in range(WORKERS)
        ]
        for process in workers:
            process.start()
        await asyncio.gather(*(asyncio.to_thread(process.join) for process in workers))
        if any(process.exitcode != 0 for process in workers):
            raise SystemExit("a worker failed; its traceback is above")
        await asyncio.wait_for(all_seen.wait(), 10)  # the last events may still be on their way

        for session_id in SESSIONS:
            session = await client.resume_session(session_id)
            history = await session.messages()
            print(f"\n{session_id}: {len(history)} messages, {seen[session_id]} replies seen live")
            for message in history:  # each echo reply counts the messages it was sent
                text = message.text if message.role == "user" else "..." + message.text[-50:]
                print(f"  {message.role:>9}: {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", nargs="?", default=os.environ.get("PARLEY_STORE"))
    parser.add_argument("--model", default="echo")
    args = parser.parse_args()
    if not args.store or not args.store.startswith(("postgresql://", "postgres://")):
        parser.error("give a postgresql:// URL (or set PARLEY_STORE to one)")
    asyncio.run(main(args.store, args.model))
