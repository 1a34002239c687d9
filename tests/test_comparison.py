"""The comparison values: totals per model, lookups, and their JSON form."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from parley import Comparison, ComparisonReply, ComparisonRun, ConfigError, Usage


def reply(
    latency: float, *, first: float | None = 0.1, cost: float | None = 0.01, **kw: str
) -> ComparisonReply:
    return ComparisonReply(
        text=f"took {latency}",
        latency=latency,
        first_token=first,
        usage=Usage(input_tokens=10, output_tokens=5, cost=cost),
        **kw,
    )


FAILED = ComparisonReply(
    text="partial",
    latency=9.0,
    usage=Usage(cost=None),
    error="timed out",
    error_type="TurnTimeoutError",
)

COMPARISON = Comparison(
    comparison_id="c-1",
    created_at=datetime(2026, 5, 1, tzinfo=UTC),
    turns=("one", "two"),
    models=("a", "b"),
    repeats=2,
    runs=(
        ComparisonRun(model="a", repeat=0, session_id="s1", replies=(reply(1.0), reply(3.0))),
        ComparisonRun(model="a", repeat=1, session_id="s2", replies=(reply(2.0), FAILED)),
        ComparisonRun(model="b", repeat=0, session_id="s3", replies=(reply(0.5, cost=None),)),
        ComparisonRun(model="b", repeat=1, session_id="s4", replies=(reply(0.7, first=None),)),
    ),
)


def test_a_models_summary_takes_medians_of_answered_turns_and_sums_every_turn() -> None:
    a = COMPARISON.summary("a")
    assert (a.turns, a.errors, a.ok) == (4, 1, 3)
    assert a.latency == 2.0  # median of 1, 3, 2: the failed turn's 9 s is left out
    assert a.first_token == pytest.approx(0.1)
    assert a.usage.input_tokens == 30  # the failed turn had no usage
    assert a.usage.cost == pytest.approx(0.03)
    b = COMPARISON.summary("b")
    assert b.latency == pytest.approx(0.6)
    assert b.first_token == pytest.approx(0.1)  # only the run that streamed text counts
    assert b.usage.cost == pytest.approx(0.01)  # an unknown price adds nothing
    assert [s.model for s in COMPARISON.summaries()] == ["a", "b"]
    assert COMPARISON.errors == 1
    assert COMPARISON.usage.input_tokens == 50


def test_lookups_say_what_is_wrong() -> None:
    assert COMPARISON.reply(1, "a", repeat=1) is FAILED
    assert COMPARISON.reply(1, "b") is None  # never answered
    assert [run.session_id for run in COMPARISON.runs_of("b")] == ["s3", "s4"]
    with pytest.raises(ConfigError, match="'c' is not part of comparison 'c-1'"):
        COMPARISON.runs_of("c")
    with pytest.raises(ConfigError, match="turn must be between 0 and 1"):
        COMPARISON.reply(2, "a")
    with pytest.raises(ConfigError, match="repeat must be between 0 and 1"):
        COMPARISON.reply(0, "a", repeat=2)
    assert not COMPARISON.finished
    unstarted = dataclasses.replace(COMPARISON, runs=())  # stopped before its sessions
    assert unstarted.reply(0, "a", repeat=1) is None
    assert "not answered" in unstarted.to_html()


def test_the_json_form_reads_back_equal_and_refuses_other_data() -> None:
    assert Comparison.from_dict(COMPARISON.to_dict()) == COMPARISON
    with pytest.raises(ValueError, match="unknown comparison format"):
        Comparison.from_dict({"format": 2})
    data = COMPARISON.to_dict()
    del data["turns"]
    with pytest.raises(ValueError, match="malformed comparison data"):
        Comparison.from_dict(data)
