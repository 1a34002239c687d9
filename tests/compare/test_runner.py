"""`Client.compare` end to end: official SDKs over real HTTP to FakeLLMServers, real stores."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley import (
    Client,
    ClientConfig,
    Comparison,
    ComparisonNotFoundError,
    ConfigError,
    RetryPolicy,
    StoreError,
    UnknownModelError,
)
from parley.config import ProviderConfig
from parley.models.base import ModelRequest, StreamEvent, StreamFinish, StreamTextDelta, StreamUsage
from parley.models.pricing import price
from parley.stores import MemoryStore
from parley.testing import FakeLLMServer, FakeReply, Fault

TURNS = ["Plan a trip to Lisbon", "Which day is best for the museums?", "Summarise the plan"]
SLOW_FIRST_TOKEN = 0.3
SLOW_RATE = 40.0  # tokens per second after the first


@pytest.fixture
async def fast() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(models=("gpt-4o",)) as server:
        yield server


@pytest.fixture
async def slow() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(
        time_to_first_token=SLOW_FIRST_TOKEN,
        tokens_per_second=SLOW_RATE,
        models=("claude-sonnet-4-6",),
    ) as server:
        yield server


@pytest.fixture
async def flaky() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(models=("local-model",)) as server:
        yield server


def three_providers(
    fast: FakeLLMServer, slow: FakeLLMServer, flaky: FakeLLMServer
) -> dict[str, ProviderConfig]:
    return {
        "openai": ProviderConfig(type="openai", base_url=fast.openai_base_url, api_key="sk-t"),
        "anthropic": ProviderConfig(
            type="anthropic", base_url=slow.anthropic_base_url, api_key="sk-t"
        ),
        "local": ProviderConfig(type="openai", base_url=flaky.openai_base_url, api_key="sk-t"),
    }


def client_with(providers: dict[str, ProviderConfig], store: str = "memory://") -> Client:
    config = ClientConfig(
        providers=providers, retry=RetryPolicy(max_attempts=1), config_files=False
    )
    return Client(store=store, config=config)


MODELS = ["openai:gpt-4o", "anthropic:claude-sonnet-4-6", "local:local-model"]


async def test_three_models_side_by_side_match_what_the_servers_did(
    fast: FakeLLMServer, slow: FakeLLMServer, flaky: FakeLLMServer, sqlite_url: str
) -> None:
    fast_replies = [
        FakeReply(text=f"Fast answer {n}.", input_tokens=100 * n, output_tokens=10 * n)
        for n in (1, 2, 3)
    ]
    fast.script(*fast_replies)
    slow_text = "A slower and longer answer in eight words."
    slow.script(*[FakeReply(text=slow_text, input_tokens=50, output_tokens=8)] * 3)
    flaky.script(FakeReply(text="Local one."), Fault.server_error(503), FakeReply(text="Back."))
    seen: list[tuple[str, int]] = []

    async with client_with(three_providers(fast, slow, flaky), sqlite_url) as client:
        comparison = await client.compare(
            TURNS,
            models=MODELS,
            system_message="Be brief.",
            on_reply=lambda run, reply: seen.append((run.model, len(run.replies))),
        )
        sessions = await client.list_sessions(metadata={"comparison": comparison.comparison_id})
        stored = await client.get_comparison(comparison.comparison_id)

    assert comparison.finished
    assert comparison.models == tuple(MODELS)
    assert [run.model for run in comparison.runs] == MODELS
    assert all(len(run.replies) == len(TURNS) for run in comparison.runs)
    assert sorted(seen) == sorted((m, n) for m in MODELS for n in (1, 2, 3))
    assert stored == comparison  # kept whole in the store

    # The fast model: exactly the scripted texts, tokens, and the vendor's price for them.
    for n, scripted in enumerate(fast_replies):
        reply = comparison.reply(n, "openai:gpt-4o")
        assert reply is not None
        assert reply.ok
        assert reply.text == scripted.text
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (
            100 * (n + 1),
            10 * (n + 1),
        )
        expected = price("openai", "gpt-4o", input_tokens=100 * (n + 1), output_tokens=10 * (n + 1))
        assert expected is not None
        assert expected > 0
        assert reply.usage.cost == pytest.approx(expected)

    # The slow model: no first token before the server's delay, no end before its last token.
    for n in range(len(TURNS)):
        reply = comparison.reply(n, "anthropic:claude-sonnet-4-6")
        quick = comparison.reply(n, "openai:gpt-4o")
        assert reply is not None
        assert quick is not None
        assert reply.first_token is not None
        assert reply.text == slow_text
        assert reply.first_token >= SLOW_FIRST_TOKEN
        assert reply.latency >= SLOW_FIRST_TOKEN + (len(slow_text.split()) - 1) / SLOW_RATE
        assert quick.first_token is not None
        assert quick.first_token < reply.first_token
        assert reply.first_token <= reply.latency
        assert reply.usage.output_tokens == 8

    # The flaky model: its failed turn is an error in its column, and it went on afterwards.
    failed = comparison.reply(1, "local:local-model")
    assert failed is not None
    assert not failed.ok
    assert failed.error_type == "ProviderUnavailableError"
    assert "503" in (failed.error or "")
    after = comparison.reply(2, "local:local-model")
    assert after is not None
    assert after.ok
    assert after.text == "Back."
    assert comparison.reply(0, "local:local-model").text == "Local one."  # type: ignore[union-attr]
    assert comparison.reply(0, "local:local-model").usage.cost is None  # type: ignore[union-attr]

    # Totals per model.
    summaries = {s.model: s for s in comparison.summaries()}
    assert summaries["local:local-model"].errors == 1
    assert summaries["local:local-model"].ok == 2
    assert summaries["openai:gpt-4o"].usage.input_tokens == 600
    assert summaries["openai:gpt-4o"].usage.output_tokens == 60
    assert summaries["anthropic:claude-sonnet-4-6"].latency is not None
    assert summaries["openai:gpt-4o"].latency is not None
    assert summaries["openai:gpt-4o"].latency < summaries["anthropic:claude-sonnet-4-6"].latency
    assert comparison.errors == 1

    # What each server saw: three requests, each with the system message and its own history.
    for server in (fast, slow, flaky):
        assert len(server.requests) == 3
        assert all(r.status in (200, 503) for r in server.requests)
    last_slow = slow.requests[2].body
    assert last_slow["system"] == "Be brief."
    said = [m for m in last_slow["messages"] if m["role"] == "assistant"]
    assert len(said) == 2  # its own two earlier replies, nobody else's
    assert "Fast answer" not in str(last_slow["messages"])
    last_fast = fast.requests[2].body["messages"]
    assert [m["content"] for m in last_fast if m["role"] == "assistant"] == [
        "Fast answer 1.",
        "Fast answer 2.",
    ]

    # Ordinary sessions, tagged with the comparison, one per model.
    assert sorted(info.metadata["comparison.model"] for info in sessions) == sorted(MODELS)
    assert {info.session_id for info in sessions} == {run.session_id for run in comparison.runs}
    assert all(info.system_message == "Be brief." for info in sessions)


async def test_a_model_that_stops_answering_times_out_and_the_others_finish(
    fast: FakeLLMServer, flaky: FakeLLMServer
) -> None:
    flaky.script(Fault.hang(), FakeReply(text="Answered the second."))
    providers = {
        "openai": ProviderConfig(type="openai", base_url=fast.openai_base_url, api_key="sk-t"),
        "local": ProviderConfig(type="openai", base_url=flaky.openai_base_url, api_key="sk-t"),
    }
    async with client_with(providers) as client:
        comparison = await client.compare(
            TURNS[:2], models=["openai:gpt-4o", "local:local-model"], timeout=0.5
        )
        history = await (await client.resume_session(comparison.runs[1].session_id)).messages()
    hung = comparison.reply(0, "local:local-model")
    assert hung is not None
    assert hung.error_type == "TurnTimeoutError"
    assert hung.latency >= 0.5
    second = comparison.reply(1, "local:local-model")
    assert second is not None
    assert second.text == "Answered the second."
    assert all(reply.ok for reply in comparison.runs[0].replies)
    # the timed-out turn is in the history as interrupted, and the next turn followed it
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1].interrupted


class GateModel:
    """A model adapter that records how many of its calls were in flight at once; with
    `wait_for`, each call waits until that many are (so sequential runs would never finish)."""

    def __init__(self, wait_for: int | None = None) -> None:
        self.wait_for = wait_for
        self.in_flight = 0
        self.most = 0
        self._all_in = asyncio.Event()
        self.called = asyncio.Event()

    @property
    def provider(self) -> str:
        return "gate"

    @property
    def offline(self) -> bool:
        return True

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.in_flight += 1
        self.called.set()
        self.most = max(self.most, self.in_flight)
        try:
            if self.wait_for is not None:
                if self.in_flight >= self.wait_for:
                    self._all_in.set()
                async with asyncio.timeout(5):
                    await self._all_in.wait()
            await asyncio.sleep(0.01)
            yield StreamTextDelta(text=f"{request.model} says hi")
            yield StreamUsage(input_tokens=1, output_tokens=3, cost=0.0)
            yield StreamFinish()
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None


async def test_every_model_runs_at_once_unless_limited() -> None:
    gate = GateModel(wait_for=3)
    config = ClientConfig(providers={"gate": gate}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        comparison = await client.compare(["hi"], models=["gate:a", "gate:b", "gate:c"])
    assert gate.most == 3
    assert [r.replies[0].text for r in comparison.runs] == [
        "a says hi",
        "b says hi",
        "c says hi",
    ]

    limited = GateModel()
    config = ClientConfig(providers={"gate": limited}, config_files=False)
    async with Client(store="memory://", config=config) as client:
        comparison = await client.compare(
            ["hi", "again"], models=["gate:a", "gate:b"], repeats=2, max_concurrency=1
        )
    assert limited.most == 1
    assert len(comparison.runs) == 4
    assert [(r.model, r.repeat) for r in comparison.runs] == [
        ("gate:a", 0),
        ("gate:a", 1),
        ("gate:b", 0),
        ("gate:b", 1),
    ]
    assert all(len(r.replies) == 2 and r.errors == 0 for r in comparison.runs)
    assert len({r.session_id for r in comparison.runs}) == 4
    summary = comparison.summary("gate:b")
    assert (summary.turns, summary.usage.output_tokens) == (4, 12)


async def test_repeats_keep_separate_histories_on_the_offline_model(client: Client) -> None:
    comparison = await client.compare(
        ["My name is Ada", "What is my name?"], models=["echo:alpha", "echo:beta"], repeats=2
    )
    for run in comparison.runs:
        assert run.replies[1].text.count("My name is Ada") == 1  # its own first turn, once
        history = await (await client.resume_session(run.session_id)).messages()
        assert len(history) == 4
        info = await client.get_session(run.session_id)
        assert info.metadata["comparison"] == comparison.comparison_id
        assert info.metadata["comparison.repeat"] == str(run.repeat)


async def test_bad_arguments_fail_before_anything_is_created(client: Client) -> None:
    bad: list[tuple[dict[str, object], str]] = [
        ({"turns": [], "models": ["echo"]}, "turns is empty"),
        ({"turns": "one string", "models": ["echo"]}, "turns must be a list of strings"),
        ({"turns": ["ok", "  "], "models": ["echo"]}, "each of turns must be a non-empty"),
        ({"turns": ["ok"], "models": []}, "models is empty"),
        ({"turns": ["ok"], "models": ["echo:a", "echo:a"]}, "more than once; use repeats="),
        ({"turns": ["ok"], "models": ["echo"], "repeats": 0}, "repeats must be a positive"),
        ({"turns": ["ok"], "models": ["echo"], "timeout": 0}, "timeout must be > 0"),
        ({"turns": ["ok"], "models": ["echo"], "max_concurrency": 0}, "max_concurrency must"),
        ({"turns": ["ok"], "models": ["echo"], "comparison_id": "a/b"}, "path separator"),
        ({"turns": ["ok"], "models": ["echo"], "metadata": {"comparison": "x"}}, "reserved"),
        ({"turns": ["x" * 1_000_001], "models": ["echo"]}, "over the client's max_prompt"),
    ]
    for kwargs, message in bad:
        turns = kwargs.pop("turns")
        with pytest.raises(ConfigError, match=re.escape(message)):
            await client.compare(turns, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UnknownModelError, match="nowhere"):
        await client.compare(["hi"], models=["echo:alpha", "nowhere:model"])
    assert len(await client.list_sessions()) == 0  # the echo session made first was removed
    assert len(await client.list_comparisons()) == 0


async def test_of_two_comparisons_claiming_one_id_one_runs(client: Client) -> None:
    first, second = await asyncio.gather(
        client.compare(["hi"], models=["echo:a"], comparison_id="same"),
        client.compare(["hi"], models=["echo:b"], comparison_id="same"),
        return_exceptions=True,
    )
    won = [r for r in (first, second) if isinstance(r, Comparison)]
    lost = [r for r in (first, second) if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], ConfigError)
    assert "already exists" in str(lost[0])
    tagged = await client.list_sessions(metadata={"comparison": "same"})
    assert [s.session_id for s in tagged] == [won[0].runs[0].session_id]  # none left behind
    assert await client.get_comparison("same") == won[0]


async def test_a_stream_cut_midway_keeps_its_partial_text(flaky: FakeLLMServer) -> None:
    flaky.script(Fault.drop_mid_stream(after_tokens=3))
    providers = {
        "local": ProviderConfig(type="openai", base_url=flaky.openai_base_url, api_key="sk-t")
    }
    async with client_with(providers) as client:
        comparison = await client.compare(["Tell me a story"], models=["local:local-model"])
        history = await (await client.resume_session(comparison.runs[0].session_id)).messages()
    reply = comparison.reply(0, "local:local-model")
    assert reply is not None
    assert not reply.ok
    assert reply.first_token is not None
    assert reply.text  # the three words that arrived
    assert reply.text == history[-1].text  # as stored, marked interrupted
    assert len(reply.text.split()) == 3
    assert history[-1].interrupted


class SavesFail(MemoryStore):
    """A memory store whose comparison saves fail from the `after`-th on (a disk gone full)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.saves = 0

    async def save_comparison(self, comparison: Comparison, *, new: bool = False) -> None:
        self.saves += 1
        if self.saves >= self.after:
            raise StoreError("the disk is full")
        await super().save_comparison(comparison, new=new)


