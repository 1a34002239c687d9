"""Tools: Python functions a model may call, with a permission hook that guards them.

One session gets three tools: a sync weather lookup (sync tools run in a worker thread), an
async unit conversion, and send_email, which the permission hook refuses. The model asks for
all three in one response; the two allowed calls run at the same time, the refusal goes back
to the model as an error result, and the model then answers. Every tool event is printed as
it happens, then the reply and the stored history (a `memory://` store).

By default it runs offline, with no key: the model is a fake, `parley.testing.FakeLLMServer`
on 127.0.0.1, scripted to ask for those calls and then answer, reached through the real
`openai` adapter and SDK over HTTP. With a model it uses your providers instead (keys from
the environment, such as OPENAI_API_KEY), and that model decides which tools to call:

    python examples/tools.py
    python examples/tools.py --model openai:gpt-5          # or PARLEY_MODEL=openai:gpt-5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

from parley import (
    Client,
    ClientConfig,
    Message,
    ParleyError,
    PermissionRequest,
    ProviderConfig,
    SessionConfig,
    SessionEvent,
    TextPart,
    ToolCallPart,
    ToolExecutionCompleteEvent,
    ToolExecutionStartEvent,
    ToolResultPart,
    tool,
)
from parley.testing import FakeLLMServer, FakeReply, FakeToolCall

PROMPT = (
    "What's the weather in Lisbon, how many miles is a 42.195 km marathon, "
    "and please email the forecast to alex@example.com."
)
DENIED = {"send_email"}
FORECASTS = {"lisbon": (21.0, "sunny"), "oslo": (4.0, "light snow"), "paris": (15.0, "cloudy")}


@tool
def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, object]:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. "Lisbon".
        unit: "C" for Celsius or "F" for Fahrenheit.
    """
    time.sleep(0.3)  # a blocking call, as a real HTTP client would make: it runs in a thread
    celsius, sky = FORECASTS.get(city.lower(), (18.0, "clear"))
    temperature = celsius if unit == "C" else celsius * 9 / 5 + 32
    return {"city": city, "temperature": round(temperature, 1), "unit": unit, "sky": sky}


@tool
async def convert_units(
    value: float, from_unit: Literal["km", "mi", "C", "F"], to_unit: Literal["km", "mi", "C", "F"]
) -> float:
    """Convert a distance or a temperature from one unit to another.

    Args:
        value: The number to convert.
        from_unit: The unit it is in: km, mi, C or F.
        to_unit: The unit wanted: km or mi for a distance, C or F for a temperature.
    """
    await asyncio.sleep(0.3)  # stands for an await on a service
    conversions: dict[tuple[str, str], Callable[[float], float]] = {
        ("km", "mi"): lambda v: v / 1.609344,
        ("mi", "km"): lambda v: v * 1.609344,
        ("C", "F"): lambda v: v * 9 / 5 + 32,
        ("F", "C"): lambda v: (v - 32) * 5 / 9,
    }
    if from_unit == to_unit:
        return value
    if (from_unit, to_unit) not in conversions:  # the model reads this error and can retry
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return round(conversions[from_unit, to_unit](value), 2)


@tool
async def send_email(to: str, subject: str, body: str) -> str:
    """Send an email.

    Args:
        to: The recipient's address.
        subject: The subject line.
        body: The text of the email.
    """
    return f"sent to {to}"  # never runs here: the permission hook refuses it


def ask_permission(request: PermissionRequest) -> bool:
    """Allow every tool but the ones in DENIED (a hook may also be async, to ask a person)."""
    allowed = request.tool_name not in DENIED
    print(f"  permission? {request.tool_name} -> {'allowed' if allowed else 'denied'}")
    return allowed


