"""parley's numbers, each measured side by side with its reference in one run.

    scripts/bench            # the full run (several minutes); writes bench/RESULTS.md
    scripts/bench --quick    # smaller sizes, to check that everything runs

Every figure is a ratio against a reference measured in the same run on the same machine,
because absolute times on a shared 2-core machine are noise. Everything talks to a
FakeLLMServer on loopback (zero latency, and "realistic": a time to first token and a token
rate), never to a real provider; where time is measured, the server runs in a process of its
own (bench/endpoint.py), as a real provider would.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from endpoint import Endpoint

from parley import Client, ClientConfig, ProviderConfig, __version__
from parley.testing import FakeLLMServer, FakeReply

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
RAW_SDK = "raw openai SDK, streaming"
LANGGRAPH_MEMORY = "LangGraph, InMemorySaver"
MODEL = "fake-gpt"
KEY = "sk-bench"


ZERO_LATENCY = "zero latency"


@dataclass
class Sizes:
    latency_turns: int = 2000
    realistic_turns: int = 500
    sessions: int = 1000
    turns: int = 5
    memory_counts: tuple[int, ...] = (10_000, 100_000)
    storage_turns: int = 500
    resume_turns: int = 1000
    listed: int = 100_000
    long_history: int = 1000


QUICK = Sizes(
    latency_turns=50,
    realistic_turns=20,
    sessions=100,
    turns=3,
    memory_counts=(1_000, 5_000),
    storage_turns=50,
    resume_turns=100,
    listed=5_000,
    long_history=200,
)


@dataclass
class Report:
    sections: list[str] = field(default_factory=list)

    def table(self, title: str, note: str, header: list[str], rows: list[list[str]]) -> None:
        lines = [f"## {title}", "", note, "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.sections.append("\n".join(lines))
        print("\n" + self.sections[-1], flush=True)


def config_for(base_url: str) -> ClientConfig:
    fake = ProviderConfig(type="openai", base_url=base_url, api_key=KEY)
    return ClientConfig(default_model=f"fake:{MODEL}", providers={"fake": fake}, config_files=False)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def verdict_against(ours: float, needed: float) -> str:
    """Met when `ours` reaches `needed`; not measured when the reference failed (NaN)."""
    return "not measured (the reference failed)" if needed != needed else verdict(ours >= needed)


# --- 1. added latency per turn -------------------------------------------------------------


CONVERSATION = 5
"""Turns per conversation in the latency runs."""


async def bare_http_turn(http: aiohttp.ClientSession, url: str, history: list[Any]) -> str:
    """The floor: one streamed Chat Completions call with aiohttp and orjson, nothing else."""
    body = orjson.dumps(
        {
            "model": MODEL,
            "messages": history,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    text: list[str] = []
    async with http.post(url, data=body, headers=headers) as response:
        rest = b""
        async for chunk in response.content.iter_any():
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"data: {"):
                    for choice in orjson.loads(line[6:]).get("choices") or ():
                        text.append(choice["delta"].get("content") or "")
    return "".join(text)


async def bare_conversation(http: aiohttp.ClientSession, base_url: str) -> list[float]:
    samples: list[float] = []
    history: list[dict[str, str]] = []
    for t in range(CONVERSATION):
        history.append({"role": "user", "content": f"turn {t}: tell me something"})
        start = time.perf_counter()
        text = await bare_http_turn(http, f"{base_url}/chat/completions", history)
        samples.append(time.perf_counter() - start)
        history.append({"role": "assistant", "content": text})
    return samples


async def raw_sdk_conversation(sdk: openai.AsyncOpenAI) -> list[float]:
    """The official SDK, streaming, resending the growing history each turn."""
    samples: list[float] = []
    history: list[dict[str, str]] = []
    for t in range(CONVERSATION):
        history.append({"role": "user", "content": f"turn {t}: tell me something"})
        start = time.perf_counter()
        stream = await sdk.chat.completions.create(
            model=MODEL,
            messages=history,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        samples.append(time.perf_counter() - start)
        history.append({"role": "assistant", "content": text})
    return samples


async def parley_conversation(client: Client, *, handler: bool = False) -> list[float]:
    samples: list[float] = []
    session = await client.create_session()
    if handler:  # every event is then built and delivered (none is, for no one)
        session.on(lambda event: None)
    for t in range(CONVERSATION):
        start = time.perf_counter()
        await session.send_and_wait(f"turn {t}: tell me something")
        samples.append(time.perf_counter() - start)
    await session.close()
    return samples


LATENCY_SIDES = (
    "bare HTTP (aiohttp + orjson)",
    "raw openai SDK",
    "parley, memory",
    "parley, SQLite",
    "parley, SQLite, a handler on every event",
)


async def latency_samples(server: Endpoint, turns: int, folder: Path) -> dict[str, list[float]]:
    """Every side, conversation by conversation in turn, so that drift hits all alike."""
    samples: dict[str, list[float]] = {side: [] for side in LATENCY_SIDES}
    url = server.openai_base_url
    async with (
        aiohttp.ClientSession() as http,
        openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as sdk,
        Client(store="memory://", config=config_for(url)) as memory,
        Client(store=f"sqlite:///{folder / 'latency.db'}", config=config_for(url)) as sqlite,
    ):
        sides: dict[str, Callable[[], Awaitable[list[float]]]] = {
            LATENCY_SIDES[0]: lambda: bare_conversation(http, url),
            LATENCY_SIDES[1]: lambda: raw_sdk_conversation(sdk),
            LATENCY_SIDES[2]: lambda: parley_conversation(memory),
            LATENCY_SIDES[3]: lambda: parley_conversation(sqlite),
            LATENCY_SIDES[4]: lambda: parley_conversation(sqlite, handler=True),
        }
        for run in sides.values():  # warm every side up
            await run()
        for _ in range(max(1, turns // CONVERSATION)):
            for side, run in sides.items():
                # Each side pays for collecting its own garbage, not the side before it's (the
                # SDK's conversation leaves the most).
                gc.collect()
                samples[side] += await run()
    return samples


async def bench_latency(report: Report, sizes: Sizes, folder: Path) -> None:
    rows = []
    for name, options, turns in (
        (ZERO_LATENCY, {}, sizes.latency_turns),
        (
            "realistic (50 ms to first token, 500 tokens/s)",
            {"time_to_first_token": 0.05, "tokens_per_second": 500},
            sizes.realistic_turns,
        ),
    ):
        async with Endpoint(**options) as server:  # type: ignore[arg-type]
            (folder / name[:4]).mkdir(exist_ok=True)
            started = server.cpu_seconds()  # the process's start-up is not a request's cost
            samples = await latency_samples(server, turns, folder / name[:4])
            warm_up = len(LATENCY_SIDES) * CONVERSATION
            requests = sum(len(v) for v in samples.values()) + warm_up
            endpoint_cpu = (server.cpu_seconds() - started) / requests * 1000
        floor = samples[LATENCY_SIDES[0]]
        for side in LATENCY_SIDES:
            ours = samples[side]
            added50 = (statistics.median(ours) - statistics.median(floor)) * 1000
            added99 = (percentile(ours, 0.99) - percentile(floor, 0.99)) * 1000
            held = side in LATENCY_SIDES[2:4]  # send_and_wait as it comes, no handler
            rows.append(
                [
                    name if side == LATENCY_SIDES[0] else "",
                    side,
                    f"{statistics.median(ours) * 1000:.2f} / {percentile(ours, 0.99) * 1000:.2f}",
                    "" if side == LATENCY_SIDES[0] else f"{added50:+.2f} / {added99:+.2f}",
                    f"{endpoint_cpu:.2f} ms" if side == LATENCY_SIDES[0] else "",
                    verdict(added50 <= 0.3) if held and name == ZERO_LATENCY else "",
                ]
            )
    report.table(
        "Added latency per turn",
        "One turn at a time: `send_and_wait` against a bare HTTP call (aiohttp and orjson "
        "streaming the same request and reading its chunks: the floor) and the official "
        "`openai` SDK, all resending the same growing history to the same endpoint, in "
        f"conversations of {CONVERSATION} turns taken in turn by every side: "
        f"{sizes.latency_turns} turns each on the zero-latency endpoint, "
        f"{sizes.realistic_turns} on the realistic one. The endpoint runs in a process of its "
        "own; its CPU per request is shown (pacing tokens costs it more). The garbage collector "
        "runs before each conversation, so that each side pays for its own garbage. Target: "
        "parley ≤ "
        "0.3 ms over the bare call at p50 on the fast endpoint, as `send_and_wait` is "
        "called with no handler (nothing then builds the turn's events). The handler row "
        "shows what building and delivering the turn's two dozen events adds. On the "
        "realistic endpoint the client idles 2 ms between tokens, and what parley does after "
        "the last one (above all SQLite's write of the reply, which must be durable before "
        "`send_and_wait` returns) runs on a CPU that has gone cold: those rows are shown "
        "without a target.",
        ["endpoint", "client", "p50 / p99 ms", "added p50 / p99 ms", "endpoint CPU", "target"],
        rows,
    )


# --- 2. throughput ----------------------------------------------------------------------------


async def parley_throughput(server: Endpoint, sizes: Sizes, store: str) -> float:
    async with Client(store=store, config=config_for(server.openai_base_url)) as client:
        sessions = [await client.create_session() for _ in range(sizes.sessions)]

        async def converse(index: int) -> None:
            for t in range(sizes.turns):
                await sessions[index].send_and_wait(
                    f"session {index} turn {t}: tell me something", timeout=None
                )

        start = time.perf_counter()
        await asyncio.gather(*(converse(i) for i in range(sizes.sessions)))
        return time.perf_counter() - start


async def bench_throughput(report: Report, sizes: Sizes, folder: Path) -> None:
    total = sizes.sessions * sizes.turns
    runs: list[tuple[str, Callable[[Endpoint], Awaitable[float]]]] = [
        ("parley, SQLite", lambda s: parley_throughput(s, sizes, f"sqlite:///{folder / 'p.db'}")),
        ("parley, memory", lambda s: parley_throughput(s, sizes, "memory://")),
        (
            RAW_SDK,
            lambda s: peers.raw_sdk_throughput(
                s.openai_base_url, MODEL, sizes.sessions, sizes.turns
            ),
        ),
        (
            "OpenAI Agents SDK, Runner + SQLiteSession",
            lambda s: peers.agents_sdk_throughput(
                s.openai_base_url, MODEL, sizes.sessions, sizes.turns, folder / "agents"
            ),
        ),
        (
            "LangGraph, SqliteSaver",
            lambda s: peers.langgraph_throughput(
                s.openai_base_url,
                MODEL,
                sizes.sessions,
                sizes.turns,
                folder / "lg-sqlite",
                "sqlite",
            ),
        ),
        (
            LANGGRAPH_MEMORY,
            lambda s: peers.langgraph_throughput(
                s.openai_base_url,
                MODEL,
                sizes.sessions,
                sizes.turns,
                folder / "lg-memory",
                "memory",
            ),
        ),
    ]
    rates: dict[str, float] = {}
    client_cpu: dict[str, str] = {}
    endpoint: dict[str, str] = {}
    for name, run in runs:
        for sub in ("agents", "lg-sqlite", "lg-memory"):
            (folder / sub).mkdir(exist_ok=True)
        async with Endpoint() as server:
            cpu = server.cpu_seconds()
            ours = time.process_time()
            try:
                seconds = await run(server)
            except Exception as exc:  # a peer that fails is reported, not hidden
                print(f"{name} failed: {exc!r}", flush=True)
                rates[name] = float("nan")
                endpoint[name] = client_cpu[name] = ""
                continue
            ours = time.process_time() - ours
            cpu = server.cpu_seconds() - cpu
        rates[name] = total / seconds
        client_cpu[name] = f"{ours / total * 1000:.2f} ms"
        endpoint[name] = f"{cpu / total * 1000:.2f} ms, {cpu / seconds:.0%} busy"
        gc.collect()
    rows = []
    ours = rates["parley, SQLite"]
    for name, rate in rates.items():
        shown = "failed" if rate != rate else f"{rate:,.0f}"
        rows.append(
            [
                name,
                shown,
                f"{ours / rate:.2f}x" if rate == rate else "",
                client_cpu[name],
                endpoint[name],
            ]
        )
    rows.append(
        [
            f"**target**: parley on SQLite ≥ 3x {LANGGRAPH_MEMORY}",
            "",
            verdict_against(ours, 3 * rates[LANGGRAPH_MEMORY]),
            "",
            "",
        ]
    )
    rows.append(
        [
            f"**target**: parley on SQLite ≥ 2x the {RAW_SDK}",
            "",
            verdict_against(ours, 2 * rates[RAW_SDK]),
            "",
            "",
        ]
    )
    report.table(
        "Throughput",
        f"{sizes.sessions:,} sessions x {sizes.turns} turns, all sessions at once, each "
        "session's turns one after another, the history resent every turn; zero-latency "
        "endpoint (FakeLLMServer), same model name. *parley on SQLite is* says how many times "
        "faster parley on SQLite was than that row. Client CPU per turn is the measuring "
        "process's CPU time over the run. The endpoint runs in a process of its own; its CPU "
        "per turn, and how busy it kept one core, show it was not what limited the rate.",
        [
            "runtime",
            "turns/s",
            "parley on SQLite is",
            "client CPU per turn",
            "endpoint CPU per turn",
        ],
        rows,
    )


# --- 2b. per-turn cost by history length ----------------------------------------------------

HISTORY_TURNS = 100
"""Turns measured at each history length."""


class CPUMeter:
    """User CPU and all CPU (user and system) of this process, summed over measured calls."""

    def __init__(self) -> None:
        self.user = self.total = 0.0
        self.calls = 0

    async def measure(self, call: Awaitable[Any]) -> None:
        usage, cpu = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        await call
        self.total += time.process_time() - cpu
        self.user += resource.getrusage(resource.RUSAGE_SELF).ru_utime - usage.ru_utime
        self.calls += 1

    def per_call(self) -> tuple[float, float]:
        """(user, all) CPU per call in ms."""
        return self.user / self.calls * 1000, self.total / self.calls * 1000


def earlier_turns(length: int) -> list[dict[str, str]]:
    """A history of `length` messages, for the raw SDK."""
    history: list[dict[str, str]] = []
    for t in range(length // 2):
        history.append({"role": "user", "content": f"earlier turn {t}: tell me something"})
        history.append({"role": "assistant", "content": " ".join(f"word{i}" for i in range(10))})
    return history


async def history_costs(
    server: Endpoint, length: int, folder: Path
) -> dict[str, tuple[float, float]]:
    """CPU per turn, for parley (SQLite) and the raw SDK, of turns sent to sessions `length`
    messages long. Each session takes a few measured turns, so the length barely moves."""
    url = server.openai_base_url
    per_session = 5
    parley, sdk_meter = CPUMeter(), CPUMeter()
    store = f"sqlite:///{folder / f'history-{length}.db'}"
    async with Client(store=store, config=config_for(url)) as client:
        for _ in range(HISTORY_TURNS // per_session):
            session = await client.create_session()
            for t in range(length // 2):
                await session.send_and_wait(f"earlier turn {t}: tell me something")
            for t in range(per_session):
                await parley.measure(session.send_and_wait(f"measured turn {t}: tell me"))
    async with openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0) as sdk:

        async def sdk_turn(history: list[Any], text: str) -> None:
            history.append({"role": "user", "content": text})
            stream = await sdk.chat.completions.create(
                model=MODEL, messages=history, stream=True, stream_options={"include_usage": True}
            )
            reply = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            history.append({"role": "assistant", "content": reply})

        for _ in range(HISTORY_TURNS // per_session):
            history = earlier_turns(length)
            for t in range(per_session):
                await sdk_meter.measure(sdk_turn(history, f"measured turn {t}: tell me"))
    return {"parley, SQLite": parley.per_call(), RAW_SDK: sdk_meter.per_call()}


async def bench_history(report: Report, sizes: Sizes, folder: Path) -> None:
    lengths = (10, sizes.long_history)
    costs: dict[int, dict[str, tuple[float, float]]] = {}
    async with Endpoint(lean=True) as server:
        started = server.cpu_seconds()
        await history_costs(server, 10, folder)  # warm up
        for length in lengths:
            costs[length] = await history_costs(server, length, folder)
        endpoint_cpu = server.cpu_seconds() - started
    # three rounds (the warm-up too): parley's earlier turns, and both sides' measured ones
    requests = sum(HISTORY_TURNS // 5 * (n // 2) + 2 * HISTORY_TURNS for n in (10, *lengths))
    rows = []
    for side in ("parley, SQLite", RAW_SDK):
        short, long = costs[lengths[0]][side], costs[lengths[1]][side]
        ratio = long[0] / short[0]
        rows.append(
            [
                side,
                f"{short[0]:.3f} / {short[1]:.3f}",
                f"{long[0]:.3f} / {long[1]:.3f}",
                f"{ratio:.2f}x",
                verdict(ratio <= 1.5) if side.startswith("parley") else "",
            ]
        )
    report.table(
        "Per-turn cost by history length",
        f"CPU per turn of the client process over {HISTORY_TURNS} turns, one at a time, "
        f"sent to sessions whose history is 10 messages long, and {lengths[1]:,} messages "
        "long (built by earlier turns; each session takes 5 measured turns). *User* CPU is "
        "the client's own work; *all* adds the kernel's, which mostly copies the request's "
        "bytes to the socket and so grows with the history whatever the client does. The "
        "endpoint here answers every request with the same short stream without parsing it "
        "(bench/endpoint.py, lean), so that its work on the other core stays small: "
        f"{endpoint_cpu / requests * 1000:.3f} ms of CPU per request on average. Target: "
        "parley's user CPU per turn at the long history within 1.5x of the short one.",
        [
            "client",
            "history 10: user / all CPU ms",
            f"history {lengths[1]:,}: user / all CPU ms",
            "long vs short (user CPU)",
            "target",
        ],
        rows,
    )


# --- 3. memory per session --------------------------------------------------------------------

_MEMORY_CHILD = """
import asyncio, gc, os, sys, psutil
from parley import Client
count, mode, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
async def main():
    limit = 1 if mode == "evicted" else None
    async with Client(store=f"sqlite:///{folder}/m-{mode}-{count}.db",
                      max_live_sessions=limit) as client:
        warm = await client.create_session()
        await warm.send_and_wait("warm up")
        gc.collect()
        before = psutil.Process().memory_info().rss
        kept = []
        for i in range(count):
            session = await client.create_session()
            await session.send_and_wait(f"hello from {i}")
            kept.append(session)
        gc.collect()
        after = psutil.Process().memory_info().rss
        print((after - before) / count)
