"""The Store protocol: where sessions and their histories live.

A store keeps session metadata and an append-only message history per session. A turn appends
only its new messages (`append_messages`); nothing ever rewrites a history. Message counts,
usage totals and `updated_at` are kept on the session row by the same write, so listing never
has to read a history.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from parley.comparison import Comparison, ComparisonPage
from parley.config import ProviderConfig
from parley.errors import ConfigError, StoreError
from parley.events import SessionEvent
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, Usage

__all__ = [
    "MAX_PAGE_SIZE",
    "ComparisonStore",
    "Lease",
    "SessionQuery",
    "SharedStore",
    "Store",
    "check_page",
    "comparison_exists",
    "comparison_from_json",
    "comparison_to_json",
    "decode_cursor",
    "encode_cursor",
    "from_micros",
    "session_filter",
    "settings_from_json",
    "settings_to_json",
    "to_micros",
    "total_usage",
]

MAX_PAGE_SIZE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The range of datetime itself, well inside SQLite's and PostgreSQL's 64-bit integers.
_MIN_MICROS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch: how stores keep timestamps, exact and sortable."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)  # positional: twice as fast, and as exact


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionQuery:
    """A page request for `list_sessions`: newest first, filtered, resumed from `cursor`."""

    limit: int = 50
    cursor: str | None = None
    model: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Only sessions whose metadata has every one of these key/value pairs."""
    tag: str | None = None
    """Only sessions whose metadata has this key, whatever its value."""

    def __post_init__(self) -> None:
        check_page(self.limit, self.cursor)

    @property
    def after(self) -> tuple[int, str] | None:
        return decode_cursor(self.cursor) if self.cursor is not None else None


def check_page(limit: object, cursor: str | None) -> None:
    """ConfigError for a page size out of range or a cursor no page gave: at the call, not
    deep in a store (sessions and comparisons page alike)."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ConfigError(f"limit must be an int, not {limit!r}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ConfigError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
    if cursor is not None:
        decode_cursor(cursor)


def total_usage(messages: Sequence[Message]) -> Usage:
    """What a batch of messages adds to a session's totals (cost None until a price is known)."""
    usage = Usage(cost=None)
    for message in messages:
        if message.usage is not None:
            usage = usage + message.usage
    return usage


