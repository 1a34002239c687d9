"""The `parley` command: global options, error handling, and the top-level commands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from parley.client import Client
from parley.config import ProviderConfig
from parley.errors import ParleyError
from parley.events import SessionEvent, event_to_dict
from parley.models.providers import resolve_key

__all__ = ["State", "app", "main", "run"]

T = TypeVar("T")

app = typer.Typer(
    name="parley",
    help="Many LLM conversations at once: chat, send, and keep sessions in one store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class State:
    """Options given before the command."""

    store: str | None = None
    debug: bool = False


@app.callback()
def options(
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="PARLEY_STORE",
            help="Store URL: sqlite:///path.db or memory:// (default ./.parley/parley.db).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    State.store = store
    State.debug = debug


def run(
    work: Callable[[Client], Awaitable[T]], *, make_client: Callable[[], Client] | None = None
) -> T:
    """Run `work` with a started client (by default on the `--store`; `make_client` makes
    another); a ParleyError becomes one red line and exit code 1."""

    async def go() -> T:
        async with (make_client or (lambda: Client(store=State.store)))() as client:
            return await work(client)

    try:
        return asyncio.run(go())
    except ParleyError as exc:
        if State.debug:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def send(
    prompt: Annotated[
        str | None, typer.Argument(help="The message; read from standard input when omitted.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("-s", "--session", help="Continue this session.")
    ] = None,
    model: Annotated[str | None, typer.Option("-m", "--model", help="Model string.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON event per line instead of text.")
    ] = False,
) -> None:
    """Send one message and print the reply as it streams (a new session unless -s)."""
    text = prompt if prompt is not None else sys.stdin.read()

    async def work(client: Client) -> None:
        if session is not None:
            chat = await client.resume_session(session)
            if model is not None:
                await chat.set_model(model)
        else:
            chat = await client.create_session(model=model)
        failed: str | None = None
        async for event in chat.stream(text):
            failed = _show(event, as_json) or failed
        if not as_json:
            out.print()
            err.print(f"[dim]session {chat.session_id} · {chat.model}[/dim]", highlight=False)
        if failed is not None:
            err.print(f"[red]error:[/red] {failed}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)

    run(work)


def _show(event: SessionEvent, as_json: bool) -> str | None:
    """Print one event; return the error message of a `session.error`."""
    if as_json:
        out.print_json(json.dumps(event_to_dict(event)), indent=None)
    elif event.type == "assistant.message_delta":
        out.print(event.data.delta_content, end="", highlight=False, markup=False)
    return event.data.message if event.type == "session.error" else None


@app.command()
def models() -> None:
    """List the configured providers, and whether each has its key."""

    async def work(client: Client) -> list[dict[str, Any]]:
        rows = []
        for name, provider in sorted(client.models.providers.items()):
            if isinstance(provider, ProviderConfig):
                try:
                    key = "set" if resolve_key(name, provider) else "not needed"
                except ParleyError:
                    key = f"missing: set {provider.api_key_env}"
                rows.append({"name": name, "type": provider.type, "key": key})
            else:
                kind = "offline" if provider.offline else "adapter"
                rows.append({"name": name, "type": kind, "key": "not needed"})
        return rows

    table = Table("provider", "type", "key")
    for row in run(work):
        style = "red" if row["key"].startswith("missing") else None
        table.add_row(row["name"], row["type"], row["key"], style=style)
    out.print(table)
    out.print("Write models as provider:model, e.g. openai:gpt-5 or echo:alpha.", highlight=False)


@app.command()
def demo(
    model: Annotated[
        str, typer.Option("--model", envvar="PARLEY_MODEL", help="Model of the first two sessions.")
    ] = "echo:alpha",
    other_model: Annotated[
        str,
        typer.Option("--other-model", envvar="PARLEY_OTHER_MODEL", help="Model of the third."),
    ] = "echo:beta",
) -> None:
    """Run the seed scenario: three concurrent sessions, a chosen id, list, delete (offline)."""
    from parley.demo import cli_main

    argv = ["--model", model, "--other-model", other_model]
    if State.store is not None:
        argv += ["--store", State.store]
    code = cli_main(argv)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """The console script."""
    app()
