"""History integrity: every stored history stays one that the next request can be built from.

This is the one place that decides what a history may look like and how a damaged one is
mended. Today it guarantees that every user message is answered: a turn cut off by a crash
(its user message stored, its reply never) is closed with an empty assistant message marked
`interrupted` when the session is next loaded, and a turn whose reply could not be stored is
closed the same way by the next turn's first write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, new_id, utcnow
from parley.stores.base import Store

__all__ = [
    "CRASH_NOTE",
    "UNSTORED_NOTE",
    "ShownHistory",
    "derive_title",
    "estimate_tokens",
    "mend",
    "model_view",
    "open_calls",
    "repair",
    "shown",
    "window",
]

CRASH_NOTE = "the process stopped before this reply was complete"
UNSTORED_NOTE = "the reply could not be stored"
_TITLE_LENGTH = 60


def derive_title(text: str) -> str:
    """A listing title from a first message: whitespace folded, at most 60 characters."""
    title = " ".join(text.split())
    if len(title) > _TITLE_LENGTH:
        title = title[: _TITLE_LENGTH - 1].rstrip() + "…"
    return title or "(empty)"


def open_calls(history: Sequence[Message]) -> list[ToolCallPart]:
    """The tool calls of the last assistant message that no later result answers."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == "assistant":
            calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
            answered = {
                p.call_id
                for later in history[index + 1 :]
                for p in later.parts
                if isinstance(p, ToolResultPart)
            }
            return [c for c in calls if c.call_id not in answered]
    return []


def repair(history: Sequence[Message], model: str, note: str = CRASH_NOTE) -> list[Message]:
    """The messages to append so that `history` ends in a complete turn (often none).

    Tool calls left without results get a "cancelled" result each; a user message left without
    an answer gets an empty assistant message marked `interrupted`.
    """
    pending = open_calls(history)
    if pending:
        results = tuple(
            ToolResultPart(call_id=c.call_id, content=f"cancelled: {note}", is_error=True)
            for c in pending
        )
        return [Message(id=new_id(), role="tool", parts=results, created_at=utcnow())]
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


async def mend(
    store: Store, session_id: str, history: list[Message], model: str, note: str = CRASH_NOTE
) -> None:
    """Close what `history` left open (see `repair`): in the store, then in `history`."""
    mended = repair(history, model, note)
    if mended:
        await store.append_messages(session_id, mended)
        history.extend(mended)


def estimate_tokens(message: Message) -> int:
    """A rough token count (about four characters a token), enough to keep under a budget."""
    size = 0
    for part in message.parts:
        if isinstance(part, TextPart):
            size += len(part.text)
        elif isinstance(part, ToolCallPart):
            size += len(part.name) + len(str(part.arguments))
        else:
            size += len(part.content)
    return size // 4 + 4


def shown(message: Message) -> bool:
    """Whether a model is sent `message`: interrupted replies with nothing in them are not."""
    return bool(message.parts) or message.role != "assistant"


def model_view(
    history: Iterable[Message],
    max_messages: int | None = None,
    max_tokens: int | None = None,
) -> list[Message]:
    """The history as sent to a model.

    Interrupted replies with nothing in them are left out. With `max_messages` or `max_tokens`
    (estimated), only the most recent messages are sent, starting at a user message so that no
    tool result is ever sent without the call it answers (nor an assistant turn first, which
    Anthropic refuses). The latest turn is always sent whole, even over the budget.
    """
    return window([m for m in history if shown(m)], max_messages, max_tokens)


def window(
    view: list[Message], max_messages: int | None = None, max_tokens: int | None = None
) -> list[Message]:
    """`model_view`'s window over a history already filtered (`view` itself when no limit)."""
    keep = len(view) if max_messages is None else min(max_messages, len(view))
    if max_tokens is not None:
        used = 0
        for count, message in enumerate(reversed(view[len(view) - keep :]), start=1):
            used += estimate_tokens(message)
            if used > max_tokens:
                keep = count - 1
                break
    if keep < len(view):
        start = len(view) - keep
        while start < len(view) and not _opens_a_turn(view[start]):
            start += 1
        if start == len(view):  # no user message inside the window: keep the last one
            start = max((i for i, m in enumerate(view) if _opens_a_turn(m)), default=0)
        view = view[start:]
    return view


class ShownHistory:
    """`model_view`'s filter of one session's history, kept as the history grows.

    Histories grow by appends, so each turn filters only the messages added since the last
    one, and the cost of a turn does not grow with its history. A history changed in any other
    way (reloaded, replaced, cut: its first or last seen message is not where it was) is
    filtered afresh.
    """

    __slots__ = ("_first", "_last", "_seen", "_shown")

    def __init__(self) -> None:
        self._seen = 0
        self._first: Message | None = None
        self._last: Message | None = None
        self._shown: list[Message] = []

    def of(self, history: list[Message]) -> list[Message]:
        """The filtered history; the caller must not change the list returned."""
        seen = self._seen
        if seen and (
            seen > len(history)
            or history[0] is not self._first
            or history[seen - 1] is not self._last
        ):
            seen, self._shown = 0, []
        if seen < len(history):
            self._shown += [m for m in history[seen:] if shown(m)]
            self._seen = len(history)
            self._first, self._last = history[0], history[-1]
        return self._shown


def _opens_a_turn(message: Message) -> bool:
    return message.role == "user"
