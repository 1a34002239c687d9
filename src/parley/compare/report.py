"""A comparison as one self-contained HTML page: totals, plots (inline SVG) and the replies side
by side. No script, no font or stylesheet to fetch: it opens the same offline, from a file."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from html import escape

from parley.compare import fmt
from parley.compare.charts import Series, bar_chart, color
from parley.comparison import Comparison, ComparisonReply

__all__ = ["model_colors", "render_html"]

_STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1400px; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 12px; }
h3 { font-size: 15px; margin: 0 0 6px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
.meta { color: #555; margin: 0 0 8px; }
.system { background: #f5f5f7; border-radius: 6px; padding: 8px 12px; white-space: pre-wrap; }
table { border-collapse: collapse; } th, td { padding: 6px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #ccc; } tbody td { border-bottom: 1px solid #eee; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; vertical-align: baseline; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 24px; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
.legend { color: #444; font-size: 12px; margin: 2px 0 4px; } .legend span { margin-right: 14px; }
svg.chart { max-width: 100%; height: auto; }
.turn { border-top: 1px solid #ddd; padding: 16px 0; }
.prompt { background: #f5f5f7; border-left: 4px solid #999; margin: 0 0 12px; padding: 8px 12px;
          white-space: pre-wrap; }
.columns { display: grid; gap: 16px; }
.reply { border: 1px solid #ddd; border-top-width: 4px; border-radius: 6px; padding: 8px 12px;
         min-width: 0; margin-bottom: 8px; }
.reply .stats { color: #555; font-size: 12px; margin-bottom: 6px; }
.reply .text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: inherit; }
.reply.failed { background: #fff5f5; }
.error { color: #b00020; font-weight: 600; margin: 0 0 6px; }
.missing { color: #888; font-style: italic; }
footer { color: #888; margin-top: 40px; font-size: 12px; }
"""


def model_colors(comparison: Comparison) -> dict[str, str]:
    """One colour per model, in the order given; the same in every plot and column."""
    return {m: color(i) for i, m in enumerate(comparison.models)}


