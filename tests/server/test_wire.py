"""parley's events and histories in Copilot shapes: every one parses with the official SDK's
own event parser (an event it cannot parse is dropped by the SDK, silently)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from copilot.generated.session_events import SessionEvent as CopilotEvent
from copilot.generated.session_events import SessionEventType

from parley.events import (
    AbortData,
    AbortEvent,
    AssistantMessageData,
    AssistantMessageDeltaEvent,
    AssistantMessageEvent,
    AssistantTurnEndEvent,
    AssistantTurnStartEvent,
    AssistantUsageEvent,
    MessageDeltaData,
    SessionErrorData,
    SessionErrorEvent,
    SessionEvent,
    SessionIdleEvent,
    SessionResumeData,
    SessionResumeEvent,
    SessionStartData,
    SessionStartEvent,
    ToolExecutionCompleteData,
    ToolExecutionCompleteEvent,
    ToolExecutionStartData,
    ToolExecutionStartEvent,
    TurnData,
    UsageData,
    UserMessageData,
    UserMessageEvent,
)
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, Usage
from parley.server.wire import copilot_event, history_events, server_event

SID = "s-1"


def _parse(wire: dict[str, Any]) -> CopilotEvent:
    event = CopilotEvent.from_dict(wire)
    assert event.type != SessionEventType.UNKNOWN, wire["type"]
    return event


def test_every_parley_event_parses_as_a_copilot_event() -> None:
    events: list[SessionEvent] = [
        SessionStartEvent(session_id=SID, data=SessionStartData(model="echo", title="t")),
        SessionResumeEvent(session_id=SID, data=SessionResumeData(model="echo", message_count=4)),
        UserMessageEvent(session_id=SID, data=UserMessageData(message_id="u1", content="hi")),
        AssistantTurnStartEvent(session_id=SID, data=TurnData(turn_id="t1")),
        AssistantMessageDeltaEvent(
            session_id=SID, data=MessageDeltaData(message_id="m1", delta_content="he")
        ),
        ToolExecutionStartEvent(
            session_id=SID,
            data=ToolExecutionStartData(tool_call_id="c1", tool_name="f", arguments={"a": 1}),
        ),
        ToolExecutionCompleteEvent(
            session_id=SID,
            data=ToolExecutionCompleteData(
                tool_call_id="c1", tool_name="f", success=True, result="ok", duration_ms=3.5
            ),
        ),
        ToolExecutionCompleteEvent(
            session_id=SID,
            data=ToolExecutionCompleteData(
                tool_call_id="c2", tool_name="f", success=False, error="boom"
            ),
        ),
        AssistantMessageEvent(
            session_id=SID,
            data=AssistantMessageData(message_id="m1", content="hello", model="echo"),
        ),
        AssistantUsageEvent(
            session_id=SID,
            data=UsageData(
                model="echo",
                input_tokens=10,
                output_tokens=5,
                cost=0.25,
                duration_ms=120.0,
                cached_tokens=2,
                time_to_first_token_ms=30.0,
            ),
        ),
        AssistantTurnEndEvent(session_id=SID, data=TurnData(turn_id="t1")),
        SessionErrorEvent(
            session_id=SID, data=SessionErrorData(error_type="RateLimitError", message="slow down")
        ),
        AbortEvent(session_id=SID, data=AbortData(reason="abort() was called")),
        SessionIdleEvent(session_id=SID),
    ]
    parsed = [_parse(copilot_event(e, originating_message_id="u1")) for e in events]
    assert [p.type.value for p in parsed] == [e.type for e in events]
    assert [str(p.id) for p in parsed] == [e.id for e in events]
    by_type = {p.type.value: p.data for p in parsed}
    assert by_type["assistant.message"].originating_message_id == "u1"  # type: ignore[union-attr]
    usage = by_type["assistant.usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.cost) == (10, 5, 0.25)  # type: ignore[union-attr]
    assert usage.duration == timedelta(milliseconds=120)  # type: ignore[union-attr]
    assert usage.time_to_first_token == timedelta(milliseconds=30)  # type: ignore[union-attr]
    assert by_type["session.start"].selected_model == "echo"  # type: ignore[union-attr]
    assert by_type["session.resume"].event_count == 4  # type: ignore[union-attr]
    failed = [p.data for p in parsed if p.type.value == "tool.execution_complete"][1]
    assert failed.error.message == "boom"  # type: ignore[union-attr]
    assert parsed[-1].ephemeral is True


def test_server_events_parse() -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "external_tool.requested",
            {
                "requestId": "r1",
                "sessionId": SID,
                "toolCallId": "c1",
                "toolName": "f",
                "arguments": {},
            },
        ),
        ("external_tool.completed", {"requestId": "r1"}),
        (
            "permission.requested",
            {
                "requestId": "r2",
                "permissionRequest": {
                    "kind": "custom-tool",
                    "toolCallId": "c1",
                    "toolName": "f",
                    "toolDescription": "d",
                    "args": {},
                },
            },
        ),
        ("permission.completed", {"requestId": "r2", "result": {"kind": "approved"}}),
    ]
    for kind, data in cases:
        assert _parse(server_event(kind, data, parent_id=None)).type.value == kind


def test_a_history_becomes_a_chain_of_stable_events() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    usage = Usage(input_tokens=3, output_tokens=4, cost=None)
    history = [
        Message.user("weather?", id="not-a-uuid"),
        Message(
            id="2b8f4a34-7d3e-4c4e-9f8a-2f4c7b6d9e01",
            role="assistant",
            parts=(ToolCallPart(call_id="c1", name="weather", arguments={"city": "Oslo"}),),
            created_at=at,
            model="gpt",
        ),
        Message(
            id="3c8f4a34-7d3e-4c4e-9f8a-2f4c7b6d9e01",
            role="tool",
            parts=(ToolResultPart(call_id="c1", content="cold"),),
            created_at=at,
        ),
        Message(
            id="4d8f4a34-7d3e-4c4e-9f8a-2f4c7b6d9e01",
            role="assistant",
            parts=(TextPart(text="It is cold."),),
            created_at=at,
            model="gpt",
            usage=usage,
            interrupted=True,
        ),
    ]
    events = history_events(history)
    assert events == history_events(history)  # stable ids
    parsed = [_parse(e) for e in events]
    assert [p.type.value for p in parsed] == [
        "user.message",
        "assistant.message",
        "tool.execution_complete",
        "assistant.message",
    ]
    assert [e["parentId"] for e in events] == [None, *(e["id"] for e in events[:-1])]
    assert parsed[1].data.tool_requests[0].name == "weather"  # type: ignore[union-attr,index]
    assert parsed[3].data.content == "It is cold."  # type: ignore[union-attr]
    assert parsed[3].data.originating_message_id == "not-a-uuid"  # type: ignore[union-attr]


def test_events_and_histories_come_back_as_they_were() -> None:
    """What parley's remote client reads: the inverse of each mapping."""
    from parley.server.wire import event_from_copilot

    at = datetime(2026, 3, 4, tzinfo=UTC)
    history = [
        Message(
            id="a0000000-0000-4000-8000-000000000001",
            role="user",
            parts=(TextPart(text="hi"),),
            created_at=at,
        ),
        Message(
            id="a0000000-0000-4000-8000-000000000002",
            role="assistant",
            parts=(
                TextPart(text="let me look"),
                ToolCallPart(call_id="c1", name="f", arguments={"x": 1}),
            ),
            created_at=at,
            model="gpt",
            usage=Usage(input_tokens=3, output_tokens=4, cached_tokens=1, cost=0.5),
        ),
        Message(
            id="a0000000-0000-4000-8000-000000000003",
            role="tool",
            parts=(
                ToolResultPart(call_id="c1", content="ok"),
                ToolResultPart(call_id="c2", content="bad", is_error=True),
            ),
            created_at=at,
        ),
        Message(
            id="a0000000-0000-4000-8000-000000000004",
            role="assistant",
            parts=(TextPart(text="cut"),),
            created_at=at,
            model="gpt",
            interrupted=True,
            error="aborted",
        ),
    ]
    assert messages_from_events(history_events(history)) == history
    for event in (
        ToolExecutionCompleteEvent(
            session_id=SID,
            data=ToolExecutionCompleteData(
                tool_call_id="c", tool_name="f", success=False, error="no", duration_ms=2.0
            ),
        ),
        AbortEvent(session_id=SID, data=AbortData(reason="abort() was called")),
        AssistantMessageEvent(
            session_id=SID,
            data=AssistantMessageData(message_id="m", content="x", model="echo"),
        ),
    ):
        assert event_from_copilot(SID, copilot_event(event, originating_message_id="u")) == event
    assert event_from_copilot(SID, server_event("permission.requested", {}, parent_id=None)) is None