asyncio.run(main())
"""


def bench_memory(report: Report, sizes: Sizes, folder: Path) -> None:
    rows = []
    for count in sizes.memory_counts:
        per: dict[str, float] = {}
        for mode in ("hot", "evicted"):
            done = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, str(count), mode, str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            per[mode] = float(done.stdout.strip())
        rows.append(
            [
                f"{count:,}",
                f"{per['hot'] / 1024:.1f} KB",
                verdict(per["hot"] <= 8 * 1024),
                f"{per['evicted'] / 1024:.2f} KB",
                verdict(per["evicted"] <= 1024),
            ]
        )
    report.table(
        "Memory per session",
        "RSS growth per session in a fresh process, each session created and sent one turn "
        "(echo model, SQLite store), every `Session` object kept. *Evicted*: the same with "
        "`max_live_sessions=1`, so all but one are evicted while their handles live on. "
        "Targets: ≤ 8 KB hot, ≤ 1 KB evicted (LangGraph: 9.8 KB in memory, 2.0 KB on SQLite).",
        ["sessions", "hot", "target", "evicted", "target"],
        rows,
    )


# --- 4. storage -------------------------------------------------------------------------------


def files_size(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def reply_text(turn: int) -> str:
    """A reply of a realistic size (about 150 words), different every turn."""
    words = [f"word{(turn * 7 + i) % 997}" for i in range(150)]
    return f"Answer {turn}: " + " ".join(words) + "."


async def bench_storage(report: Report, sizes: Sizes, folder: Path) -> None:
    path = folder / "storage.db"
    turns = sizes.storage_turns
    async with FakeLLMServer() as server:
        server.script(*(FakeReply(text=reply_text(t)) for t in range(turns)))
        async with Client(
            store=f"sqlite:///{path}", config=config_for(server.openai_base_url)
        ) as client:
            session = await client.create_session()
            for t in range(turns):
                await session.send_and_wait(peers.user_text(0, t))
            messages = await session.messages()
            raw = sum(len(m.text.encode()) for m in messages)
        ours = files_size(folder, "storage.db*")
        server.script(*(FakeReply(text=reply_text(t)) for t in range(turns)))
        theirs = await peers.langgraph_storage_bytes(
            server.openai_base_url, MODEL, turns, folder / "lg-storage"
        )
    per_message = (ours - raw) / len(messages)
    report.table(
        "Storage",
        f"Bytes on disk for one {turns}-turn conversation (short prompts, replies of about 150 "
        "words), the SQLite files with the WAL checkpointed at close, against the raw text of "
        f"its messages. parley's overhead is {per_message:,.0f} bytes a message (ids, times, "
        "model, usage, the row and its page). Target: parley ≤ 1.5x the raw text.",
        ["", "bytes", "x raw text", "target"],
        [
            ["raw text (UTF-8)", f"{raw:,}", "1.00x", ""],
            ["parley, SQLite", f"{ours:,}", f"{ours / raw:.2f}x", verdict(ours <= 1.5 * raw)],
            ["LangGraph, SqliteSaver", f"{theirs:,}", f"{theirs / raw:.2f}x", ""],
        ],
    )


# --- 5. resume and list -----------------------------------------------------------------------


async def bench_resume_and_list(report: Report, sizes: Sizes, folder: Path) -> None:
    url = f"sqlite:///{folder / 'resume.db'}"
    async with Client(store=url, max_live_sessions=10) as client:
        long = await client.create_session(session_id="long")
        for t in range(sizes.resume_turns):
            await long.send_and_wait(f"turn {t}")
        for i in range(sizes.listed - 1):  # each evicted (and freed) as the next one comes
            await client.create_session(session_id=f"s{i:06d}", metadata={"owner": f"u{i % 97}"})
    resumes, lists = [], []
    async with Client(store=url) as client:
        for _ in range(20):
            start = time.perf_counter()
            session = await client.resume_session("long")
            resumes.append(time.perf_counter() - start)
            await session.close()
            start = time.perf_counter()
            await client.list_sessions(limit=50)
            lists.append(time.perf_counter() - start)
    resume_ms, list_ms = statistics.median(resumes) * 1000, statistics.median(lists) * 1000
    report.table(
        "Resume and list",
        f"A fresh client on SQLite: `resume_session` of a {sizes.resume_turns}-turn session "
        f"(its whole history loaded), and `list_sessions(limit=50)` among {sizes.listed:,} "
        "sessions; medians of 20. Targets: < 10 ms and < 5 ms.",
        ["operation", "p50 ms", "target"],
        [
            [
                f"resume a {sizes.resume_turns}-turn session",
                f"{resume_ms:.2f}",
                verdict(resume_ms < 10),
            ],
            [f"list 50 of {sizes.listed:,}", f"{list_ms:.2f}", verdict(list_ms < 5)],
        ],
    )


# --- the run ----------------------------------------------------------------------------------


def machine() -> list[str]:
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()}, parley {__version__}, openai {openai.__version__}",
        "- peers: " + ", ".join(f"{k} {v}" for k, v in peers.versions().items()),
    ]


SECTIONS = ("latency", "throughput", "history", "memory", "storage", "resume")


async def main(quick: bool, only: str | None) -> None:
    sizes = QUICK if quick else Sizes()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        folder = Path(tmp)
        wanted = SECTIONS if only is None else (only,)
        if "latency" in wanted:
            await bench_latency(report, sizes, folder)
        if "throughput" in wanted:
            await bench_throughput(report, sizes, folder)
        if "history" in wanted:
            await bench_history(report, sizes, folder)
        if "memory" in wanted:
            bench_memory(report, sizes, folder)
        if "storage" in wanted:
            await bench_storage(report, sizes, folder)
        if "resume" in wanted:
            await bench_resume_and_list(report, sizes, folder)
    if only is not None:
        print("\n(one section: bench/RESULTS.md is left as it was)")
        return
    head = ["# parley benchmarks", "", *machine(), ""]
    if quick:
        head.append("*A `--quick` run: small sizes, not the published figures.*\n")
    RESULTS.write_text("\n".join(head) + "\n" + "\n\n".join(report.sections) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a check that it runs")
    parser.add_argument(
        "--only", choices=SECTIONS, help="run one section and print it (RESULTS.md untouched)"
    )
    args: Any = parser.parse_args()
    asyncio.run(main(args.quick, args.only))
