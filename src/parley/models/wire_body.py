"""A session's history, encoded once: per-turn cost that stays flat as the history grows.

Histories are append-only, so the bytes a request carries for a session's past messages are
the bytes the previous request carried, plus the messages since. Each wire adapter keeps an
`EncodedHistory` in the session's `RequestCache` and only encodes what is new.

The encoding is thrown away and rebuilt from the messages whenever the messages sent are not
the ones encoded followed by new ones: after a model switch (another adapter or model: the
cache key differs), when a history window (``max_history_messages``/``max_history_tokens``)
moves past the first message, and after a compaction or anything else that rewrites the
history. A repair that closes an earlier turn appends a message, and is encoded like any
other. The check compares the encoded messages with the ones sent, by identity first, in C:
about a microsecond per hundred messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from parley.messages import Message
from parley.models.base import RequestCache

__all__ = ["EncodedHistory", "encoded"]


class EncodedHistory:
    """The messages encoded so far (`messages`), and what an adapter made of them."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def add(self, message: Message) -> None:
        """Encode one more message (after all those in `messages`)."""
        raise NotImplementedError


E = TypeVar("E", bound=EncodedHistory)


def encoded(
    cache: RequestCache | None, key: object, messages: Sequence[Message], new: Callable[[], E]
) -> E:
    """`messages` encoded: the session's kept encoding extended, or a fresh one.

    `key` names the adapter and the model (a switch starts afresh); `new` makes an empty
    encoding of the adapter's kind.
    """
    kept = cache.value if cache is not None and cache.key == key else None
    if kept is not None:
        count = len(kept.messages)
        head = messages[:count]
        if len(head) != count or (
            head != kept.messages if isinstance(head, list) else list(head) != kept.messages
        ):
            kept = None
    history: E = kept if kept is not None else new()
    if kept is None and cache is not None:
        cache.key, cache.value = key, history
    for message in messages[len(history.messages) :]:
        history.add(message)
        history.messages.append(message)
    return history
