"""Where a turn's CPU goes, sampled by py-spy: the throughput run of bench/run.py, profiled.

    .venv-bench/bin/python bench/spy.py [--sessions 1000] [--turns 5] [--store sqlite|memory]

Runs N sessions x T turns at once on parley against the benchmarks' endpoint (a process of its
own, not sampled) under `py-spy record --gil` (only the thread holding the GIL is sampled, so
waiting threads are left out), attached once the sessions are made (start-up and setup are
not sampled), and writes bench/PROFILE.md: the share of the samples spent in each library and
each function (own time), and in parley's and aiohttp's functions with what they call.
scripts/bench installs py-spy into .venv-bench.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from endpoint import Endpoint

from parley import Client, ClientConfig, ProviderConfig

PROFILE = Path(__file__).resolve().parent / "PROFILE.md"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


async def workload(sessions: int, turns: int, store: str) -> float:
    """The throughput run: turns per second."""
    async with Endpoint() as endpoint:
        fake = ProviderConfig(type="openai", base_url=endpoint.openai_base_url, api_key="sk-b")
        config = ClientConfig(
            default_model="fake:fake-gpt", providers={"fake": fake}, config_files=False
        )
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/p.db" if store == "sqlite" else "memory://"
            async with Client(store=url, config=config) as client:
                opened = [await client.create_session() for _ in range(sessions)]
                print("ready", flush=True)  # the parent starts sampling now, not before
                await asyncio.sleep(1.0)

                async def converse(index: int) -> None:
                    for t in range(turns):
                        await opened[index].send_and_wait(f"session {index} turn {t}: hi")

                start = time.perf_counter()
                await asyncio.gather(*(converse(i) for i in range(sessions)))
                return sessions * turns / (time.perf_counter() - start)


def where(frame: str) -> tuple[str, str]:
    """(library, function) of a py-spy frame such as ``emit (parley/runtime/live.py:170)``.

    py-spy names files relative to the path they were imported from; absolute paths (a
    script's) are cut at ``site-packages/`` or ``/src/``.
    """
    match = _FRAME.match(frame)
    if match is None:
        return frame, frame
    file = match["file"].split("site-packages/")[-1].split("/src/")[-1]
    parts = Path(file).parts
    if not parts:
        library = "?"
    elif parts[0] == "parley" and len(parts) > 2:
        library = f"parley/{parts[1]}"
    elif len(parts) > 1 and parts[0] != "/":
        library = parts[0]
    else:
        library = Path(file).stem
    return library, f"{match['function']} ({file})"


def summarize(raw: str) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """Samples in all; own time by library and by function; inclusive time of parley's and
    aiohttp's functions (each counted once per sample)."""
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [where(frame) for frame in stack.split(";")]
        library, function = frames[-1]
        libraries[library] += int(count)
        functions[function] += int(count)
        for name in {f for lib, f in frames if lib.startswith(("parley", "aiohttp"))}:
            inclusive[name] += int(count)
        total += int(count)
    return total, libraries, functions, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rate = asyncio.run(workload(args.sessions, args.turns, args.store))
        print(f"{rate:.0f} turns/s (sampled)")
        return
    spy = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "profile.txt"
        child = subprocess.Popen(
            [
                *(sys.executable, __file__, "--child", "--store", args.store),
                *("--sessions", str(args.sessions), "--turns", str(args.turns)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the measured process did not start")
        record = [str(spy), "record", "--gil", "--format", "raw", "--rate", "1000"]
        sampler = subprocess.Popen([*record, "--output", str(out), "--pid", str(child.pid)])
        print(child.stdout.read().strip())
        child.wait()
        sampler.wait()
        total, libraries, functions, inclusive = summarize(out.read_text())
    lines = [
        "# Where a turn's CPU goes",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; `bench/spy.py --sessions "
        f"{args.sessions} --turns {args.turns} --store {args.store}`",
        f"- py-spy samples of the client process (the GIL holder) while the turns ran: {total:,}",
        "",
        "## By library (own time)",
        "",
        "| library | share |",
        "|---|---|",
        *(f"| {name} | {count / total:.1%} |" for name, count in libraries.most_common(12)),
        "",
        "## By function (own time)",
        "",
        "| function | share |",
        "|---|---|",
        *(f"| `{name}` | {count / total:.1%} |" for name, count in functions.most_common(25)),
        "",
        "## parley's and aiohttp's functions (inclusive: with what they call)",
        "",
        "| function | share |",
        "|---|---|",
        *(f"| `{name}` | {count / total:.1%} |" for name, count in inclusive.most_common(30)),
    ]
    PROFILE.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
