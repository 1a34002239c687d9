"""The peers parley is measured against, the OpenAI Agents SDK and LangGraph, used as documented.

Every function builds its own clients and stores, talks only to the OpenAI Chat Completions API at
`base_url` (in the benchmarks, parley's `FakeLLMServer` on loopback), closes what it opened, and
checks at the end that the conversation history was really kept. The timed part is the
`asyncio.gather` over the conversations only; building the agent, graph, clients and stores is
setup and is not timed.

- `agents_sdk_throughput`: one `Agent` on `OpenAIChatCompletionsModel` (the Agents SDK's model
  for Chat Completions servers, since the fake server has no Responses API), conversations kept in
  `SQLiteSession`s that share one SQLite file, as the SDK's sessions docs show. Tracing is off
  through the SDK's own switch, since its exporter would try to reach api.openai.com.
- `langgraph_throughput`: the minimal chat graph of LangGraph's docs (`StateGraph(MessagesState)`,
  one node calling `ChatOpenAI`), with `AsyncSqliteSaver` or `InMemorySaver` as checkpointer.
- `langgraph_storage_bytes`: what one LangGraph thread of `turns` turns takes on disk in SQLite.

Retries stay at the SDKs' defaults: the fake server answers every request, so none happen.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Coroutine, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from agents import Agent, OpenAIChatCompletionsModel, Runner, SQLiteSession, set_tracing_disabled
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

API_KEY = "sk-bench"  # the fake server takes any key, but the SDKs want one
INSTRUCTIONS = "You are a helpful assistant. Answer briefly."

PEERS = (
    "openai-agents",
    "langgraph",
    "langgraph-checkpoint-sqlite",
    "langchain-openai",
    "openai",
)


def versions() -> dict[str, str]:
    """The installed versions of the peers (and of the openai SDK both of them sit on)."""
    return {name: version(name) for name in PEERS}


def user_text(session: int, turn: int) -> str:
    """The user message of turn `turn` of conversation `session`."""
    return f"session {session} turn {turn}: tell me something"


def _fresh_dir(workdir: Path, prefix: str) -> Path:
    """A new, empty directory under `workdir`, so no run ever sees an earlier run's database."""
    workdir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))