async def test_a_result_that_cannot_be_saved_is_an_error_and_the_sessions_keep_it() -> None:
    store = SavesFail(after=3)  # the id is claimed, the runs recorded, then saves fail
    async with Client(store=store, config=ClientConfig(config_files=False)) as client:
        with pytest.raises(StoreError, match="ran, but its result could not be saved"):
            await client.compare(["hi", "again"], models=["echo:a", "echo:b"])
        tagged = await client.list_sessions(tag="comparison")
        assert [s.message_count for s in tagged] == [4, 4]  # every reply is in its session

    store = SavesFail(after=2)  # the runs cannot be recorded: nothing is left behind
    async with Client(store=store, config=ClientConfig(config_files=False)) as client:
        with pytest.raises(StoreError, match="the disk is full"):
            await client.compare(["hi"], models=["echo:a", "echo:b"])
        assert len(await client.list_sessions()) == 0
        assert len(await client.list_comparisons()) == 0


async def test_an_id_is_chosen_once_listed_newest_first_and_deleted(client: Client) -> None:
    first = await client.compare(["hi"], models=["echo"], comparison_id="prompt-v1")
    with pytest.raises(ConfigError, match="already exists"):
        await client.compare(["hi"], models=["echo"], comparison_id="prompt-v1")
    second = await client.compare(["hi"], models=["echo"], metadata={"owner": "u-1"})
    page = await client.list_comparisons(limit=1)
    assert [c.comparison_id for c in page] == [second.comparison_id]
    assert page.next_cursor is not None
    rest = await client.list_comparisons(limit=1, cursor=page.next_cursor)
    assert [c.comparison_id for c in rest] == ["prompt-v1"]
    assert rest.next_cursor is None
    assert second.metadata == {"owner": "u-1"}
    sessions = await client.list_sessions(metadata={"owner": "u-1"})
    assert [s.session_id for s in sessions] == [second.runs[0].session_id]

    await client.delete_comparison(first.comparison_id)
    with pytest.raises(ComparisonNotFoundError, match="prompt-v1"):
        await client.get_comparison("prompt-v1")
    assert len(await client.list_sessions(metadata={"comparison": "prompt-v1"})) == 0
    await client.delete_comparison(second.comparison_id, sessions=False)
    assert len(await client.list_sessions(metadata={"owner": "u-1"})) == 1
    with pytest.raises(ConfigError, match="limit"):
        await client.list_comparisons(limit=0)


