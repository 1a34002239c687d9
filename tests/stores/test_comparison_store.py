"""The comparisons part of the store contract, run against every store kind."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parley.comparison import Comparison, ComparisonReply, ComparisonRun
from parley.errors import ComparisonNotFoundError, StoreError
from parley.messages import Usage
from parley.stores import SQLiteStore, Store
from parley.stores.base import ComparisonStore

BASE = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def make(comparison_id: str, minutes: int = 0, replies: int = 1) -> Comparison:
    reply = ComparisonReply(
        text="héllo <b>", latency=1.25, first_token=0.2, usage=Usage(input_tokens=3, cost=None)
    )
    failed = ComparisonReply(
        text="", latency=0.5, error="503 from the provider", error_type="ProviderUnavailableError"
    )
    return Comparison(
        comparison_id=comparison_id,
        created_at=BASE + timedelta(minutes=minutes),
        turns=("one", "two"),
        models=("echo:a", "echo:b"),
        runs=(
            ComparisonRun(model="echo:a", repeat=0, session_id="s-a", replies=(reply,) * replies),
            ComparisonRun(model="echo:b", repeat=0, session_id="s-b", replies=(failed,)),
        ),
        system_message="Be brief.",
        metadata={"owner": "u-7"},
    )


def comparisons(store: Store) -> ComparisonStore:
    assert isinstance(store, ComparisonStore)
    return store


async def test_saved_comparisons_read_back_equal_and_a_save_replaces(store: Store) -> None:
    kept = comparisons(store)
    started = make("c-1")
    await kept.save_comparison(started)
    assert await kept.get_comparison("c-1") == started
    finished = dataclasses.replace(
        started, runs=make("c-1", replies=2).runs, finished_at=BASE + timedelta(minutes=3)
    )
    await kept.save_comparison(finished)
    again = await kept.get_comparison("c-1")
    assert again == finished
    assert again.finished
    assert len(again.runs[0].replies) == 2
    assert len(await kept.list_comparisons(10, None)) == 1


async def test_comparisons_are_listed_newest_first_in_pages(store: Store) -> None:
    kept = comparisons(store)
    for n in range(7):
        await kept.save_comparison(make(f"c-{n}", minutes=n))
    await kept.save_comparison(make("c-tie", minutes=6))  # same time as c-6: ids break ties
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await kept.list_comparisons(3, cursor)
        assert len(page) <= 3
        seen += [c.comparison_id for c in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["c-tie", "c-6", "c-5", "c-4", "c-3", "c-2", "c-1", "c-0"]


async def test_unknown_comparisons_raise_a_typed_error(store: Store) -> None:
    kept = comparisons(store)
    with pytest.raises(ComparisonNotFoundError, match="compare list"):
        await kept.get_comparison("nope")
    with pytest.raises(ComparisonNotFoundError):
        await kept.delete_comparison("nope")
    await kept.save_comparison(make("c-1"))
    await kept.delete_comparison("c-1")
    with pytest.raises(KeyError):  # a ComparisonNotFoundError is a KeyError too
        await kept.get_comparison("c-1")
    assert len(await kept.list_comparisons(10, None)) == 0


async def test_an_unreadable_stored_comparison_is_a_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    await store.open()
    try:
        await store.save_comparison(make("c-1"))
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("UPDATE comparisons SET data = '{\"format\": 42}'")
    await store.open()
    try:
        with pytest.raises(StoreError, match=r"'c-1'.*cannot read"):
            await store.get_comparison("c-1")
    finally:
        await store.close()
