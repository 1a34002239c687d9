"""Tools from functions: schemas from signatures and docstrings, validation, results."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pydantic
import pytest

from parley import ConfigError, Tool, ToolInvocation, approve_all, tool
from parley.tools import PermissionRequest, ToolArgumentsError, render_result


@tool
def weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> dict[str, object]:
    """The weather in a city.

    Args:
        city: The city's name,
            e.g. "Paris".
        unit: Celsius or Fahrenheit.

    Returns:
        A forecast.
    """
    return {"city": city, "unit": unit, "days": days}


class Point(pydantic.BaseModel):
    x: float
    y: float


@tool(name="distance", timeout=5)
async def distance_between(a: Point, b: Point) -> float:
    """How far apart two points are."""
    await asyncio.sleep(0)
    return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


def test_the_schema_comes_from_the_signature_and_docstring() -> None:
    assert weather.name == "weather"
    assert weather.description == "The weather in a city."
    schema = weather.parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["city"] == {
        "type": "string",
        "description": 'The city\'s name, e.g. "Paris".',
    }
    assert schema["properties"]["unit"]["enum"] == ["C", "F"]
    assert schema["properties"]["days"] == {"type": "integer", "default": 1}


def test_decorator_options_and_nested_models() -> None:
    assert distance_between.name == "distance"
    assert distance_between.timeout == 5
    assert "a" in distance_between.parameters["properties"]
    assert "Point" in str(distance_between.parameters)


async def test_sync_and_async_functions_run_with_validated_arguments() -> None:
    assert await weather.run({"city": "Oslo", "days": "3"}) == (
        '{"city": "Oslo", "unit": "C", "days": 3}'
    )
    result = await distance_between.run({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}})
    assert result == "5.0"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "city: Field required"),
        ({"city": "Oslo", "unit": "K"}, "unit: Input should be 'C' or 'F'"),
        ({"city": "Oslo", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"city": ["Oslo"]}, "city: Input should be a valid string"),
    ],
)
def test_invalid_arguments_say_what_is_wrong(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ToolArgumentsError, match=message):
        weather.validate(arguments)


def test_results_are_text_for_the_model() -> None:
    assert render_result("as is") == "as is"
    assert render_result(Point(x=1, y=2)) == '{"x": 1.0, "y": 2.0}'
    assert render_result([1, None]) == "[1, null]"


def untyped(city):  # type: ignore[no-untyped-def]
    return city


def variadic(*cities: str) -> str:
    return ""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Tool.from_function(untyped), "needs a type annotation"),
        (lambda: Tool.from_function(variadic), r"\*args"),
        (lambda: Tool.from_function(weather.function, name="has space"), "tool name"),
        (lambda: Tool.from_function(weather.function, timeout=0), "timeout"),
        (lambda: Tool.from_function("not a function"), "from a function"),  # type: ignore[arg-type]
    ],
)
def test_functions_that_cannot_be_tools_say_why(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_approve_all_allows() -> None:
    request = PermissionRequest(session_id="s", tool_name="t", arguments={}, call_id="c")
    assert approve_all(request) is True


async def test_a_tool_from_a_json_schema_gets_one_invocation() -> None:
    seen: list[ToolInvocation] = []

    async def handler(invocation: ToolInvocation) -> dict[str, str]:
        seen.append(invocation)
        return {"echo": invocation.arguments["q"]}

    lookup = Tool.from_schema(
        name="lookup",
        description="Look something up",
        parameters={"type": "object", "properties": {"q": {"type": "string"}}},
        function=handler,
    )
    assert lookup.parameters["properties"] == {"q": {"type": "string"}}
    assert await lookup.run({"q": "x"}, session_id="s", call_id="c") == '{"echo": "x"}'
    assert seen == [
        ToolInvocation(session_id="s", call_id="c", tool_name="lookup", arguments={"q": "x"})
    ]
    with pytest.raises(ToolArgumentsError, match="not an object"):
        lookup.validate([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "letters, digits"),
        ({"parameters": {"type": "array"}}, "schema of an object"),
        ({"function": "not callable"}, "must be callable"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_from_schema_refuses_what_cannot_work(kwargs: dict[str, Any], message: str) -> None:
    given: dict[str, Any] = {
        "name": "ok",
        "description": "",
        "parameters": {"type": "object"},
        "function": lambda invocation: "",
        **kwargs,
    }
    with pytest.raises(ConfigError, match=message):
        Tool.from_schema(**given)
