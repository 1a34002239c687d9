"""The encoded history kept between requests: always the body a fresh encoding would give.

Each step of a conversation builds the request body twice, with the session's cache and
without one; the two must decode to the same JSON, through appends, model switches, history
windows, compactions (a rewritten history) and repairs. And the cache must really be kept:
an append extends the same encoding, anything else starts a new one.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.config import ProviderConfig
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart, new_id, utcnow
from parley.models.anthropic import AnthropicAdapter
from parley.models.base import ModelRequest, RequestCache, ToolSpec
from parley.models.openai import OpenAIAdapter
from parley.runtime.history import model_view, repair

Adapter = OpenAIAdapter | AnthropicAdapter


def adapters() -> list[Adapter]:
    return [
        OpenAIAdapter(
            "o", ProviderConfig(type="openai"), api_key="k", base_url="http://127.0.0.1:1/v1"
        ),
        AnthropicAdapter(
            "a", ProviderConfig(type="anthropic"), api_key="k", base_url="http://127.0.0.1:1"
        ),
    ]


def body(adapter: Adapter, messages: list[Message], cache: RequestCache | None, **kw: Any) -> Any:
    request = ModelRequest(
        model=kw.get("model", "m1"),
        messages=messages,
        system=kw.get("system"),
        tools=kw.get("tools", ()),
        cache=cache,
    )
    return orjson.loads(adapter._body(request))


def user(text: str) -> Message:
    return Message.user(text)


def assistant(text: str = "", *calls: ToolCallPart, interrupted: bool = False) -> Message:
    parts: tuple[Any, ...] = ((TextPart(text=text),) if text else ()) + calls
    return Message(
        id=new_id(), role="assistant", parts=parts, created_at=utcnow(), interrupted=interrupted
    )


def results(*calls: ToolCallPart) -> Message:
    parts = tuple(ToolResultPart(call_id=c.call_id, content=f"ran {c.name}") for c in calls)
    return Message(id=new_id(), role="tool", parts=parts, created_at=utcnow())


def call(name: str) -> ToolCallPart:
    return ToolCallPart(call_id=new_id(), name=name, arguments={"x": 1, "é": [True, None]})


@pytest.mark.parametrize("adapter", adapters(), ids=["openai", "anthropic"])
def test_appends_extend_the_kept_encoding(adapter: Adapter) -> None:
    cache = RequestCache()
    history: list[Message] = []
    kept = None
    for turn in range(30):
        history.append(user(f"question {turn}"))
        if turn % 7 == 3:
            asked = call("lookup")
            history += [assistant("let me see", asked), results(asked)]
        assert body(adapter, history, cache, system="sys") == body(
            adapter, history, None, system="sys"
        )
        if kept is not None:
            assert cache.value is kept  # extended, not rebuilt
        kept = cache.value
        assert kept.messages == history
        history.append(assistant(f"answer {turn}"))


@pytest.mark.parametrize("adapter", adapters(), ids=["openai", "anthropic"])
def test_what_is_not_an_append_starts_afresh(adapter: Adapter) -> None:
    cache = RequestCache()
    history = [user("one"), assistant("two"), user("three")]
    body(adapter, history, cache)
    first = cache.value
    # a model switch
    assert body(adapter, history, cache, model="m2") == body(adapter, history, None, model="m2")
    assert cache.value is not first
    switched = cache.value
    # a compaction: the history rewritten, its length unchanged
    compacted = [user("summary of one and two"), assistant("ok"), history[2]]
    assert body(adapter, compacted, cache, model="m2") == body(adapter, compacted, None, model="m2")
    assert cache.value is not switched
    # a window that moved past the first message
    longer = [*compacted, assistant("four"), user("five")]
    window = model_view(longer, max_messages=2)
    assert window[0] is longer[3] or window[0] is longer[4]
    assert body(adapter, window, cache, model="m2") == body(adapter, window, None, model="m2")
    assert cache.value.messages == window


@pytest.mark.parametrize("adapter", adapters(), ids=["openai", "anthropic"])
def test_a_repair_is_encoded_like_any_message(adapter: Adapter) -> None:
    cache = RequestCache()
    asked = call("slow")
    history = [user("run slow"), assistant("", asked)]
    body(adapter, history, cache, tools=[ToolSpec(name="slow", description="d", parameters={})])
    history += repair(history, "m1")  # the call closed with a "cancelled" result
    history.append(user("and now?"))
    assert body(adapter, history, cache) == body(adapter, history, None)  # no tools offered now


STEPS = st.lists(
    st.sampled_from(
        ["user", "assistant", "tools", "interrupted", "switch", "window", "compact", "repair"]
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(steps=STEPS)
def test_any_conversation_encodes_as_a_fresh_request_would(steps: list[str]) -> None:
    for adapter in adapters():
        cache = RequestCache()
        history: list[Message] = []
        model, window = "m1", None
        for step in steps:
            if step == "user":
                history.append(user(f"u{len(history)}"))
            elif step == "assistant":
                history.append(assistant(f"a{len(history)}"))
            elif step == "tools":
                asked = [call("f"), call("g")]
                history += [assistant("", *asked), results(*asked)]
            elif step == "interrupted":
                history.append(assistant(interrupted=True))
            elif step == "switch":
                model = "m2" if model == "m1" else "m1"
            elif step == "window":
                window = 3 if window is None else None
            elif step == "compact":
                history = [user("summary"), *history[len(history) // 2 :]]
            else:
                history += repair(history, model)
            sent = model_view(history, max_messages=window)
            fresh = body(adapter, sent, None, model=model, system="s")
            assert body(adapter, sent, cache, model=model, system="s") == fresh