def session_filter(query: SessionQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its parameters for `query`, for SQL stores whose
    placeholder is `mark` ("?" for SQLite, "%s" for psycopg). The table is aliased `s`."""
    where: list[str] = []
    params: list[Any] = []
    tagged = "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = s.session_id AND t.key = "
    if query.model is not None:
        where.append(f"model = {mark}")
        params.append(query.model)
    if query.tag is not None:
        where.append(f"{tagged}{mark})")
        params.append(query.tag)
    for key, value in query.metadata.items():
        where.append(f"{tagged}{mark} AND t.value = {mark})")
        params.extend((key, value))
    if query.after is not None:
        where.append(f"(updated_at, session_id) < ({mark}, {mark})")
        params.extend(query.after)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def settings_to_json(info: SessionInfo) -> str:
    """A session's settings as stored beside it (a provider without its key)."""
    settings: dict[str, Any] = {"on_busy": info.on_busy}
    if info.provider is not None:
        settings["provider"] = info.provider.public()
    return json.dumps(settings, separators=(",", ":"))


def settings_from_json(text: str) -> dict[str, Any]:
    """`SessionInfo` keyword arguments from `settings_to_json`'s output."""
    data = json.loads(text or "{}")
    provider = data.get("provider")
    return {
        "on_busy": data.get("on_busy", "enqueue"),
        "provider": ProviderConfig.from_public(provider) if provider else None,
    }


def comparison_to_json(comparison: Comparison) -> str:
    """A comparison as the stores keep it: one JSON document."""
    return json.dumps(comparison.to_dict(), separators=(",", ":"))


def comparison_exists(comparison_id: str) -> ConfigError:
    """What `save_comparison(..., new=True)` raises for a taken id."""
    return ConfigError(
        f"a comparison with id {comparison_id!r} already exists; choose another id, or "
        "delete_comparison() it first"
    )


def comparison_from_json(comparison_id: str, text: str) -> Comparison:
    """The inverse of `comparison_to_json`; StoreError naming the comparison if it is unreadable."""
    try:
        return Comparison.from_dict(json.loads(text))
    except ValueError as exc:
        raise StoreError(
            f"comparison {comparison_id!r} is stored in a form this parley cannot read ({exc}); "
            "a newer parley may have written it"
        ) from exc


def encode_cursor(updated_at: datetime, session_id: str) -> str:
    """An opaque cursor for the position just after (updated_at, session_id)."""
    raw = json.dumps([to_micros(updated_at), session_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, session_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(micros, bool) or not isinstance(micros, int):
            raise TypeError
        if not isinstance(session_id, str) or not _MIN_MICROS <= micros <= _MAX_MICROS:
            raise ValueError
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"malformed cursor {cursor!r}; pass back the next_cursor of a previous page, "
            "or None for the first page"
        ) from exc
    return micros, session_id


@runtime_checkable
class Store(Protocol):
    """Persistence for sessions. Implementations: memory, SQLite, PostgreSQL.

    Every method may raise `StoreError` when the backend fails; those that take a session id
    raise `SessionNotFoundError` for an id the store does not have.
    """

    async def open(self) -> None:
        """Connect and migrate the schema; calling it again is harmless."""
        ...

    async def close(self) -> None: ...

    async def create_session(self, info: SessionInfo) -> None:
        """Add a session (no messages yet); SessionExistsError if the id is taken."""
        ...

    async def get_session(self, session_id: str) -> SessionInfo: ...

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """Metadata only, newest `updated_at` first (ties by id, descending)."""
        ...

    async def update_session(
        self,
        session_id: str,
        *,
        model: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Change the given fields (metadata is replaced whole) and touch `updated_at`."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Remove the session and its whole history."""
        ...

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        """Append to the history in one atomic write, updating counts, usage and updated_at."""
        ...

    async def read_messages(self, session_id: str) -> list[Message]:
        """The whole history, oldest first."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """A session held for one turn, and how it stood when it was taken."""

    session_id: str
    token: int
    """The fencing token this hold was given; writes under an older one are refused."""
    created_at: datetime
    """When the session was created: a session deleted and created again under the same id
    (by another process) is another conversation, which a worker must load afresh."""
    message_count: int
    """The stored history's length: a worker whose copy differs reloads it."""
    model: str
    title: str | None
    system_message: str | None


@runtime_checkable
class SharedStore(Store, Protocol):
    """A store that several processes use at once (PostgreSQL).

    Local stores (memory, SQLite) serve one client, whose own turn queue keeps each session's
    turns apart. A shared store adds the queue across processes, and events across them.
    """

    async def acquire(self, session_id: str, *, wait: bool) -> Lease | None:
        """Hold the session for one turn (waiting while another process holds it, or None at
        once when `wait` is False); writes by a process that lost its hold are refused."""
        ...

    async def release(self, lease: Lease) -> None:
        """Let other processes run turns of the session again (after this process's events
        so far have gone out, so that they see the turns in order)."""
        ...

    def publish_event(self, event: SessionEvent) -> None:
        """Tell the other processes about an event of a session this one serves."""
        ...

    def on_remote_event(self, deliver: Callable[[SessionEvent], None] | None) -> None:
        """Call `deliver(event)` with each event the other processes publish."""
        ...


@runtime_checkable
class ComparisonStore(Store, Protocol):
    """A store that also keeps comparisons (`Client.compare`); every built-in store does.

    A comparison is inserted when it starts (`new=True`: that claims its id), then saved again
    as its turns end and when it ends (each save replaces the last), so one whose process
    stopped midway is still listed.
    """

    async def save_comparison(self, comparison: Comparison, *, new: bool = False) -> None:
        """Insert, or replace the comparison with the same id; with `new`, ConfigError when
        the id is taken (atomically: of two processes claiming one id, one wins)."""
        ...

    async def get_comparison(self, comparison_id: str) -> Comparison:
        """ComparisonNotFoundError for an id the store does not have."""
        ...

    async def list_comparisons(self, limit: int, cursor: str | None) -> ComparisonPage:
        """Newest `created_at` first (ties by id, descending); `cursor` from `encode_cursor`."""
        ...

    async def delete_comparison(self, comparison_id: str) -> None:
        """Remove the comparison (not its sessions); ComparisonNotFoundError if none."""
        ...