async def _gather(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """`asyncio.gather` over the conversations; if one fails, the rest are cancelled and awaited
    before the error propagates, so none outlives the stores and clients closed after it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# -- the raw openai SDK ------------------------------------------------------------------------


async def raw_sdk_throughput(base_url: str, model: str, sessions: int, turns: int) -> float:
    """Seconds for `sessions` concurrent conversations on the bare `openai` SDK, streaming.

    Each conversation keeps its history in a list and resends it every turn, with
    ``include_usage``, reading the streamed chunks: what a runtime built on the SDK must do at
    the least, with no store at all.
    """
    if sessions < 1 or turns < 1:
        raise ValueError("sessions and turns must be >= 1")
    histories: list[list[dict[str, str]]] = [[] for _ in range(sessions)]
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:  # as documented

        async def converse(s: int) -> None:
            history = histories[s]
            for t in range(turns):
                history.append({"role": "user", "content": user_text(s, t)})
                stream = await client.chat.completions.create(
                    model=model,
                    messages=history,  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                )
                text = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
                if not text:
                    raise AssertionError(f"session {s} turn {t}: no reply text")
                history.append({"role": "assistant", "content": text})

        started = time.perf_counter()
        await _gather(converse(s) for s in range(sessions))
        return time.perf_counter() - started


# -- OpenAI Agents SDK ------------------------------------------------------------------------


async def agents_sdk_throughput(
    base_url: str, model: str, sessions: int, turns: int, workdir: Path
) -> float:
    """Seconds for `sessions` concurrent Agents SDK conversations of `turns` turns each.

    Each turn is `Runner.run(agent, text, session=...)` on the conversation's `SQLiteSession`, so
    the SDK loads the session's history before the model call and appends the new items after
    it. All sessions share one SQLite file, as the SDK's docs show.
    """
    if sessions < 1 or turns < 1:
        raise ValueError("sessions and turns must be >= 1")
    # The SDK's own switch: its default trace exporter would POST to api.openai.com.
    set_tracing_disabled(True)
    db_path = _fresh_dir(workdir, "agents-sdk-") / "conversations.db"
    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY)
    agent: Agent[None] = Agent(
        name="Assistant",
        instructions=INSTRUCTIONS,
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
    )
    stores: list[SQLiteSession] = []
    try:
        # One session object per conversation, made before the clock starts (setup).
        for s in range(sessions):
            stores.append(SQLiteSession(f"session-{s}", db_path))

        async def converse(s: int, store: SQLiteSession) -> None:
            for t in range(turns):
                result = await Runner.run(agent, user_text(s, t), session=store)
                if not isinstance(result.final_output, str) or not result.final_output:
                    raise AssertionError(f"session {s} turn {t}: no reply text")

        started = time.perf_counter()
        await _gather(converse(s, store) for s, store in enumerate(stores))
        elapsed = time.perf_counter() - started

        # The history was really kept: a user item and an assistant message per turn, in order.
        items = await stores[-1].get_items()
        if len(items) != 2 * turns:
            raise AssertionError(f"Agents SDK session kept {len(items)} items, not {2 * turns}")
        last_user = items[-2]
        if not (isinstance(last_user, dict) and last_user.get("role") == "user"):
            raise AssertionError(f"Agents SDK session: unexpected item {last_user!r}")
        if last_user.get("content") != user_text(sessions - 1, turns - 1):
            raise AssertionError(f"Agents SDK session: wrong last user item {last_user!r}")
        return elapsed
    finally:
        for store in stores:
            store.close()
        await client.close()


# -- LangGraph --------------------------------------------------------------------------------


def _chat_graph(
    llm: ChatOpenAI, checkpointer: BaseCheckpointSaver[str]
) -> CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]:
    """The minimal chat graph of LangGraph's docs: START -> chat -> END on MessagesState."""

    async def chat(state: MessagesState) -> dict[str, list[AnyMessage]]:
        reply = await llm.ainvoke(state["messages"])
        return {"messages": [reply]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder.compile(checkpointer=checkpointer)


def _thread(s: int) -> RunnableConfig:
    return {"configurable": {"thread_id": f"thread-{s}"}}


async def _converse(
    graph: CompiledStateGraph[MessagesState, None, MessagesState, MessagesState],
    s: int,
    turns: int,
) -> None:
    config = _thread(s)
    for t in range(turns):
        await graph.ainvoke({"messages": [HumanMessage(user_text(s, t))]}, config)


async def _check_history(
    graph: CompiledStateGraph[MessagesState, None, MessagesState, MessagesState],
    s: int,
    turns: int,
) -> None:
    """One thread's final state holds every turn: a human and an AI message per turn."""
    snapshot = await graph.aget_state(_thread(s))
    messages = snapshot.values["messages"]
    if len(messages) != 2 * turns:
        raise AssertionError(f"LangGraph thread kept {len(messages)} messages, not {2 * turns}")
    if messages[-2].type != "human" or messages[-2].content != user_text(s, turns - 1):
        raise AssertionError(f"LangGraph thread: wrong last human message {messages[-2]!r}")
    if messages[-1].type != "ai" or not messages[-1].content:
        raise AssertionError(f"LangGraph thread: no reply at the end, {messages[-1]!r}")


def _chat_model(base_url: str, model: str, http_client: DefaultAsyncHttpxClient) -> ChatOpenAI:
    """`ChatOpenAI` as the docs show it, on an HTTP client of our own that the caller closes.

    Without `http_async_client`, langchain-openai takes its default client from a process-wide
    cache (keyed by base URL and timeout) that nothing ever closes: its pooled connections would
    outlive the event loop (ResourceWarnings) and could be reused on a later loop if a port is
    reused. `openai.DefaultAsyncHttpxClient` is what that default is built on (same pool limits);
    only langchain's TCP keepalive socket options, which matter nowhere on loopback, are left out.
    """
    # api_key as a plain string, as the docs show; the stubs only name SecretStr (pydantic coerces).
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=API_KEY,  # type: ignore[arg-type]
        http_async_client=http_client,
    )


async def langgraph_throughput(
    base_url: str,
    model: str,
    sessions: int,
    turns: int,
    workdir: Path,
    saver: Literal["sqlite", "memory"],
) -> float:
    """Seconds for `sessions` concurrent LangGraph threads of `turns` turns each.

    Each turn is `graph.ainvoke({"messages": [HumanMessage(text)]}, config)` on the thread's
    config; the checkpointer loads the thread's state, the `add_messages` reducer appends, and
    the new checkpoint is written. `saver` picks `AsyncSqliteSaver` (one file in a fresh
    directory under `workdir`) or `InMemorySaver`.
    """
    if sessions < 1 or turns < 1:
        raise ValueError("sessions and turns must be >= 1")
    if saver not in ("sqlite", "memory"):
        raise ValueError(f"saver must be 'sqlite' or 'memory', not {saver!r}")

    async def timed(checkpointer: BaseCheckpointSaver[str]) -> float:
        async with DefaultAsyncHttpxClient() as http_client:
            graph = _chat_graph(_chat_model(base_url, model, http_client), checkpointer)
            started = time.perf_counter()
            await _gather(_converse(graph, s, turns) for s in range(sessions))
            elapsed = time.perf_counter() - started
            await _check_history(graph, sessions - 1, turns)
            return elapsed

    if saver == "memory":
        return await timed(InMemorySaver())
    db_path = _fresh_dir(workdir, "langgraph-") / "checkpoints.db"
    async with AsyncSqliteSaver.from_conn_string(str(db_path)) as checkpointer:
        return await timed(checkpointer)


async def langgraph_storage_bytes(base_url: str, model: str, turns: int, workdir: Path) -> int:
    """Bytes on disk of an AsyncSqliteSaver database holding one thread of `turns` turns."""
    if turns < 1:
        raise ValueError("turns must be >= 1")
    db_path = _fresh_dir(workdir, "langgraph-storage-") / "checkpoints.db"
    async with (
        DefaultAsyncHttpxClient() as http_client,
        AsyncSqliteSaver.from_conn_string(str(db_path)) as checkpointer,
    ):
        graph = _chat_graph(_chat_model(base_url, model, http_client), checkpointer)
        await _converse(graph, 0, turns)
        await _check_history(graph, 0, turns)
        # Settle the size: the saver runs in WAL mode, so fold the WAL into the main file and
        # truncate it (PRAGMA wal_checkpoint(TRUNCATE)) while holding the saver's lock, then let
        # the context manager close the connection (the last close also removes -wal and -shm).
        async with checkpointer.lock:
            cursor = await checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = await cursor.fetchone()
            await cursor.close()
        if row is None or row[0] != 0:
            raise AssertionError(f"SQLite WAL checkpoint did not complete: {row!r}")
    # Whatever is left on disk counts: the database and any -wal / -shm beside it.
    files = [db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm", "-journal"))]
    return sum(f.stat().st_size for f in files if f.exists())
