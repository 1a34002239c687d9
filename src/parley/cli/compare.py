"""`parley compare ...`: run one conversation on several models, list and show past comparisons."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from parley.cli.app import app, err, out, run
from parley.client import Client
from parley.compare import fmt
from parley.comparison import Comparison, ComparisonReply, ComparisonRun, new_comparison_id

__all__ = ["compare", "read_turns"]

TURN_SEPARATOR = "---"


class _RunByDefault(TyperGroup):
    """`parley compare -m A -m B turns.txt` means `parley compare run ...`: a group whose
    first argument, when it names no subcommand, starts the `run` one."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if any(arg == "--store" or arg.startswith("--store=") for arg in args):
            ctx.fail("--store goes before the command: parley --store URL compare ...")
        if args and args[0] not in self.commands and args[0] != "--help":
            args = ["run", *args]
        return super().parse_args(ctx, args)


compare = typer.Typer(
    cls=_RunByDefault,
    help=(
        "Send one conversation to several models side by side "
        "(parley compare -m MODEL -m MODEL TURNS_FILE), and list or show past comparisons."
    ),
    no_args_is_help=True,
)
app.add_typer(compare, name="compare")


def read_turns(text: str) -> list[str]:
    """The user turns of a turns file: one per line; or, when the file has lines that are only
    ``---``, the blocks between them (so a turn can span lines). Blank turns are skipped."""
    lines = text.splitlines()
    if any(line.strip() == TURN_SEPARATOR for line in lines):
        blocks: list[list[str]] = [[]]
        for line in lines:
            if line.strip() == TURN_SEPARATOR:
                blocks.append([])
            else:
                blocks[-1].append(line)
        turns = ["\n".join(block).strip() for block in blocks]
    else:
        turns = [line.strip() for line in lines]
    return [turn for turn in turns if turn]


def _load_turns(file: str | None, given: list[str]) -> list[str]:
    turns = [text for text in given if text.strip()]
    if file is not None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            err.print(f"[red]error:[/red] cannot read turns from {file}: {exc}", highlight=False)
            raise typer.Exit(1) from None
        turns += read_turns(text)
    if not turns:
        err.print(
            "[red]error:[/red] no turns to send: give a file with one turn per line "
            "(or blocks separated by --- lines), or -t TEXT for each turn",
            highlight=False,
        )
        raise typer.Exit(2)
    return turns


@compare.command("run")
def run_(
    turns_file: Annotated[
        str | None,
        typer.Argument(
            help="The user turns: one per line, or blocks separated by '---' lines (- for stdin).",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        list[str],
        typer.Option("--model", "-m", help="A model to compare (two or more: repeat -m)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    turn: Annotated[
        list[str], typer.Option("--turn", "-t", help="A turn given inline (after the file's).")
    ] = [],  # noqa: B006
    system: Annotated[
        str | None, typer.Option("--system", "-s", help="The system message of every session.")
    ] = None,
    repeats: Annotated[
        int, typer.Option("--repeats", "-r", min=1, help="Runs per model, to see the spread.")
    ] = 1,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds without a token before a turn gives up.")
    ] = 60.0,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="At most this many turns at once (default: all).")
    ] = None,
    comparison_id: Annotated[
        str | None,
        typer.Option("--id", help="The comparison's id (default: 12 random hex digits)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten long replies.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON instead of tables.")
    ] = False,
) -> None:
    """Send the same turns to every model at once, each in a session of its own."""
    texts = _load_turns(turns_file, turn)
    if not models:
        err.print(
            "[red]error:[/red] name the models to compare: -m MODEL -m MODEL", highlight=False
        )
        raise typer.Exit(2)
    the_id = comparison_id or new_comparison_id()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]}"),
        TimeElapsedColumn(),
        console=err,
    )
    tasks = {
        model: progress.add_task(model, total=len(texts) * repeats, errors="") for model in models
    }
    failed = dict.fromkeys(models, 0)

    def on_reply(run: ComparisonRun, reply: ComparisonReply) -> None:
        if not reply.ok:
            failed[run.model] += 1
        errors = f"[red]{failed[run.model]} failed[/red]" if failed[run.model] else ""
        progress.update(tasks[run.model], advance=1, errors=errors)

    async def work(client: Client) -> Comparison:
        for model in models:  # an unknown model or a missing key: one line, no progress bars
            client.models.resolve(model)
        with progress:
            return await client.compare(
                texts,
                models=models,
                system_message=system,
                repeats=repeats,
                timeout=timeout,
                max_concurrency=concurrency,
                comparison_id=the_id,
                on_reply=on_reply,
            )

    try:
        comparison = run(work)
    except KeyboardInterrupt:
        err.print(
            f"stopped: what was answered is kept (parley compare show {the_id})", highlight=False
        )
        raise typer.Exit(130) from None
    _present(comparison, html=html, full=full, as_json=as_json)
    err.print(
        f"[dim]comparison {comparison.comparison_id} · saved; "
        f"parley compare show {comparison.comparison_id} --html report.html[/dim]",
        highlight=False,
    )
    if not any(reply.ok for run in comparison.runs for reply in run.replies):
        err.print("[red]error:[/red] no model answered any turn; see the errors above")
        raise typer.Exit(1)