def render_html(comparison: Comparison) -> str:
    """The whole report, as one HTML document."""
    from parley import __version__

    c = comparison
    title = f"parley comparison {c.comparison_id}"
    status = "finished" if c.finished else "incomplete (stopped before every turn was answered)"
    meta = (
        f"{c.created_at:%Y-%m-%d %H:%M:%S} UTC · {len(c.turns)} turn(s) · "
        f"{len(c.models)} model(s) · {c.repeats} run(s) per model · {status}"
    )
    body = [
        f"<header><h1>Comparison <code>{escape(c.comparison_id)}</code></h1>",
        f'<p class="meta">{escape(meta)}</p>',
    ]
    if c.system_message:
        body.append(f'<div class="system"><b>System:</b> {escape(c.system_message)}</div>')
    body.append("</header>")
    body.append(_summary(c))
    body.append(_plots(c))
    body.append(_replies(c))
    body.append(f"<footer>Made by parley {escape(__version__)}.</footer>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def _summary(c: Comparison) -> str:
    colors = model_colors(c)
    rows = []
    for s in c.summaries():
        rows.append(
            f'<tr data-model="{escape(s.model)}"><td>{_swatch(colors[s.model])}'
            f"<code>{escape(s.model)}</code></td><td>{s.ok} / {s.turns}</td>"
            f"<td>{s.errors}</td><td>{fmt.seconds(s.latency)}</td>"
            f"<td>{fmt.seconds(s.first_token)}</td><td>{fmt.tokens(s.usage.input_tokens)}</td>"
            f"<td>{fmt.tokens(s.usage.output_tokens)}</td><td>{fmt.cost(s.usage.cost)}</td></tr>"
        )
    head = (
        "<tr><th>model</th><th>answered</th><th>errors</th><th>latency (median)</th>"
        "<th>first token (median)</th><th>input tokens</th><th>output tokens</th>"
        "<th>cost</th></tr>"
    )
    return (
        f'<section id="summary"><h2>Totals</h2><table><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _per_turn(
    c: Comparison, model: str, measure: Callable[[ComparisonReply], float | None]
) -> tuple[list[float | None], list[str]]:
    """Per turn, the mean of `measure` over the runs that answered it well, or a note why not."""
    values: list[float | None] = []
    notes: list[str] = []
    runs = c.runs_of(model)
    for turn in range(len(c.turns)):
        replies = [run.replies[turn] for run in runs if turn < len(run.replies)]
        good = [v for r in replies if r.ok and (v := measure(r)) is not None]
        values.append(statistics.fmean(good) if good else None)
        if good or (replies and all(r.ok for r in replies)):
            notes.append("" if good else "no text")  # answered, with nothing streamed
        else:
            notes.append("error" if replies else "—")
    return values, notes


def _figure(caption: str, legend: Sequence[tuple[str, str]], svg: str) -> str:
    keys = "".join(f"<span>{_swatch(color)}{escape(name)}</span>" for name, color in legend)
    head = f"<figcaption>{escape(caption)}</figcaption>"
    return f'<figure>{head}<div class="legend">{keys}</div>{svg}</figure>'


def _plots(c: Comparison) -> str:
    colors = model_colors(c)
    legend = [(m, colors[m]) for m in c.models]
    turns = [f"turn {n + 1}" for n in range(len(c.turns))]
    latency = [Series(m, colors[m], *_per_turn(c, m, lambda r: r.latency)) for m in c.models]
    first = [Series(m, colors[m], *_per_turn(c, m, lambda r: r.first_token)) for m in c.models]
    summaries = c.summaries()
    models = list(c.models)
    model_colors_in_order = [colors[m] for m in models]
    token_series = [
        Series("input", "#9ab7d3", [float(s.usage.input_tokens) for s in summaries]),
        Series("output", "#2f5d8a", [float(s.usage.output_tokens) for s in summaries]),
    ]
    costs = [s.usage.cost for s in summaries]
    cost_series = [
        Series(
            "cost",
            "#59a14f",
            costs,
            notes=["price unknown" if v is None else "" for v in costs],
            colors=model_colors_in_order,
        )
    ]
    mean = " (mean over runs)" if c.repeats > 1 else ""
    figures = [
        _figure(
            f"Latency per turn{mean}",
            legend,
            bar_chart(
                "latency", "Latency per turn", turns, latency, axis="seconds", fmt=fmt.seconds
            ),
        ),
        _figure(
            f"Time to first token per turn{mean}",
            legend,
            bar_chart(
                "first_token",
                "Time to first token",
                turns,
                first,
                axis="seconds",
                fmt=fmt.seconds,
            ),
        ),
        _figure(
            "Tokens per model (all runs)",
            [("input", "#9ab7d3"), ("output", "#2f5d8a")],
            bar_chart(
                "tokens",
                "Tokens per model",
                models,
                token_series,
                axis="count",
                fmt=fmt.tokens,
                stacked=True,
            ),
        ),
        _figure(
            "Cost per model (all runs)",
            legend,
            bar_chart("cost", "Cost per model", models, cost_series, axis="dollars", fmt=fmt.cost),
        ),
    ]
    return (
        f'<section id="plots"><h2>Plots</h2><div class="plots">{"".join(figures)}</div></section>'
    )


def _reply(model: str, turn: int, repeat: int, reply: ComparisonReply | None, color: str) -> str:
    where = f'data-model="{escape(model)}" data-turn="{turn}" data-repeat="{repeat}"'
    label = f"<code>{escape(model)}</code>" + (f" · run {repeat + 1}" if repeat else "")
    if reply is None:
        return (
            f'<div class="reply" {where} style="border-top-color:{color}">{label}'
            '<p class="missing">not answered: the comparison stopped first</p></div>'
        )
    stats = (
        f"{fmt.seconds(reply.latency)} · first token {fmt.seconds(reply.first_token)} · "
        f"{fmt.tokens(reply.usage.input_tokens)} in / {fmt.tokens(reply.usage.output_tokens)} "
        f"out · {fmt.cost(reply.usage.cost)}"
    )
    error = ""
    if not reply.ok:
        why = f"{reply.error_type or 'Error'}: {reply.error or ''}"
        error = f'<p class="error">{escape(why)}</p>'
    state = "reply" if reply.ok else "reply failed"
    return (
        f'<div class="{state}" {where} style="border-top-color:{color}">'
        f'<div class="stats">{label} · {escape(stats)}</div>{error}'
        f'<pre class="text">{escape(reply.text)}</pre></div>'
    )


def _replies(c: Comparison) -> str:
    colors = model_colors(c)
    turns = []
    for n, prompt in enumerate(c.turns):
        columns = []
        for model in c.models:
            boxes = [
                _reply(model, n, repeat, c.reply(n, model, repeat), colors[model])
                for repeat in range(c.repeats)
            ]
            columns.append(f"<div>{''.join(boxes)}</div>")
        grid = f"grid-template-columns: repeat({len(c.models)}, minmax(0, 1fr))"
        turns.append(
            f'<article class="turn" data-turn="{n}"><h3>Turn {n + 1}</h3>'
            f'<blockquote class="prompt">{escape(prompt)}</blockquote>'
            f'<div class="columns" style="{grid}">{"".join(columns)}</div></article>'
        )
    return f'<section id="replies"><h2>Replies</h2>{"".join(turns)}</section>'
