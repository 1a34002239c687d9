"""`memory://`: sessions held in this process only, gone when it exits."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from parley.comparison import Comparison, ComparisonPage
from parley.errors import ComparisonNotFoundError, SessionExistsError, SessionNotFoundError
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, utcnow
from parley.stores.base import (
    SessionQuery,
    comparison_exists,
    decode_cursor,
    encode_cursor,
    to_micros,
    total_usage,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """A dict of sessions; for tests, notebooks and throwaway runs."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionInfo] = {}
        self._messages: dict[str, list[Message]] = {}
        self._comparisons: dict[str, Comparison] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _get(self, session_id: str) -> SessionInfo:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFoundError(session_id) from None

    async def create_session(self, info: SessionInfo) -> None:
        if info.session_id in self._sessions:
            raise SessionExistsError(info.session_id)
        self._sessions[info.session_id] = dataclasses.replace(
            info, metadata=dict(info.metadata), busy=False
        )
        self._messages[info.session_id] = []

    async def get_session(self, session_id: str) -> SessionInfo:
        return _copy(self._get(session_id))

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        after = query.after
        matches = []
        for info in self._sessions.values():
            if query.model is not None and info.model != query.model:
                continue
            if query.tag is not None and query.tag not in info.metadata:
                continue
            if any(info.metadata.get(k) != v for k, v in query.metadata.items()):
                continue
            key = (to_micros(info.updated_at), info.session_id)
            if after is not None and key >= after:
                continue
            matches.append((key, info))
        matches.sort(key=lambda item: item[0], reverse=True)
        page = [_copy(info) for _, info in matches[: query.limit]]
        cursor = None
        if len(matches) > query.limit:
            cursor = encode_cursor(page[-1].updated_at, page[-1].session_id)
        return SessionPage(tuple(page), cursor)

    async def update_session(
        self,
        session_id: str,
        *,
        model: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        info = self._get(session_id)
        self._sessions[session_id] = dataclasses.replace(
            info,
            model=info.model if model is None else model,
            title=info.title if title is None else title,
            metadata=dict(info.metadata if metadata is None else metadata),
            updated_at=utcnow(),
        )

    async def delete_session(self, session_id: str) -> None:
        self._get(session_id)
        del self._sessions[session_id]
        del self._messages[session_id]

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        info = self._get(session_id)
        self._messages[session_id].extend(messages)
        # Spelled out, not dataclasses.replace: this runs twice a turn, and replace, which
        # reads the fields anew on each call, costs several times as much.
        self._sessions[session_id] = SessionInfo(
            session_id=info.session_id,
            model=info.model,
            title=info.title,
            created_at=info.created_at,
            updated_at=utcnow(),
            message_count=info.message_count + len(messages),
            usage=info.usage + total_usage(messages),
            metadata=info.metadata,
            system_message=info.system_message,
            on_busy=info.on_busy,
            provider=info.provider,
            busy=info.busy,
        )

    async def read_messages(self, session_id: str) -> list[Message]:
        self._get(session_id)
        return list(self._messages[session_id])

    # --- comparisons (values, so they are kept as they are) --------------------------------

    async def save_comparison(self, comparison: Comparison, *, new: bool = False) -> None:
        if new and comparison.comparison_id in self._comparisons:
            raise comparison_exists(comparison.comparison_id)
        self._comparisons[comparison.comparison_id] = comparison

    async def get_comparison(self, comparison_id: str) -> Comparison:
        try:
            return self._comparisons[comparison_id]
        except KeyError:
            raise ComparisonNotFoundError(comparison_id) from None

    async def list_comparisons(self, limit: int, cursor: str | None) -> ComparisonPage:
        after = decode_cursor(cursor) if cursor is not None else None
        keyed = sorted(
            ((to_micros(c.created_at), c.comparison_id), c) for c in self._comparisons.values()
        )
        matches = [c for key, c in reversed(keyed) if after is None or key < after]
        page = tuple(matches[:limit])
        more = len(matches) > limit
        return ComparisonPage(
            page, encode_cursor(page[-1].created_at, page[-1].comparison_id) if more else None
        )

    async def delete_comparison(self, comparison_id: str) -> None:
        if self._comparisons.pop(comparison_id, None) is None:
            raise ComparisonNotFoundError(comparison_id)


def _copy(info: SessionInfo) -> SessionInfo:
    """What callers get: changing its metadata dict must not change the store."""
    return dataclasses.replace(info, metadata=dict(info.metadata))
