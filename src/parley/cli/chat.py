"""`parley chat`: talk to a session, with replies streaming as they come."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from parley.cli.app import State, app, err, out
from parley.client import Client
from parley.errors import ParleyError
from parley.session import Session

__all__ = ["chat"]

HELP = """Type a message and press Enter. End a line with \\ to go on to the next line.
  /model M     use model M from the next message on
  /sessions    list recent sessions
  /switch ID   continue another session
  /new         start a new session (same model)
  /help        this help
  /exit        leave (or Ctrl-D; Ctrl-C during a reply stops it, at the prompt it leaves)"""


def _read_message() -> str:
    """One message from the terminal; lines ending with a backslash continue it."""
    lines = [input("you> ")]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(input("...> "))
    return "\n".join(lines)


async def _reply(session: Session, text: str) -> None:
    async for event in session.stream(text):
        if event.type == "assistant.message_delta":
            out.print(event.data.delta_content, end="", highlight=False, markup=False)
        elif event.type == "session.error":
            err.print(f"\n[red]error:[/red] {event.data.message}", highlight=False)
    out.print()


async def _sessions(client: Client) -> None:
    table = Table("id", "model", "messages", "title")
    for info in await client.list_sessions(limit=20):
        table.add_row(info.session_id, info.model, str(info.message_count), info.title or "")
    out.print(table)


@app.command()
def chat(
    session_id: Annotated[
        str | None, typer.Option("-s", "--session", help="Continue this session.")
    ] = None,
    model: Annotated[str | None, typer.Option("-m", "--model", help="Model string.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a new session.")] = False,
) -> None:
    """Chat in the terminal; continues the most recent session unless told otherwise."""
    with asyncio.Runner() as runner:
        client = Client(store=State.store)
        try:
            runner.run(client.start())
            session = runner.run(_open(client, session_id, model, new))
        except ParleyError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            runner.run(client.stop())
            raise typer.Exit(1) from None
        err.print(
            f"[dim]session {session.session_id} · {session.model} · /help for commands[/dim]",
            highlight=False,
        )
        try:
            while True:
                try:
                    text = _read_message()
                except (EOFError, KeyboardInterrupt):
                    out.print()
                    break
                if not text.strip():
                    continue
                try:
                    if text.startswith("/"):
                        next_session = runner.run(_command(client, session, text))
                        if next_session is None:
                            break
                        session = next_session
                        continue
                    runner.run(_reply(session, text))
                except KeyboardInterrupt:  # stop the reply; what streamed is kept, interrupted
                    runner.run(session.abort())
                    err.print("\n[yellow]interrupted[/yellow]")
                except ParleyError as exc:
                    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        finally:
            runner.run(client.stop())


async def _open(client: Client, session_id: str | None, model: str | None, new: bool) -> Session:
    if session_id is None and not new:
        recent = await client.list_sessions(limit=1)
        session_id = recent[0].session_id if len(recent) else None
    if session_id is None:
        return await client.create_session(model=model)
    session = await client.resume_session(session_id)
    if model is not None:
        await session.set_model(model)
    return session


async def _command(client: Client, session: Session, text: str) -> Session | None:
    """Run a slash command; the session to go on with, or None to leave."""
    name, _, argument = text.strip().partition(" ")
    argument = argument.strip()
    if name == "/exit":
        return None
    if name == "/help":
        out.print(HELP, highlight=False, markup=False)
    elif name == "/sessions":
        await _sessions(client)
    elif name == "/model" and argument:
        await session.set_model(argument)
        err.print(f"model: {argument}", highlight=False)
    elif name == "/switch" and argument:
        session = await client.resume_session(argument)
        err.print(f"session {session.session_id} · {session.model}", highlight=False)
    elif name == "/new":
        session = await client.create_session(model=session.model)
        err.print(f"session {session.session_id} · {session.model}", highlight=False)
    else:
        err.print(f"unknown command {text.strip()!r}; /help lists them", highlight=False)
    return session