def fake_script() -> tuple[FakeReply, ...]:
    """What the fake model answers: three tool calls in one response, then the final answer."""
    calls = (
        FakeToolCall(id="call_weather", name="get_weather", arguments={"city": "Lisbon"}),
        FakeToolCall(
            id="call_convert",
            name="convert_units",
            arguments={"value": 42.195, "from_unit": "km", "to_unit": "mi"},
        ),
        FakeToolCall(
            id="call_email",
            name="send_email",
            arguments={"to": "alex@example.com", "subject": "Lisbon", "body": "21 C, sunny"},
        ),
    )
    final = (
        "Lisbon is sunny at 21 degrees C. A 42.195 km marathon is 26.22 miles. I could not "
        "email the forecast to alex@example.com: sending email was not allowed."
    )
    return FakeReply(text="Let me look that up.", tool_calls=calls), FakeReply(text=final)


@contextlib.asynccontextmanager
async def model_and_config(model: str | None) -> AsyncIterator[tuple[str, ClientConfig, str]]:
    """The model to use, the client configuration that reaches it, and a label saying what it is."""
    if model is not None:  # a real model, through the usual providers, keys and parley.toml
        yield model, ClientConfig(), model
        return
    async with FakeLLMServer(api_key="fake") as server:
        server.script(*fake_script())
        providers = {
            "openai": ProviderConfig(type="openai", base_url=server.openai_base_url, api_key="fake")
        }
        label = f"openai:fake-gpt, a fake model (FakeLLMServer at {server.url}, scripted)"
        yield "openai:fake-gpt", ClientConfig(providers=providers, config_files=False), label


def describe(message: Message) -> str:
    """One line about a stored message: its text, tool calls or tool results."""
    pieces: list[str] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            pieces.append(repr(part.text))
        elif isinstance(part, ToolCallPart):
            pieces.append(f"call {part.call_id} {part.name}")
        elif isinstance(part, ToolResultPart):
            pieces.append(f"result {part.call_id} {'error' if part.is_error else 'ok'}")
    return ", ".join(pieces) or "(empty)"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=os.environ.get("PARLEY_MODEL"),
        help="a real model such as openai:gpt-5 (env PARLEY_MODEL); default: the offline fake",
    )
    args = parser.parse_args(argv)

    async with (
        model_and_config(args.model) as (model, config, label),
        Client(store="memory://", config=config) as client,
    ):
        print(f"parley tools example; model: {label}\n")
        session = await client.create_session(
            SessionConfig(
                model=model,
                tools=[get_weather, convert_units, send_email],
                on_permission_request=ask_permission,
                system_message="Use the tools to answer. Be brief.",
            )
        )
        started = time.monotonic()
        first_start: float | None = None
        last_end = work = 0.0

        def show(event: SessionEvent) -> None:
            nonlocal first_start, last_end, work
            now = time.monotonic()
            at = f"[{now - started:5.2f}s]"
            if isinstance(event, ToolExecutionStartEvent):
                first_start = now if first_start is None else first_start
                arguments = json.dumps(event.data.arguments)
                print(f"{at} {event.type}    {event.data.tool_call_id} {event.data.tool_name}")
                print(f"          arguments: {arguments}")
            elif isinstance(event, ToolExecutionCompleteEvent):
                data = event.data
                last_end, work = now, work + data.duration_ms / 1000
                outcome = f"result: {data.result}" if data.success else f"error: {data.error}"
                print(f"{at} {event.type} {data.tool_call_id} {data.tool_name}")
                print(f"          {outcome} ({data.duration_ms / 1000:.2f}s)")

        session.on(show)
        print(f"you: {PROMPT}")
        reply = await session.send_and_wait(PROMPT)
        if first_start is not None:
            wall = last_end - first_start
            print(f"tools: {work:.2f}s of work in {wall:.2f}s (one response's calls run at once)")
        print(f"\nassistant: {reply.text}\n")

        history = await session.messages()
        print(f"stored history ({len(history)} messages, in memory://):")
        for message in history:
            print(f"  {message.role:<9} {describe(message)}")
        print(f"history roles: {', '.join(m.role for m in history)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except ParleyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
