"""Provider-neutral messages: their JSON body, text, and usage arithmetic."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from parley.messages import (
    Message,
    MessageOptions,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    message_from_fields,
    message_from_json,
    message_to_json,
    new_id,
    text_part_from_fields,
    usage_from_fields,
    utcnow,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)

PARTS: dict[str, tuple[Part, ...]] = {
    "text": (TextPart(text="Hello «wörld» 👋\nsecond line"),),
    "empty-text": (TextPart(text=""),),
    "tool-call": (
        ToolCallPart(
            call_id="call_1",
            name="search",
            arguments={"q": "parley", "n": 3, "nested": {"a": [1, 2.5, None, True]}},
        ),
    ),
    "tool-call-no-args": (ToolCallPart(call_id="call_2", name="now"),),
    "tool-result": (ToolResultPart(call_id="call_1", content="3 hits"),),
    "tool-error": (ToolResultPart(call_id="call_1", content="boom", is_error=True),),
    "mixed": (
        TextPart(text="Let me look. "),
        ToolCallPart(call_id="a", name="f", arguments={"x": 1}),
        TextPart(text="And also "),
        ToolCallPart(call_id="b", name="g", arguments={}),
    ),
    "no-parts": (),
}

VARIANTS: dict[str, dict[str, object]] = {
    "plain": {},
    "with-model": {"model": "echo:alpha"},
    "with-usage": {"usage": Usage(input_tokens=12, output_tokens=34, cost=0.000123)},
    "with-zero-usage": {"usage": Usage()},
    "interrupted": {"interrupted": True},
    "interrupted-with-error": {
        "interrupted": True,
        "error": "RateLimitError: slow down",
        "usage": Usage(input_tokens=1, output_tokens=2, cost=1.5),
        "model": "echo",
    },
    "error-only": {"error": ""},
}


def build(parts: tuple[Part, ...], **extra: object) -> Message:
    role = "tool" if parts and isinstance(parts[0], ToolResultPart) else "assistant"
    return Message(id="msg-1", role=role, parts=parts, created_at=T0, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("parts_name", PARTS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_round_trip(parts_name: str, variant: str) -> None:
    message = build(PARTS[parts_name], **VARIANTS[variant])
    body = message_to_json(message)
    back = message_from_json(message.id, message.role, body)
    assert back == message
    assert type(back.usage) is type(message.usage)
    for original, copy in zip(message.parts, back.parts, strict=True):
        assert type(copy) is type(original)


@pytest.mark.parametrize("role", ["user", "assistant", "tool"])
def test_round_trip_keeps_each_role(role: str) -> None:
    message = Message(id="r", role=role, parts=(TextPart(text="x"),), created_at=T0)  # type: ignore[arg-type]
    assert message_from_json("r", role, message_to_json(message)).role == role


def test_round_trip_keeps_the_timezone_instant() -> None:
    moment = datetime(2024, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    message = Message(id="m", role="user", parts=(TextPart(text="x"),), created_at=moment)
    back = message_from_json("m", "user", message_to_json(message))
    assert back.created_at == moment
    assert back.created_at.utcoffset() == timedelta(hours=-5)


def test_body_is_compact_json_without_id_or_role() -> None:
    message = build(PARTS["text"])
    body = message_to_json(message)
    data = json.loads(body)
    assert "id" not in data
    assert "role" not in data
    assert ", " not in body
    assert ": " not in body
    assert "«wörld»" in body  # kept as text, not \\u escapes
    # Absent optional fields take no room.
    assert set(data) == {"parts", "created_at"}


def test_message_from_json_rejects_an_unknown_role() -> None:
    body = message_to_json(build(PARTS["text"]))
    with pytest.raises(ValueError, match="unknown message role 'system'"):
        message_from_json("m", "system", body)


def test_message_from_json_rejects_an_unknown_part() -> None:
    body = json.dumps({"parts": [{"type": "image", "url": "x"}], "created_at": T0.isoformat()})
    with pytest.raises(ValueError, match="unknown message part type 'image'"):
        message_from_json("m", "user", body)


# --- text -----------------------------------------------------------------------------------


def test_text_joins_text_parts_only() -> None:
    message = build(PARTS["mixed"])
    assert message.text == "Let me look. And also "


def test_text_of_a_tool_message_is_empty() -> None:
    assert build(PARTS["tool-result"]).text == ""
    assert build(()).text == ""


def test_text_joins_without_separator() -> None:
    parts = (TextPart(text="a"), TextPart(text="b"), TextPart(text="c"))
    assert build(parts).text == "abc"


def test_user_builder() -> None:
    before = utcnow()
    message = Message.user("hello")
    assert message.role == "user"
    assert message.parts == (TextPart(text="hello"),)
    assert message.text == "hello"
    assert message.created_at >= before
    assert message.created_at.tzinfo is not None
    assert uuid.UUID(message.id).version == 4
    assert Message.user("x").id != Message.user("x").id
    assert Message.user("x", id="chosen").id == "chosen"
    assert (message.model, message.usage, message.interrupted, message.error) == (
        None,
        None,
        False,
        None,
    )


def test_messages_and_parts_are_frozen() -> None:
    message = Message.user("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.interrupted = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TextPart(text="x").text = "y"  # type: ignore[misc]


def test_part_type_tags() -> None:
    assert TextPart(text="x").type == "text"
    assert ToolCallPart(call_id="c", name="n").type == "tool_call"
    assert ToolResultPart(call_id="c", content="r").type == "tool_result"


def test_message_options_carries_the_prompt() -> None:
    assert MessageOptions(prompt="hi").prompt == "hi"


def test_new_id_and_utcnow() -> None:
    assert uuid.UUID(new_id()).version == 4
    assert new_id() != new_id()
    assert utcnow().utcoffset() == timedelta(0)


# --- usage ----------------------------------------------------------------------------------


def test_usage_addition_sums_every_field() -> None:
    a = Usage(input_tokens=10, output_tokens=3, cost=0.25)
    b = Usage(input_tokens=5, output_tokens=7, cost=0.5)
    total = a + b
    assert total == Usage(input_tokens=15, output_tokens=10, cost=0.75)
    assert total.total_tokens == 25
    # The operands are unchanged.
    assert a == Usage(input_tokens=10, output_tokens=3, cost=0.25)


def test_usage_zero_is_the_identity() -> None:
    a = Usage(input_tokens=4, output_tokens=2, cost=0.125)
    assert a + Usage() == a
    assert Usage() + a == a
    assert Usage().total_tokens == 0
    assert Usage().cost == 0.0


def test_usage_sum_over_many() -> None:
    parts = [Usage(input_tokens=i, output_tokens=2 * i, cost=i / 4) for i in range(5)]
    total = Usage()
    for u in parts:
        total = total + u
    assert total == Usage(input_tokens=10, output_tokens=20, cost=2.5)
    assert total.total_tokens == 30


def test_usage_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Usage().cost = 1.0  # type: ignore[misc]


def test_the_store_builders_make_what_the_constructors_make() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    usage = usage_from_fields(1, 2, 3, None)
    assert usage == Usage(input_tokens=1, output_tokens=2, cached_tokens=3, cost=None)
    part = text_part_from_fields("hi")
    assert part == TextPart(text="hi")
    built = message_from_fields("m", "assistant", (part,), at, "echo", usage, True, "why")
    assert built == Message(
        id="m",
        role="assistant",
        parts=(TextPart(text="hi"),),
        created_at=at,
        model="echo",
        usage=usage,
        interrupted=True,
        error="why",
    )
    with pytest.raises(AttributeError):  # still frozen
        built.model = "other"  # type: ignore[misc]


def test_new_ids_are_canonical_uuid4_text_and_do_not_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, dashed, 36 characters
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_id()
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        theirs = pipe.read()
    assert uuid.UUID(theirs).version == 4
    assert theirs != mine
