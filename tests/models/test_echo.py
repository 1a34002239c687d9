"""The offline echo model: deterministic replies built from the session's own history."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Sequence

import pytest

from parley.messages import Message, TextPart, ToolCallPart
from parley.models import (
    EchoModel,
    ModelAdapter,
    ModelRequest,
    StreamEvent,
    StreamFinish,
    StreamTextDelta,
    StreamUsage,
)
from parley.models.echo import echo_reply


def conversation(*user_texts: str) -> list[Message]:
    """User messages with an assistant reply between each pair, as a real history has."""
    history: list[Message] = []
    for i, text in enumerate(user_texts):
        if i:
            history.append(
                Message(
                    id=f"a{i}",
                    role="assistant",
                    parts=(TextPart(text=f"reply {i}"),),
                    created_at=history[-1].created_at,
                )
            )
        history.append(Message.user(text))
    return history


async def collect(model: EchoModel, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


def request(
    messages: Sequence[Message], model: str = "echo", system: str | None = None
) -> ModelRequest:
    return ModelRequest(model=model, messages=messages, system=system)


# --- echo_reply -----------------------------------------------------------------------------


def test_first_message_reply() -> None:
    reply = echo_reply("echo", conversation("How do I initialize a module?"))
    assert reply == (
        '[offline echo · echo] You said "How do I initialize a module?". '
        "This is the first message of our conversation."
    )


def test_reply_quotes_latest_and_first_and_counts_user_messages() -> None:
    history = conversation("You are helping with a Python project", "ok", "What was my project?")
    reply = echo_reply("echo", history)
    assert reply.startswith("[offline echo")
    assert 'You said "What was my project?"' in reply
    assert 'you said "You are helping with a Python project"' in reply
    assert "message #3 here" in reply


def test_reply_is_deterministic() -> None:
    history = conversation("one", "two")
    assert echo_reply("echo", history) == echo_reply("echo", list(history))
    assert echo_reply("echo", history) == echo_reply("echo", tuple(history))


def test_different_histories_give_different_replies() -> None:
    # The same follow-up in two sessions shows each session's own context.
    a = echo_reply("echo", conversation("I like Rust", "What do I like?"))
    b = echo_reply("echo", conversation("I like Go", "What do I like?"))
    assert a != b
    assert '"I like Rust"' in a
    assert '"I like Go"' in b


def test_assistant_and_tool_text_is_not_counted_or_quoted() -> None:
    history = [
        Message.user("first"),
        Message(
            id="a",
            role="assistant",
            parts=(TextPart(text="SECRET"), ToolCallPart(call_id="c", name="t")),
            created_at=Message.user("x").created_at,
        ),
        Message.user("second"),
    ]
    reply = echo_reply("echo", history)
    assert "SECRET" not in reply
    assert "message #2 here" in reply


def test_model_name_appears_in_the_label() -> None:
    assert echo_reply("echo:alpha", conversation("hi")).startswith("[offline echo · echo:alpha]")


def test_no_user_message_yet() -> None:
    reply = echo_reply("echo", [])
    assert reply.startswith("[offline echo")
    assert "Nothing has been said" in reply


def test_long_and_multiline_messages_are_shortened_to_one_line() -> None:
    long = "word " * 40
    reply = echo_reply("echo", conversation("line one\n\n  line   two", long))
    assert '"line one line two"' in reply
    quoted = reply.split("You said ", 1)[1].split(". ", 1)[0]
    assert quoted.endswith('…"')
    assert len(quoted) == 80 + 2  # 80 characters inside the quotes


# --- stream ---------------------------------------------------------------------------------


def test_echo_is_a_model_adapter() -> None:
    model = EchoModel()
    assert isinstance(model, ModelAdapter)
    assert model.provider == "echo"
    assert model.offline is True
    assert EchoModel(provider="slow").provider == "slow"


async def test_stream_is_deltas_then_usage_then_finish() -> None:
    history = conversation("You are helping with a Python project", "What was my project?")
    events = await collect(EchoModel(), request(history))

    deltas = [e for e in events if isinstance(e, StreamTextDelta)]
    assert len(deltas) > 3
    assert events[: len(deltas)] == deltas
    assert "".join(d.text for d in deltas) == echo_reply("echo", history)
    assert all(d.text.strip() for d in deltas)  # one word (plus its space) per delta

    usage, finish = events[len(deltas) :]
    assert isinstance(usage, StreamUsage)
    assert usage.output_tokens == len(deltas)
    assert usage.cost == 0.0
    assert finish == StreamFinish(reason="stop")


async def test_stream_labels_the_model_by_provider_and_name() -> None:
    history = conversation("hi")
    bare = await collect(EchoModel(), request(history, model="echo"))
    named = await collect(EchoModel(), request(history, model="alpha"))
    other = await collect(EchoModel(provider="slow"), request(history, model="beta"))

    def text(events: list[StreamEvent]) -> str:
        return "".join(e.text for e in events if isinstance(e, StreamTextDelta))

    assert text(bare) == echo_reply("echo", history)
    assert text(named) == echo_reply("echo:alpha", history)
    assert text(other) == echo_reply("slow:beta", history)


async def test_stream_is_deterministic() -> None:
    history = conversation("same", "again")
    assert await collect(EchoModel(), request(history)) == await collect(
        EchoModel(), request(history)
    )


async def test_usage_counts_prompt_words_including_the_system_message() -> None:
    history = conversation("one two three", "four five")  # plus "reply 1": 2 words
    events = await collect(EchoModel(), request(history))
    with_system = await collect(EchoModel(), request(history, system="Be very brief."))
    usage = next(e for e in events if isinstance(e, StreamUsage))
    usage_sys = next(e for e in with_system if isinstance(e, StreamUsage))
    assert usage.input_tokens == 3 + 2 + 2
    assert usage_sys.input_tokens == usage.input_tokens + 3


async def test_stream_yields_to_the_loop_between_tokens() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        seen: list[int] = []
        async for event in EchoModel().stream(request(conversation("a b c d e f"))):
            if isinstance(event, StreamTextDelta):
                seen.append(ticks)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(seen) > 3
    # Other tasks ran before every single token.
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_token_delay_is_honoured() -> None:
    delay = 0.005
    model = EchoModel(token_delay=delay)
    loop = asyncio.get_running_loop()
    start = loop.time()
    events = await collect(model, request(conversation("hello there")))
    elapsed = loop.time() - start
    tokens = sum(isinstance(e, StreamTextDelta) for e in events)
    assert tokens > 5
    # A lower bound only: a delay of `delay` before each token. (Upper bounds would be flaky.)
    assert elapsed >= tokens * delay * 0.9


async def test_a_long_token_delay_holds_back_the_first_token() -> None:
    # Deterministic: a 60 s delay cannot elapse within the 20 ms we wait.
    agen = EchoModel(token_delay=60).stream(request(conversation("hi")))
    assert isinstance(agen, AsyncGenerator)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(agen.__anext__(), timeout=0.02)
    await agen.aclose()


def test_negative_token_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="token_delay"):
        EchoModel(token_delay=-0.1)


async def test_aclose_is_harmless() -> None:
    model = EchoModel()
    await model.aclose()
    await model.aclose()
    events = await collect(model, request(conversation("still works")))
    assert isinstance(events[-1], StreamFinish)
