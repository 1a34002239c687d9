"""Events: the Copilot wire shape, validation at the edge, ephemerality, immutability."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest

from parley import events as ev
from parley.events import SessionEvent, event_from_dict, event_to_dict

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _common(i: int) -> dict[str, Any]:
    return {
        "session_id": "user-123-chat",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "timestamp": T0 + timedelta(seconds=i),
        "parent_id": f"00000000-0000-4000-8000-{i - 1:012d}" if i else None,
    }


def one_of_each() -> list[SessionEvent]:
    """One instance of every event class, with payloads that exercise every field kind."""
    return [
        ev.SessionStartEvent(**_common(0), data=ev.SessionStartData(model="echo", title="Hi")),
        ev.SessionResumeEvent(
            **_common(1), data=ev.SessionResumeData(model="echo:alpha", message_count=3)
        ),
        ev.UserMessageEvent(
            **_common(2), data=ev.UserMessageData(message_id="m1", content="Hello «ü»")
        ),
        ev.AssistantTurnStartEvent(**_common(3), data=ev.TurnData(turn_id="t1")),
        ev.AssistantMessageDeltaEvent(
            **_common(4), data=ev.MessageDeltaData(message_id="m2", delta_content="Hel")
        ),
        ev.AssistantMessageEvent(
            **_common(5),
            data=ev.AssistantMessageData(
                message_id="m2", content="Hello", model="echo", interrupted=True
            ),
        ),
        ev.ToolExecutionStartEvent(
            **_common(6),
            data=ev.ToolExecutionStartData(
                tool_call_id="c1", tool_name="search", arguments={"q": "x", "n": [1, 2]}
            ),
        ),
        ev.ToolExecutionCompleteEvent(
            **_common(7),
            data=ev.ToolExecutionCompleteData(
                tool_call_id="c1",
                tool_name="search",
                success=False,
                error="boom",
                duration_ms=12.5,
            ),
        ),
        ev.AssistantUsageEvent(
            **_common(8),
            data=ev.UsageData(
                model="echo",
                input_tokens=10,
                output_tokens=4,
                cost=0.25,
                duration_ms=40.0,
                time_to_first_token_ms=5.5,
            ),
        ),
        ev.AssistantTurnEndEvent(**_common(9), data=ev.TurnData(turn_id="t1")),
        ev.SessionIdleEvent(**_common(10)),
        ev.SessionErrorEvent(
            **_common(11), data=ev.SessionErrorData(error_type="RateLimitError", message="slow")
        ),
        ev.AbortEvent(**_common(12), data=ev.AbortData(reason="user")),
    ]


EVENTS = one_of_each()


def test_there_is_a_sample_of_every_event_class() -> None:
    assert {type(e) for e in EVENTS} == set(get_args(SessionEvent))
    assert len(EVENTS) == len(get_args(SessionEvent))


def test_event_types_match_the_copilot_vocabulary() -> None:
    assert sorted(e.type for e in EVENTS) == sorted(get_args(ev.EventType))


@pytest.mark.parametrize("event", EVENTS, ids=[e.type for e in EVENTS])
def test_round_trip_through_the_wire_shape(event: SessionEvent) -> None:
    wire = event_to_dict(event)
    back = event_from_dict(wire)
    assert back == event
    assert type(back) is type(event)
    assert back.timestamp.utcoffset() == timedelta(0)


def test_wire_shape_is_camel_case_with_iso_timestamps() -> None:
    delta = ev.AssistantMessageDeltaEvent(
        session_id="s1",
        parent_id="p1",
        timestamp=T0,
        data=ev.MessageDeltaData(message_id="m1", delta_content="Hi"),
    )
    wire = event_to_dict(delta)
    assert wire == {
        "sessionId": "s1",
        "id": delta.id,
        "timestamp": "2024-05-01T12:30:15.123456+00:00",
        "parentId": "p1",
        "ephemeral": True,
        "type": "assistant.message_delta",
        "data": {"messageId": "m1", "deltaContent": "Hi"},
    }
    assert datetime.fromisoformat(wire["timestamp"]) == T0


def test_nested_payload_keys_are_camel_case() -> None:
    usage = next(e for e in EVENTS if isinstance(e, ev.AssistantUsageEvent))
    assert set(event_to_dict(usage)["data"]) == {
        "model",
        "inputTokens",
        "outputTokens",
        "cost",
        "durationMs",
        "timeToFirstTokenMs",
        "cachedTokens",
    }
    start = next(e for e in EVENTS if isinstance(e, ev.ToolExecutionStartEvent))
    data = event_to_dict(start)["data"]
    assert set(data) == {"toolCallId", "toolName", "arguments"}
    assert data["arguments"] == {"q": "x", "n": [1, 2]}  # user data is not renamed


def test_no_snake_case_key_anywhere_on_the_wire() -> None:
    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            out = []
            for k, v in value.items():
                if k != "arguments":
                    out.append(k)
                    out.extend(keys(v))
            return out
        return []

    for event in EVENTS:
        assert all("_" not in k for k in keys(event_to_dict(event))), event.type


def test_a_non_utc_timestamp_keeps_its_instant() -> None:
    moment = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    event = ev.AbortEvent(session_id="s", timestamp=moment, data=ev.AbortData(reason="r"))
    wire = event_to_dict(event)
    assert wire["timestamp"] == "2024-05-01T14:30:00+02:00"
    assert event_from_dict(wire).timestamp == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def test_defaults_fill_optional_fields() -> None:
    raw = event_to_dict(EVENTS[0])
    del raw["parentId"], raw["ephemeral"], raw["data"]["title"]
    event = event_from_dict(raw)
    assert isinstance(event, ev.SessionStartEvent)
    assert event.parent_id is None
    assert event.ephemeral is False
    assert event.data.title is None


def test_idle_needs_no_data() -> None:
    raw = event_to_dict(ev.SessionIdleEvent(session_id="s"))
    del raw["data"]
    assert isinstance(event_from_dict(raw), ev.SessionIdleEvent)


def test_integer_floats_are_accepted_as_floats() -> None:
    usage = next(e for e in EVENTS if isinstance(e, ev.AssistantUsageEvent))
    raw = event_to_dict(usage)
    raw["data"]["cost"] = 0
    raw["data"]["durationMs"] = 40
    event = event_from_dict(raw)
    assert isinstance(event, ev.AssistantUsageEvent)
    assert event.data.cost == 0.0
    assert isinstance(event.data.cost, float)
    assert isinstance(event.data.duration_ms, float)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["session.nope", "", None, 3])
def test_unknown_type_is_a_value_error_listing_the_known_ones(kind: object) -> None:
    raw = event_to_dict(EVENTS[0])
    raw["type"] = kind
    with pytest.raises(ValueError, match="unknown event type") as info:
        event_from_dict(raw)
    assert "session.start" in str(info.value)
    assert "assistant.message_delta" in str(info.value)


def test_missing_type_is_a_value_error() -> None:
    raw = event_to_dict(EVENTS[0])
    del raw["type"]
    with pytest.raises(ValueError, match="unknown event type None"):
        event_from_dict(raw)


def test_not_an_object_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_dict(["type", "abort"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (("sessionId",), "sessionId"),
        (("data",), "data"),
        (("data", "messageCount"), "messageCount"),
        (("data", "model"), "model"),
    ],
)
def test_missing_field_is_a_value_error_naming_it(path: tuple[str, ...], missing: str) -> None:
    raw = event_to_dict(EVENTS[1])  # session.resume
    target = raw
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(ValueError, match="missing field") as info:
        event_from_dict(raw)
    assert missing in str(info.value)


@pytest.mark.parametrize("key", ["id", "timestamp"])
def test_missing_id_or_timestamp_on_the_wire_is_a_value_error(key: str) -> None:
    # Every event on the wire carries its id and time; a parser that invents a fresh UUID
    # or "now" for a received event breaks the parentId chain and misdates it silently.
    raw = event_to_dict(EVENTS[1])
    del raw[key]
    with pytest.raises(ValueError, match=f"missing field.*{key}"):
        event_from_dict(raw)


@pytest.mark.parametrize(
    ("index", "field", "value", "expected"),
    [
        (1, "messageCount", "3", "session.resume.data.messageCount: expected int, got '3'"),
        (1, "messageCount", True, "session.resume.data.messageCount: expected int, got True"),
        (1, "messageCount", 3.0, "expected int"),
        (1, "model", None, "session.resume.data.model: expected str, got None"),
        (5, "interrupted", "yes", "expected bool, got 'yes'"),
        (5, "interrupted", 1, "expected bool, got 1"),
        (6, "arguments", [1], "expected an object, got [1]"),
        (8, "cost", "0.1", "expected float"),
        (8, "cost", False, "expected float or null, got False"),
        (8, "timeToFirstTokenMs", "fast", "timeToFirstTokenMs"),
    ],
)
def test_wrong_field_type_is_a_value_error_saying_where(
    index: int, field: str, value: object, expected: str
) -> None:
    raw = event_to_dict(EVENTS[index])
    raw["data"][field] = value
    with pytest.raises(ValueError, match=re.escape(expected)):
        event_from_dict(raw)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sessionId", 7, "sessionId: expected str, got 7"),
        ("timestamp", 1714566615, "timestamp: expected an ISO-8601 timestamp"),
        ("ephemeral", "no", "ephemeral: expected bool"),
        ("parentId", 5, "parentId"),
        ("data", "text", "data: expected an object, got 'text'"),
    ],
)
def test_wrong_envelope_field_is_a_value_error(key: str, value: object, expected: str) -> None:
    raw = event_to_dict(EVENTS[1])
    raw[key] = value
    with pytest.raises(ValueError, match=re.escape(expected)):
        event_from_dict(raw)


def test_unparseable_timestamp_names_the_field() -> None:
    raw = event_to_dict(EVENTS[1])
    raw["timestamp"] = "yesterday"
    with pytest.raises(ValueError, match="yesterday") as info:
        event_from_dict(raw)
    assert "timestamp" in str(info.value)


def test_a_type_tag_that_disagrees_with_the_class_is_impossible() -> None:
    # The class is chosen by the tag, so a decoded event always carries its own tag.
    for event in EVENTS:
        assert event_from_dict(event_to_dict(event)).type == event.type


# --- defaults, ephemerality, immutability ---------------------------------------------------


def test_deltas_and_idle_are_ephemeral_by_default_the_rest_not() -> None:
    ephemeral = {
        cls.__name__
        for cls in get_args(SessionEvent)
        if cls.__dataclass_fields__["ephemeral"].default is True
    }
    assert ephemeral == {"AssistantMessageDeltaEvent", "SessionIdleEvent"}
    assert ev.AssistantMessageDeltaEvent(
        session_id="s", data=ev.MessageDeltaData(message_id="m", delta_content="x")
    ).ephemeral
    assert ev.SessionIdleEvent(session_id="s").ephemeral
    assert not ev.AssistantMessageEvent(
        session_id="s", data=ev.AssistantMessageData(message_id="m", content="x", model="echo")
    ).ephemeral
    assert not ev.UserMessageEvent(
        session_id="s", data=ev.UserMessageData(message_id="m", content="x")
    ).ephemeral


def test_new_events_get_a_uuid_and_a_utc_timestamp() -> None:
    before = datetime.now(UTC)
    a = ev.SessionIdleEvent(session_id="s")
    b = ev.SessionIdleEvent(session_id="s")
    assert a.id != b.id
    assert uuid.UUID(a.id).version == 4
    assert a.timestamp.tzinfo is not None
    assert a.timestamp >= before
    assert a.parent_id is None


@pytest.mark.parametrize("event", EVENTS, ids=[e.type for e in EVENTS])
def test_events_are_frozen(event: SessionEvent) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.session_id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = ev.IdleData()  # type: ignore[misc]


def test_payloads_are_frozen() -> None:
    data = ev.UsageData(model="echo", input_tokens=1, output_tokens=1, cost=0.0, duration_ms=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.cost = 1.0  # type: ignore[misc]


def test_events_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ev.AbortEvent("s", data=ev.AbortData(reason="r"))  # type: ignore[call-arg]