async def test_a_comparison_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ab.db'}"
    async with Client(store=url, config=ClientConfig(config_files=False)) as client:
        made = await client.compare(["hi", "again"], models=["echo:alpha", "echo:beta"])
    async with Client(store=url, config=ClientConfig(config_files=False)) as client:
        again = await client.get_comparison(made.comparison_id)
        listed = await client.list_comparisons()
    assert again == made
    assert [c.comparison_id for c in listed] == [made.comparison_id]


async def test_a_cancelled_comparison_keeps_what_was_answered(tmp_path: Path) -> None:
    gate = GateModel(wait_for=99)  # every call waits: nothing finishes until cancelled
    config = ClientConfig(providers={"gate": gate}, config_files=False)
    url = f"sqlite:///{tmp_path / 'ab.db'}"
    async with Client(store=url, config=config) as client:
        echo_answered = asyncio.Event()
        task = asyncio.create_task(
            client.compare(
                ["hi"],
                models=["echo", "gate:slow"],
                comparison_id="cut",
                on_reply=lambda run, reply: echo_answered.set(),
            )
        )
        await echo_answered.wait()
        await gate.called.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        kept = await client.get_comparison("cut")
    assert not kept.finished
    echo_reply = kept.reply(0, "echo")
    assert echo_reply is not None
    assert echo_reply.ok
    assert kept.reply(0, "gate:slow") is None
    assert "incomplete" in kept.to_html()


class SessionsOnly:
    """A store of one's own that keeps sessions but not comparisons."""

    def __init__(self) -> None:
        self._inner = MemoryStore()
        self.open = self._inner.open
        self.close = self._inner.close
        self.create_session = self._inner.create_session
        self.get_session = self._inner.get_session
        self.list_sessions = self._inner.list_sessions
        self.update_session = self._inner.update_session
        self.delete_session = self._inner.delete_session
        self.append_messages = self._inner.append_messages
        self.read_messages = self._inner.read_messages


async def test_a_store_without_comparisons_is_told_so() -> None:
    async with Client(store=SessionsOnly(), config=ClientConfig(config_files=False)) as client:
        with pytest.raises(ConfigError, match="does not keep comparisons"):
            await client.compare(["hi"], models=["echo"])
        with pytest.raises(ConfigError, match="does not keep comparisons"):
            await client.list_comparisons()
        assert len(await client.list_sessions()) == 0