@compare.command("list")
def list_(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Past comparisons, newest first."""

    async def work(client: Client) -> list[Comparison]:
        return list(await client.list_comparisons(limit=limit))

    found = run(work)
    if as_json:
        for c in found:
            print(json.dumps(_list_row(c), ensure_ascii=False))
        return
    table = Table()
    widest = max((len(c.comparison_id) for c in found), default=2)
    table.add_column("id", no_wrap=True, min_width=widest)  # ids are for copying: never cut
    table.add_column("created")
    table.add_column("models")
    for name in ("turns", "errors", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for c in found:
        table.add_row(
            c.comparison_id,
            c.created_at.strftime("%Y-%m-%d %H:%M"),
            "\n".join(c.models) + (f"\n{c.repeats} runs each" if c.repeats > 1 else ""),
            str(len(c.turns)),
            Text(str(c.errors), style="red" if c.errors else ""),
            fmt.cost(c.usage.cost),
            "done" if c.finished else "incomplete",
        )
    out.print(table)


def _list_row(c: Comparison) -> dict[str, Any]:
    return {
        "comparison_id": c.comparison_id,
        "created_at": c.created_at.isoformat(),
        "models": list(c.models),
        "turns": len(c.turns),
        "runs": len(c.runs),
        "errors": c.errors,
        "cost": c.usage.cost,
        "finished": c.finished,
    }


@compare.command()
def show(
    comparison_id: Annotated[str, typer.Argument(help="The comparison's id.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the self-contained HTML report here.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten long replies.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """A past comparison from the store: the side-by-side table, or the HTML report."""

    async def work(client: Client) -> Comparison:
        return await client.get_comparison(comparison_id)

    _present(run(work), html=html, full=full, as_json=as_json)


@compare.command()
def delete(
    comparison_id: Annotated[str, typer.Argument(help="The comparison's id.")],
    keep_sessions: Annotated[
        bool, typer.Option("--keep-sessions", help="Delete the comparison only.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a comparison and the sessions it made."""
    what = "comparison" if keep_sessions else "comparison and its sessions"
    if not yes:
        typer.confirm(f"Delete {what} {comparison_id}?", abort=True)

    async def work(client: Client) -> None:
        await client.delete_comparison(comparison_id, sessions=not keep_sessions)

    run(work)
    err.print(f"deleted {what} {comparison_id}", highlight=False)


# --- presenting -------------------------------------------------------------------------------


def _present(c: Comparison, *, html: Path | None, full: bool, as_json: bool) -> None:
    if html is not None:
        try:
            html.write_text(c.to_html(), encoding="utf-8")
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot write {html}: {exc}", highlight=False)
            raise typer.Exit(1) from None
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        print(json.dumps(c.to_dict(), ensure_ascii=False, indent=2))
        return
    out.print(side_by_side(c, full=full))
    out.print(totals(c))
    if not c.finished:
        out.print("[yellow]incomplete: the comparison stopped before every turn was answered")
    if c.repeats > 1:
        out.print(
            f"[dim]replies shown from run 1 of {c.repeats}; the totals count every run, "
            "and --html shows them all[/dim]"
        )


_SHORT = 600
"""Characters of a reply shown in the terminal table unless --full."""


def _cell(reply: ComparisonReply | None, full: bool) -> Group | Text:
    if reply is None:
        return Text("not answered", style="dim italic")
    body = reply.text if full or len(reply.text) <= _SHORT else reply.text[:_SHORT] + " …"
    stats = Text(
        f"{fmt.seconds(reply.latency)} · first {fmt.seconds(reply.first_token)} · "
        f"{fmt.tokens(reply.usage.total_tokens)} tok · {fmt.cost(reply.usage.cost)}",
        style="dim",
    )
    if not reply.ok:
        error = Text(f"{reply.error_type}: {reply.error}", style="red")
        return Group(error, Text(body), stats) if body else Group(error, stats)
    return Group(Text(body), stats)


def side_by_side(c: Comparison, *, full: bool = False) -> Table:
    """One row per turn, one column per model (its first run), as the terminal shows it."""
    table = Table(title=f"comparison {c.comparison_id}", show_lines=True, expand=True)
    table.add_column("turn", ratio=1)
    for model in c.models:
        table.add_column(model, ratio=2)
    for n, prompt in enumerate(c.turns):
        cells = [_cell(c.reply(n, model), full) for model in c.models]
        table.add_row(Text(f"{n + 1}. {prompt}", style="bold"), *cells)
    return table


def totals(c: Comparison) -> Table:
    """Per model: turns answered, errors, median latency and first token, tokens, cost."""
    table = Table(title="totals", caption="latency and first token: medians of the answered turns")
    table.add_column("model", no_wrap=True)
    for name in ("answered", "errors", "latency", "1st token", "in tok", "out tok", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in c.summaries():
        table.add_row(
            s.model,
            f"{s.ok}/{s.turns}",
            Text(str(s.errors), style="red" if s.errors else ""),
            fmt.seconds(s.latency),
            fmt.seconds(s.first_token),
            fmt.tokens(s.usage.input_tokens),
            fmt.tokens(s.usage.output_tokens),
            fmt.cost(s.usage.cost),
        )
    return table
