"""Where a turn's time goes: pyinstrument over many turns against a zero-latency endpoint.

    .venv-bench/bin/python bench/profile_turn.py [--sessions 100] [--turns 5] [--serial]
                                                 [--html out.html]

`--serial` runs one turn at a time (the added-latency view); by default all sessions run at
once (the throughput view).

Run by hand before publishing numbers (scripts/bench sets up .venv-bench); prints the call
tree, heaviest first.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from pyinstrument import Profiler

from parley import Client, ClientConfig, ProviderConfig
from parley.testing import FakeLLMServer


async def main(sessions: int, turns: int, serial: bool) -> Profiler:
    async with FakeLLMServer() as server:
        fake = ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="sk-b")
        config = ClientConfig(default_model="fake:fake-gpt", providers={"fake": fake})
        with tempfile.TemporaryDirectory() as folder:
            async with Client(store=f"sqlite:///{folder}/p.db", config=config) as client:
                opened = [await client.create_session() for _ in range(sessions)]

                async def converse(index: int) -> None:
                    for t in range(turns):
                        await opened[index].send_and_wait(f"session {index} turn {t}: hi")

                profiler = Profiler(async_mode="disabled")
                profiler.start()
                if serial:
                    for i in range(sessions):
                        await converse(i)
                else:
                    await asyncio.gather(*(converse(i) for i in range(sessions)))
                profiler.stop()
    return profiler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--serial", action="store_true", help="one turn at a time")
    parser.add_argument("--html", type=Path)
    args = parser.parse_args()
    profiler = asyncio.run(main(args.sessions, args.turns, args.serial))
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html is not None:
        args.html.write_text(profiler.output_html())
