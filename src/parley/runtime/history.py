"""History integrity: every stored history stays one that the next request can be built from.

This is the one place that decides what a history may look like and how a damaged one is
mended. Today it guarantees that every user message is answered: a turn cut off by a crash
(its user message stored, its reply never) is closed with an empty assistant message marked
`interrupted` when the session is next loaded, and a turn whose reply could not be stored is
closed the same way by the next turn's first write.
"""

from __future__ import annotations

from collections.abc import Sequence

from parley.messages import Message, new_id, utcnow

__all__ = ["CRASH_NOTE", "UNSTORED_NOTE", "derive_title", "model_view", "repair"]

CRASH_NOTE = "the process stopped before this reply was complete"
UNSTORED_NOTE = "the reply could not be stored"
_TITLE_LENGTH = 60


def derive_title(text: str) -> str:
    """A listing title from a first message: whitespace folded, at most 60 characters."""
    title = " ".join(text.split())
    if len(title) > _TITLE_LENGTH:
        title = title[: _TITLE_LENGTH - 1].rstrip() + "…"
    return title or "(empty)"


def repair(history: Sequence[Message], model: str, note: str = CRASH_NOTE) -> list[Message]:
    """The messages to append so that `history` ends in a complete turn (often none)."""
    if history and history[-1].role == "user":
        return [
            Message(
                id=new_id(),
                role="assistant",
                parts=(),
                created_at=utcnow(),
                model=model,
                interrupted=True,
                error=note,
            )
        ]
    return []


def model_view(history: Sequence[Message]) -> list[Message]:
    """The history as sent to a model: interrupted replies with nothing in them are left out."""
    return [m for m in history if m.parts or m.role != "assistant"]
