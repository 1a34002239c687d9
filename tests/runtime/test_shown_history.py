"""`ShownHistory` keeps `model_view`'s filter as a history grows, and starts afresh otherwise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parley.messages import Message, TextPart, new_id, utcnow
from parley.runtime.history import ShownHistory, model_view, window


def reply(text: str) -> Message:
    parts = (TextPart(text=text),) if text else ()
    return Message(
        id=new_id(), role="assistant", parts=parts, created_at=utcnow(), interrupted=not text
    )


def test_appends_are_filtered_once() -> None:
    shown = ShownHistory()
    history = [Message.user("one"), reply(""), Message.user("two again"), reply("ok")]
    first = shown.of(history)
    assert first == model_view(history)
    history.append(Message.user("three"))
    assert shown.of(history) is first  # the same list, extended
    assert first == model_view(history)


def test_a_history_changed_in_place_is_filtered_afresh() -> None:
    shown = ShownHistory()
    history = [Message.user("one"), reply("two"), Message.user("three")]
    shown.of(history)
    history[:] = [Message.user("summary"), history[2]]  # rewritten, the last message kept
    assert shown.of(history) == model_view(history)
    history.clear()
    assert shown.of(history) == []
    history += [Message.user("x")]
    assert shown.of(history) == model_view(history)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.sampled_from(["user", "reply", "empty", "cut", "rewrite", "reload"]), max_size=40
    ),
    limit=st.none() | st.integers(min_value=1, max_value=5),
)
def test_any_history_is_shown_as_model_view_shows_it(steps: list[str], limit: int | None) -> None:
    shown = ShownHistory()
    history: list[Message] = []
    for step in steps:
        if step == "user":
            history.append(Message.user(f"u{len(history)}"))
        elif step == "reply":
            history.append(reply(f"a{len(history)}"))
        elif step == "empty":
            history.append(reply(""))
        elif step == "cut":
            del history[: len(history) // 2]
        elif step == "rewrite":
            history[:] = [Message.user("summary"), *history[len(history) // 2 :]]
        else:  # the same messages, loaded again: new objects
            history = [
                Message(**{f: getattr(m, f) for f in m.__dataclass_fields__}) for m in history
            ]
        assert window(shown.of(history), limit) == model_view(history, limit)