def messages_from_events(events: Iterable[dict[str, Any]]) -> list[Message]:
    """The inverse of `history_events`, to show that it loses nothing of a history."""
    messages: list[Message] = []
    results: list[ToolResultPart] = []
    results_id = ""
    results_at = datetime.now(UTC)

    def flush() -> None:
        nonlocal results
        if results:
            messages.append(
                Message(id=results_id, role="tool", parts=tuple(results), created_at=results_at)
            )
            results = []

    for event in events:
        data = event["data"]
        moment = datetime.fromisoformat(event["timestamp"])
        if event["type"] == "tool.execution_complete":
            results_id, results_at = data["messageId"], moment
            failed = not data["success"]
            content = (data.get("error") or {}).get("message") if failed else None
            if not failed:
                content = (data.get("result") or {}).get("content")
            results.append(
                ToolResultPart(call_id=data["toolCallId"], content=content or "", is_error=failed)
            )
            continue
        flush()
        if event["type"] == "user.message":
            messages.append(
                Message(
                    id=data["messageId"],
                    role="user",
                    parts=(TextPart(text=data["content"]),),
                    created_at=moment,
                )
            )
        elif event["type"] == "assistant.message":
            parts: list[TextPart | ToolCallPart] = []
            if data["content"]:
                parts.append(TextPart(text=data["content"]))
            parts.extend(
                ToolCallPart(call_id=c["toolCallId"], name=c["name"], arguments=c["arguments"])
                for c in data.get("toolRequests", ())
            )
            usage = data.get("usage")
            messages.append(
                Message(
                    id=data["messageId"],
                    role="assistant",
                    parts=tuple(parts),
                    created_at=moment,
                    model=data.get("model") or None,
                    usage=Usage(
                        input_tokens=usage["inputTokens"],
                        output_tokens=usage["outputTokens"],
                        cached_tokens=usage["cachedTokens"],
                        cost=usage["cost"],
                    )
                    if usage
                    else None,
                    interrupted=bool(data.get("interrupted")),
                    error=data.get("error"),
                )
            )
    flush()
    return messages
