"""Neutral history to each wire format: what a switch of provider mid-conversation relies on."""

from __future__ import annotations

from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, utcnow
from parley.models.anthropic import to_anthropic_messages
from parley.models.openai import to_openai_messages
from parley.runtime.history import model_view


def msg(role: str, *parts: TextPart | ToolCallPart | ToolResultPart, **kw: object) -> Message:
    return Message(id=f"m-{role}-{len(parts)}", role=role, parts=parts, created_at=utcnow(), **kw)  # type: ignore[arg-type]


HISTORY = [
    msg("user", TextPart(text="What is the weather in Paris?")),
    msg(
        "assistant",
        TextPart(text="Let me check."),
        ToolCallPart(call_id="call_1", name="weather", arguments={"city": "Paris"}),
    ),
    msg("tool", ToolResultPart(call_id="call_1", content="18 C, cloudy")),
    msg("assistant", TextPart(text="18 C and cloudy.")),
    msg("user", TextPart(text="And tomorrow?")),
    msg("assistant", interrupted=True),  # a failed turn with no text
    msg("user", TextPart(text="Hello?")),
]


def test_openai_messages_carry_system_tool_calls_and_results() -> None:
    wire = to_openai_messages("Be brief.", model_view(HISTORY))
    assert wire[0] == {"role": "system", "content": "Be brief."}
    assert wire[2]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert wire[3] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C, cloudy"}
    # The empty interrupted reply is left out; two user messages in a row are valid here.
    assert [m["role"] for m in wire] == [
        "system", "user", "assistant", "tool", "assistant", "user", "user",
    ]  # fmt: skip


def test_anthropic_messages_alternate_and_carry_tool_blocks() -> None:
    wire = to_anthropic_messages(model_view(HISTORY))
    assert [m["role"] for m in wire] == ["user", "assistant", "user", "assistant", "user"]
    assert wire[1]["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "weather",
        "input": {"city": "Paris"},
    }
    assert wire[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "content": "18 C, cloudy",
            "is_error": False,
        }
    ]
    # consecutive user turns are merged into one, in order
    assert [b["text"] for b in wire[4]["content"]] == ["And tomorrow?", "Hello?"]


def test_anthropic_drops_empty_text_but_keeps_partial_replies() -> None:
    history = [
        msg("user", TextPart(text="Tell me a story")),
        msg("assistant", TextPart(text="Once upon"), interrupted=True),
        msg("user", TextPart(text="   ")),
        msg("user", TextPart(text="go on")),
    ]
    wire = to_anthropic_messages(history)
    assert wire[1] == {"role": "assistant", "content": [{"type": "text", "text": "Once upon"}]}
    assert wire[2]["content"] == [{"type": "text", "text": "go on"}]
