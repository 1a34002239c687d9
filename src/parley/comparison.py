"""What `Client.compare` returns and keeps: one conversation sent to several models, side by side.

A comparison sends the same user turns to one session per model and repeat (a *run*); each run
keeps its own history, so turn 2 of every model answers its own turn 1. For each turn of each
run it records the reply and how it went (`ComparisonReply`); `summaries()` gives the totals per
model. Comparisons are values: frozen, JSON round-trippable (`to_dict` / `from_dict`), and kept in
the client's store beside the sessions they made.
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parley.errors import ConfigError
from parley.messages import Usage

__all__ = [
    "COMPARISON_TAG",
    "Comparison",
    "ComparisonPage",
    "ComparisonReply",
    "ComparisonRun",
    "ModelSummary",
    "new_comparison_id",
]

COMPARISON_TAG = "comparison"
"""The metadata key that tags a comparison's sessions with its id (also ``comparison.model`` and
``comparison.repeat``), so `list_sessions(metadata={"comparison": id})` finds them."""

_FORMAT = 1


def new_comparison_id() -> str:
    """12 random hex digits: short enough to type in `parley compare show`, and at 48 bits
    unlikely to repeat in one store (`compare` refuses an id that is taken)."""
    return secrets.token_hex(6)


@dataclass(frozen=True, kw_only=True, slots=True)
class ComparisonReply:
    """One turn of one run: the model's reply and how it went.

    Times are seconds measured from the send: `latency` until the reply was complete (or the
    turn failed), `first_token` until the first streamed text (None when none came).
    """

    text: str
    latency: float
    first_token: float | None = None
    usage: Usage = field(default_factory=Usage)
    """Tokens and cost of every model call of the turn (tool rounds included)."""
    error: str | None = None
    """Why the turn failed; `text` then holds what had streamed before it did."""
    error_type: str | None = None
    """The failure's class name, such as ``"ProviderTimeoutError"``."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "latency": self.latency,
            "first_token": self.first_token,
            "usage": _usage_to_dict(self.usage),
            "error": self.error,
            "error_type": self.error_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonReply:
        return cls(
            text=data["text"],
            latency=_finite(data["latency"]),
            first_token=_optional_float(data.get("first_token")),
            usage=_usage_from_dict(data.get("usage") or {}),
            error=data.get("error"),
            error_type=data.get("error_type"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ComparisonRun:
    """One model's pass over the turns, in a session of its own."""

    model: str
    repeat: int
    """0 for the first pass of this model; 1, 2... for the repeats."""
    session_id: str
    replies: tuple[ComparisonReply, ...] = ()
    """One per turn answered so far, in turn order."""

    @property
    def usage(self) -> Usage:
        return _sum_usage(reply.usage for reply in self.replies)

    @property
    def errors(self) -> int:
        return sum(1 for reply in self.replies if not reply.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "repeat": self.repeat,
            "session_id": self.session_id,
            "replies": [reply.to_dict() for reply in self.replies],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonRun:
        return cls(
            model=data["model"],
            repeat=int(data["repeat"]),
            session_id=data["session_id"],
            replies=tuple(ComparisonReply.from_dict(r) for r in data.get("replies", ())),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSummary:
    """One model's totals over its runs: what the side-by-side table's last rows show.

    Times are medians over the turns that succeeded (None when none did); tokens and cost are
    sums over every turn, failed ones included (a failed call may still have been billed).
    """

    model: str
    turns: int
    """Turns sent, over every repeat."""
    errors: int
    latency: float | None
    first_token: float | None
    usage: Usage

    @property
    def ok(self) -> int:
        return self.turns - self.errors


@dataclass(frozen=True, kw_only=True, slots=True)
class Comparison:
    """Several models given the same conversation, turn by turn.

    `runs` holds one `ComparisonRun` per model and repeat, models in the order given. While a
    comparison runs, or when its process stopped midway, `finished_at` is None and runs may
    have fewer replies than there are turns.
    """

    comparison_id: str
    created_at: datetime
    turns: tuple[str, ...]
    models: tuple[str, ...]
    runs: tuple[ComparisonRun, ...]
    repeats: int = 1
    system_message: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the whole comparison."""
        return _sum_usage(run.usage for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    def runs_of(self, model: str) -> tuple[ComparisonRun, ...]:
        """The runs of `model`, repeat 0 first (ConfigError for a model not compared)."""
        if model not in self.models:
            raise ConfigError(
                f"model {model!r} is not part of comparison {self.comparison_id!r}; "
                f"its models are {', '.join(self.models)}"
            )
        return tuple(sorted((r for r in self.runs if r.model == model), key=lambda r: r.repeat))

    def reply(self, turn: int, model: str, repeat: int = 0) -> ComparisonReply | None:
        """The reply of `model` (its `repeat`-th run) to turn `turn` (0-based), or None if that
        turn was never answered (the comparison stopped first)."""
        if not 0 <= turn < len(self.turns):
            raise ConfigError(f"turn must be between 0 and {len(self.turns) - 1}, not {turn}")
        runs = self.runs_of(model)
        if not 0 <= repeat < self.repeats:
            raise ConfigError(f"repeat must be between 0 and {self.repeats - 1}, not {repeat}")
        if repeat >= len(runs):  # stopped before its sessions were made
            return None
        replies = runs[repeat].replies
        return replies[turn] if turn < len(replies) else None

    def summary(self, model: str) -> ModelSummary:
        """The totals of one model over all its runs."""
        replies = [reply for run in self.runs_of(model) for reply in run.replies]
        good = [reply for reply in replies if reply.ok]
        firsts = [r.first_token for r in good if r.first_token is not None]
        return ModelSummary(
            model=model,
            turns=len(replies),
            errors=len(replies) - len(good),
            latency=statistics.median(r.latency for r in good) if good else None,
            first_token=statistics.median(firsts) if firsts else None,
            usage=_sum_usage(reply.usage for reply in replies),
        )

    def summaries(self) -> tuple[ModelSummary, ...]:
        """`summary` of every model, in the order the models were given."""
        return tuple(self.summary(model) for model in self.models)

    def to_html(self) -> str:
        """A self-contained HTML report (replies side by side, plots); opens offline."""
        from parley.compare.report import render_html

        return render_html(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; `from_dict` reads it back."""
        return {
            "format": _FORMAT,
            "comparison_id": self.comparison_id,
            "created_at": self.created_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "turns": list(self.turns),
            "models": list(self.models),
            "repeats": self.repeats,
            "system_message": self.system_message,
            "metadata": dict(self.metadata),
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """The inverse of `to_dict`; ValueError (with what is wrong) on other data."""
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown comparison format {data.get('format')!r}")
        try:
            finished = data.get("finished_at")
            return cls(
                comparison_id=data["comparison_id"],
                created_at=datetime.fromisoformat(data["created_at"]),
                finished_at=None if finished is None else datetime.fromisoformat(finished),
                turns=tuple(data["turns"]),
                models=tuple(data["models"]),
                repeats=int(data.get("repeats", 1)),
                system_message=data.get("system_message"),
                metadata=dict(data.get("metadata") or {}),
                runs=tuple(ComparisonRun.from_dict(run) for run in data["runs"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed comparison data: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class ComparisonPage:
    """One page of `list_comparisons`, newest first; pass `next_cursor` back for the next."""

    comparisons: tuple[Comparison, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[Comparison]:
        return iter(self.comparisons)

    def __len__(self) -> int:
        return len(self.comparisons)

    def __getitem__(self, index: int) -> Comparison:
        return self.comparisons[index]


def _sum_usage(usages: Iterator[Usage] | Sequence[Usage]) -> Usage:
    total = Usage(cost=None)
    for usage in usages:
        total = total + usage
    return total


def _usage_to_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost": usage.cost,
    }


def _usage_from_dict(data: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(data.get("input_tokens", 0)),
        output_tokens=int(data.get("output_tokens", 0)),
        cached_tokens=int(data.get("cached_tokens", 0)),
        cost=_optional_float(data.get("cost")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else _finite(value)


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a time or cost must be a finite number, not {value!r}")
    return number
