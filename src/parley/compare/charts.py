"""Bar charts as inline SVG: no script and no library, so a report opens anywhere, offline."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal, TypeAlias

__all__ = ["PALETTE", "Axis", "Series", "axis_labels", "bar_chart", "color", "nice_ticks"]

Axis: TypeAlias = Literal["seconds", "count", "dollars"]

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
)
"""The first colours, one per model in the order given (Tableau 10: they tell apart well)."""


def color(index: int) -> str:
    """The colour of the `index`-th series: the palette's, then hues a golden angle apart, so
    that no two series of a chart ever share one."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index - len(PALETTE)) * 0.618033988749895 % 1.0
    shade = 0.42 if (index - len(PALETTE)) // 7 % 2 else 0.55
    r, g, b = colorsys.hls_to_rgb(hue, shade, 0.6)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


_WIDTH = 720
_HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 16, 44


@dataclass(frozen=True, slots=True)
class Series:
    """One model's bars: a value per category; None where there is none (a failed turn)."""

    name: str
    color: str
    values: Sequence[float | None]
    notes: Sequence[str] = ()
    """Per category, a word shown instead of a missing bar (such as "error")."""
    colors: Sequence[str] = ()
    """Per category, a colour instead of `color` (one colour per model on a chart by model)."""

    def color_of(self, category: int) -> str:
        return self.colors[category] if category < len(self.colors) else self.color


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least `top`: steps of 1, 2 or 5 times a power of ten."""
    if not math.isfinite(top) or top < 1e-9:  # nothing to scale (or below a nanosecond)
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-12:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def axis_labels(ticks: Sequence[float], axis: Axis) -> list[str]:
    """Tick labels with as many decimals as the step needs, in one unit for the whole axis."""
    scale, prefix, suffix = 1.0, "", ""
    if axis == "seconds":
        scale, suffix = (1000.0, " ms") if ticks[-1] < 1 else (1.0, " s")
    elif axis == "dollars":
        prefix = "$"
    step = (ticks[1] - ticks[0]) * scale if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return [f"{prefix}{tick * scale:,.{decimals}f}{suffix}" for tick in ticks]


def bar_chart(
    chart: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    axis: Axis,
    fmt: Callable[[float], str],
    stacked: bool = False,
) -> str:
    """An SVG of grouped bars (one group per category, one bar per series), or of stacked ones.

    `axis` says how the ticks read; `fmt` writes a bar's own value in its tooltip. Each bar
    carries ``data-series``, ``data-category`` and ``data-value``, and a tooltip.
    """
    series = [_finite(one) for one in series]
    values = [v for s in series for v in s.values if v is not None]
    if stacked:
        sums = [sum(s.values[i] or 0.0 for s in series) for i in range(len(categories))]
        top = max(sums, default=0.0)
    else:
        top = max(values, default=0.0)
    ticks = nice_ticks(top)
    ceiling = ticks[-1]
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - value / ceiling)

    parts = [
        f'<svg class="chart" data-chart="{escape(chart)}" role="img" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" height="{_HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for tick, label in zip(ticks, axis_labels(ticks, axis), strict=True):
        ty = y(tick)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{_LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#555">'
            f"{escape(label)}</text>"
        )
    group_w = plot_w / max(len(categories), 1)
    bars = 1 if stacked else max(len(series), 1)
    bar_w = min(group_w * 0.8 / bars, 48)
    for c, category in enumerate(categories):
        left = _LEFT + c * group_w + (group_w - bar_w * bars) / 2
        base = 0.0
        for s_index, one in enumerate(series):
            value = one.values[c] if c < len(one.values) else None
            x = left if stacked else left + s_index * bar_w
            if value is None:
                note = one.notes[c] if c < len(one.notes) else ""
                if note and not stacked:
                    parts.append(
                        f'<text class="note" x="{x + bar_w / 2:.1f}" y="{y(0) - 4:.1f}" '
                        f'text-anchor="middle" fill="{one.color_of(c)}" font-size="10" '
                        f'data-series="{escape(one.name)}" data-category="{escape(category)}">'
                        f"{escape(note)}</text>"
                    )
                continue
            top_y, bottom_y = y(base + value), y(base)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{top_y:.1f}" width="{bar_w * 0.92:.1f}" '
                f'height="{max(bottom_y - top_y, 0.5):.1f}" fill="{one.color_of(c)}" '
                f'data-series="{escape(one.name)}" data-category="{escape(category)}" '
                f'data-value="{value!r}"><title>{escape(one.name)} · {escape(category)}: '
                f"{escape(fmt(value))}</title></rect>"
            )
            if stacked:
                base += value
        parts.append(
            f'<text x="{_LEFT + (c + 0.5) * group_w:.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
            f'text-anchor="middle" fill="#333">{escape(_short(category))}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'stroke="#888"/></svg>'
    )
    return "".join(parts)


def _finite(one: Series) -> Series:
    """NaN and infinities, which no bar can show, read as missing."""
    clean = [v if v is not None and math.isfinite(v) else None for v in one.values]
    return Series(one.name, one.color, clean, one.notes, one.colors)


def _short(label: str, most: int = 28) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"
