"""Tools: typed Python functions a model may call, and the permission hook that guards them.

    @tool
    def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''The current weather in a city.

        Args:
            city: The city's name, e.g. "Paris".
            unit: Celsius or Fahrenheit.
        '''

The JSON schema the model sees comes from the signature and the docstring, through pydantic;
the arguments the model sends are validated against it before the function runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, overload

import pydantic

from parley.errors import ConfigError

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "PermissionHandler",
    "PermissionRequest",
    "Tool",
    "ToolArgumentsError",
    "ToolInvocation",
    "approve_all",
    "tool",
]

DEFAULT_TOOL_TIMEOUT = 60.0
SYNC_TOOL_THREADS = 32
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what both OpenAI and Anthropic accept


class ToolArgumentsError(ValueError):
    """The model's arguments do not fit the tool's schema; the text goes back to the model."""


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary, and per-parameter descriptions from a Google-style ``Args:`` section."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    head, _, rest = text.partition("\nArgs:")
    params: dict[str, str] = {}
    current: str | None = None
    for line in rest.splitlines():
        if line and not line.startswith(" "):
            break  # the next section (Returns:, Raises:...)
        match = re.match(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if match:
            current = match.group(1).lstrip("*")
            params[current] = match.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return head.strip(), params


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A function the model may call: its name, description, JSON schema and the code to run."""

    name: str
    description: str
    parameters: dict[str, Any]
    """The JSON schema of the arguments object."""
    function: Callable[..., Any]
    timeout: float = DEFAULT_TOOL_TIMEOUT
    _model: type[pydantic.BaseModel] | None = field(repr=False, compare=False)
    """The arguments' pydantic model; None for a tool made `from_schema`, whose function
    takes one `ToolInvocation` and checks the arguments itself."""

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> Tool:
        """A tool from a typed function, sync or async; every parameter needs a type."""
        if not callable(function):
            raise ConfigError(f"a tool is made from a function, not {function!r}")
        tool_name: str = name or str(getattr(function, "__name__", ""))
        if not _NAME.match(tool_name):
            raise ConfigError(
                f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'; pass name="
            )
        if timeout <= 0:
            raise ConfigError(f"a tool's timeout must be > 0 seconds, not {timeout}")
        summary, documented = _docstring_parts(inspect.getdoc(function))
        try:
            hints = inspect.get_annotations(function, eval_str=True)
        except Exception as exc:
            raise ConfigError(f"tool {tool_name!r}: its annotations cannot be read: {exc}") from exc
        fields: dict[str, Any] = {}
        for parameter in inspect.signature(function).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise ConfigError(f"tool {tool_name!r}: *args and **kwargs cannot be described")
            if parameter.name not in hints:
                raise ConfigError(
                    f"tool {tool_name!r}: parameter {parameter.name!r} needs a type annotation"
                )
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[parameter.name] = (
                hints[parameter.name],
                pydantic.Field(default, description=documented.get(parameter.name)),
            )
        model = pydantic.create_model(
            f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        schema = model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return cls(
            name=tool_name,
            description=description or summary or tool_name,
            parameters=schema,
            function=function,
            timeout=timeout,
            _model=model,
        )

    @classmethod
    def from_schema(
        cls,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        function: Callable[[ToolInvocation], Any],
        timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> Tool:
        """A tool from a JSON schema and a function of one `ToolInvocation` (sync or async).

        For tools described elsewhere (another process, an MCP server, a Copilot SDK client):
        parley checks only that the arguments are an object; the function checks the rest.
        """
        if not _NAME.match(name):
            raise ConfigError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise ConfigError(
                f"tool {name!r}: parameters must be a JSON schema of an object, not {parameters!r}"
            )
        if not callable(function):
            raise ConfigError(f"tool {name!r}: function must be callable, not {function!r}")
        if timeout <= 0:
            raise ConfigError(f"a tool's timeout must be > 0 seconds, not {timeout}")
        return cls(
            name=name,
            description=description or name,
            parameters={"type": "object", "properties": {}, **parameters},
            function=function,
            timeout=timeout,
            _model=None,
        )

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments converted to the function's types; ToolArgumentsError says what's off."""
        if self._model is None:
            if not isinstance(arguments, dict):
                raise ToolArgumentsError(f"invalid arguments for {self.name}: not an object")
            return arguments
        try:
            parsed = self._model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {problems}") from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    async def run(
        self, arguments: dict[str, Any], *, session_id: str = "", call_id: str = ""
    ) -> str:
        """Validate, call (in a thread when the function is sync), and render the result."""
        values = self.validate(arguments)
        if self._model is None:  # from_schema: one ToolInvocation
            invocation = ToolInvocation(
                session_id=session_id, call_id=call_id, tool_name=self.name, arguments=values
            )
            call = functools.partial(self.function, invocation)
        else:
            call = functools.partial(self.function, **values)
        if inspect.iscoroutinefunction(self.function):
            result = await call()
        else:
            # Threads of their own: a sync tool that overran its timeout cannot be stopped and
            # keeps its thread, which must not starve the loop's default pool (DNS lookups).
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(_executor(), call)
            if inspect.isawaitable(result):
                result = await result
        return render_result(result)


@functools.lru_cache(maxsize=1)
def _executor() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=SYNC_TOOL_THREADS, thread_name_prefix="parley-tool"
    )


def render_result(result: object) -> str:
    """A tool's return value as the text the model reads: strings as they are, the rest JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(pydantic.TypeAdapter(Any).dump_python(result, mode="json"))


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float = ...
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a `Tool` of a function: ``@tool`` or ``@tool(name=..., timeout=...)``."""
    if function is not None:
        return Tool.from_function(function)

    def decorate(fn: Callable[..., Any]) -> Tool:
        return Tool.from_function(fn, name=name, description=description, timeout=timeout)

    return decorate


@dataclass(frozen=True, kw_only=True)
class ToolInvocation:
    """One call of a tool made with `Tool.from_schema`: what its function receives."""

    session_id: str
    call_id: str
    tool_name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class PermissionRequest:
    """What `on_permission_request` is asked before a tool runs."""

    session_id: str
    tool_name: str
    arguments: dict[str, Any]
    call_id: str


PermissionHandler: TypeAlias = Callable[[PermissionRequest], "bool | Awaitable[bool]"]


def approve_all(request: PermissionRequest) -> bool:
    """A permission hook that allows every tool call."""
    return True


def check_tools(tools: Sequence[Tool]) -> tuple[Tool, ...]:
    """Tools as given to a session or a send: Tool objects with distinct names."""
    seen: set[str] = set()
    for item in tools:
        if not isinstance(item, Tool):
            raise ConfigError(f"tools must be Tool objects (use @tool), not {item!r}")
        if item.name in seen:
            raise ConfigError(f"two tools are named {item.name!r}; tool names must be distinct")
        seen.add(item.name)
    return tuple(tools)
