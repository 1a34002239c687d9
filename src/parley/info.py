"""What `list_sessions` and `get_session` return: a session's metadata, never its history."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from parley.config import OnBusy, ProviderConfig
from parley.messages import Usage

__all__ = ["SessionInfo", "SessionPage"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionInfo:
    """A session's metadata, read without loading its history."""

    session_id: str
    model: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    usage: Usage
    """Tokens and cost summed over every model call of the session."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    system_message: str | None = None
    on_busy: OnBusy = "enqueue"
    provider: ProviderConfig | None = None
    """The session's own provider (bring your own key), without its key; None when the
    session's model is routed through the client's providers."""
    busy: bool = False
    """Whether a turn is queued or running in this client right now."""

    @property
    def tags(self) -> Mapping[str, str]:
        """Alias of `metadata`: the session's string tags, such as its owner."""
        return self.metadata


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of `list_sessions`, newest first; pass `next_cursor` back for the next page."""

    sessions: tuple[SessionInfo, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[SessionInfo]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def __getitem__(self, index: int) -> SessionInfo:
        return self.sessions[index]
