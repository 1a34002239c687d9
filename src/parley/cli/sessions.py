"""`parley sessions ...`: list, show and delete stored sessions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from parley.cli.app import app, err, out, run
from parley.client import Client
from parley.info import SessionInfo
from parley.messages import Message, TextPart, ToolCallPart, ToolResultPart

__all__ = ["sessions"]

sessions = typer.Typer(
    help="List, show, delete, export, import and tag sessions.", no_args_is_help=True
)
app.add_typer(sessions, name="sessions")


def _info_dict(info: SessionInfo) -> dict[str, object]:
    return {
        "session_id": info.session_id,
        "model": info.model,
        "title": info.title,
        "messages": info.message_count,
        "input_tokens": info.usage.input_tokens,
        "output_tokens": info.usage.output_tokens,
        "cost": info.usage.cost,
        "metadata": dict(info.metadata),
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
    }


@sessions.command("list")
def list_(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", help="Only sessions with this metadata key.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The most recently updated sessions first."""

    async def work(client: Client) -> list[SessionInfo]:
        return list(await client.list_sessions(limit=limit, model=model, tag=tag))

    found = run(work)
    if as_json:
        for info in found:
            print(json.dumps(_info_dict(info)))
        return
    table = Table()
    widest = max((len(info.session_id) for info in found), default=2)
    table.add_column("id", no_wrap=True, min_width=widest)  # ids are for copying: never cut
    table.add_column("model", no_wrap=True)
    for name in ("messages", "tokens", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("title", overflow="ellipsis", no_wrap=True)
    for info in found:
        cost = "?" if info.usage.cost is None else f"${info.usage.cost:.4f}"
        table.add_row(
            info.session_id,
            info.model,
            str(info.message_count),
            str(info.usage.total_tokens),
            cost,
            info.updated_at.strftime("%Y-%m-%d %H:%M"),
            info.title or "",
        )
    out.print(table)


def _markdown(message: Message) -> str:
    lines = [f"**{message.role}**" + (" *(interrupted)*" if message.interrupted else "")]
    for part in message.parts:
        if isinstance(part, TextPart):
            lines.append(part.text)
        elif isinstance(part, ToolCallPart):
            lines.append(f"`{part.name}({json.dumps(part.arguments)})`")
        elif isinstance(part, ToolResultPart):
            lines.append(f"> {'error: ' if part.is_error else ''}{part.content}")
    return "\n\n".join(lines)


@sessions.command()
def show(session_id: Annotated[str, typer.Argument(help="The session's id.")]) -> None:
    """A session's history, as Markdown."""

    async def work(client: Client) -> tuple[SessionInfo, list[Message]]:
        info = await client.get_session(session_id)
        return info, await (await client.resume_session(session_id)).messages()

    info, history = run(work)
    out.print(f"[bold]{info.session_id}[/bold] · {info.model} · {info.title or ''}")
    out.print(Markdown("\n\n---\n\n".join(_markdown(m) for m in history) or "*(empty)*"))


@sessions.command()
def delete(
    session_ids: Annotated[list[str], typer.Argument(help="The ids to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete sessions and their histories."""
    if not yes:
        typer.confirm(f"Delete {len(session_ids)} session(s) and their histories?", abort=True)

    async def work(client: Client) -> None:
        for session_id in session_ids:
            await client.delete_session(session_id)
            err.print(f"deleted {session_id}", highlight=False)

    run(work)


@sessions.command("export")
def export(session_id: Annotated[str, typer.Argument(help="The session's id.")]) -> None:
    """Print a session (settings and whole history) as JSON; `sessions import` reads it back."""

    async def work(client: Client) -> dict[str, object]:
        return await client.export_session(session_id)

    print(json.dumps(run(work), ensure_ascii=False, indent=2))


@sessions.command("import")
def import_(
    file: Annotated[
        typer.FileText, typer.Argument(help="A file written by `sessions export` (- for stdin).")
    ],
) -> None:
    """Recreate an exported session in this store, with the same id and history."""
    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] {file.name} is not JSON: {exc}", highlight=False)
        raise typer.Exit(1) from None

    async def work(client: Client) -> SessionInfo:
        return await client.import_session(data)

    info = run(work)
    err.print(f"imported {info.session_id} ({info.message_count} messages)", highlight=False)


@sessions.command()
def tag(
    session_id: Annotated[str, typer.Argument(help="The session's id.")],
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs; KEY= removes a key.")],
) -> None:
    """Set (or remove) metadata tags on a session."""
    changes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            err.print(f"[red]error:[/red] {pair!r} is not KEY=VALUE", highlight=False)
            raise typer.Exit(2)
        changes[key] = value

    async def work(client: Client) -> SessionInfo:
        metadata = dict((await client.get_session(session_id)).metadata)
        for key, value in changes.items():
            if value:
                metadata[key] = value
            else:
                metadata.pop(key, None)
        return await client.update_session(session_id, metadata=metadata)

    info = run(work)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(info.metadata.items())) or "no tags"
    err.print(f"{info.session_id}: {shown}", highlight=False)
