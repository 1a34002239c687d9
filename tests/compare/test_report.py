"""The HTML report: its numbers, its safety, and how a real headless Chromium renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from parley import Client, ClientConfig, Comparison, ComparisonReply, ComparisonRun, RetryPolicy
from parley.compare.charts import axis_labels, nice_ticks
from parley.compare.report import model_colors
from parley.config import ProviderConfig
from parley.testing import FakeLLMServer, FakeReply, Fault

TURNS = ["Name three rivers", "Which is the longest?"]


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and all(attrs.get(k.replace("_", "-")) == v for k, v in wanted.items())
        ]


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


@pytest.fixture
async def compared(tmp_path: Path) -> AsyncIterator[Comparison]:
    """A real comparison: two models on two FakeLLMServers, one turn failing."""
    async with (
        FakeLLMServer(models=("gpt-4o",)) as fast,
        FakeLLMServer(time_to_first_token=0.05, models=("claude-sonnet-4-6",)) as slow,
    ):
        fast.script(
            FakeReply(text="Tagus, Douro <and> Guadiana.", input_tokens=120, output_tokens=30),
            FakeReply(text="The Tagus.", input_tokens=200, output_tokens=12),
        )
        slow.script(FakeReply(text="Nile, Amazon, Yangtze."), Fault.server_error(500))
        providers = {
            "openai": ProviderConfig(type="openai", base_url=fast.openai_base_url, api_key="k"),
            "anthropic": ProviderConfig(
                type="anthropic", base_url=slow.anthropic_base_url, api_key="k"
            ),
        }
        config = ClientConfig(
            providers=providers, retry=RetryPolicy(max_attempts=1), config_files=False
        )
        async with Client(store="memory://", config=config) as client:
            yield await client.compare(
                TURNS, models=["openai:gpt-4o", "anthropic:claude-sonnet-4-6"]
            )


def test_the_plots_carry_the_comparisons_numbers(compared: Comparison) -> None:
    page = parse(compared.to_html())
    charts = {attrs["data-chart"] for attrs in page.having("svg")}
    assert charts == {"latency", "first_token", "tokens", "cost"}
    for model in compared.models:
        for n in range(len(TURNS)):
            reply = compared.reply(n, model)
            assert reply is not None
            bars = [
                a
                for a in page.having("rect", data_series=model, data_category=f"turn {n + 1}")
                if a["class"] == "bar"
            ]
            if reply.ok:
                first, latency = sorted(float(b["data-value"]) for b in bars)
                assert latency == pytest.approx(reply.latency)
                assert first == pytest.approx(reply.first_token)
            else:
                assert bars == []  # a failed turn has no bar, but a note in its place
        summary = compared.summary(model)
        tokens = {
            b["data-series"]: float(b["data-value"])
            for b in page.having("rect")
            if b.get("data-category") == model and b["data-series"] in ("input", "output")
        }
        assert tokens == {
            "input": summary.usage.input_tokens,
            "output": summary.usage.output_tokens,
        }
    cost = page.having("rect", data_series="cost", data_category="openai:gpt-4o")
    assert float(cost[0]["data-value"]) == pytest.approx(
        compared.summary("openai:gpt-4o").usage.cost
    )


def test_the_report_is_self_contained_and_escapes_what_models_say() -> None:
    hostile = ComparisonReply(
        text='<script>alert("x")</script><img src="http://example.com/x.png">', latency=0.2
    )
    comparison = Comparison(
        comparison_id="c-<1>",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        turns=("<b>bold?</b>",),
        models=("m&m",),
        runs=(ComparisonRun(model="m&m", repeat=0, session_id="s", replies=(hostile,)),),
    )
    html = comparison.to_html()
    page = parse(html)
    assert not page.having("script")
    assert not page.having("img")
    assert "&lt;script&gt;" in html
    assert "<b>bold?</b>" not in html
    assert "".join(page.text).count("<b>bold?</b>") == 1  # shown as text, once
    # nothing to fetch: no element with a source or a link, no stylesheet import or url()
    assert not [attrs for _, attrs in page.tags if {"src", "href"} & attrs.keys()]
    assert not re.search(r"@import|url\(", html)


def test_axes_read_in_round_steps() -> None:
    assert nice_ticks(0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(1234) == [0.0, 500.0, 1000.0, 1500.0]
    assert nice_ticks(0) == [0.0, 1.0]
    assert axis_labels([0.0, 0.1, 0.2], "seconds") == ["0 ms", "100 ms", "200 ms"]
    assert axis_labels([0.0, 0.0005, 0.001], "seconds") == ["0.0 ms", "0.5 ms", "1.0 ms"]
    assert axis_labels([0.0, 2.0, 4.0], "seconds") == ["0 s", "2 s", "4 s"]
    assert axis_labels([0.0, 0.002, 0.004], "dollars") == ["$0.000", "$0.002", "$0.004"]
    assert axis_labels([0.0, 500.0, 1000.0], "count") == ["0", "500", "1,000"]


# --- in a real browser ---------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed; scripts/test installs it (apt-get install chromium)"
        )
    return found


def browse(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with every host unresolvable, so the page must render offline."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_chromium_renders_the_replies_and_the_plots(compared: Comparison, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(compared.to_html(), encoding="utf-8")

    dom = parse(browse(tmp_path, report, "--dump-dom").stdout)
    text = "".join(dom.text)
    for run in compared.runs:
        for reply in run.replies:
            assert reply.text in text  # "<and>" arrives as text, decoded once
    assert "ProviderUnavailableError" in text
    assert len(dom.having("svg")) == 4
    assert len([a for a in dom.having("rect") if a.get("class") == "bar"]) >= 8

    shot = tmp_path / "report.png"
    browse(tmp_path, report, f"--screenshot={shot}", "--window-size=1400,1600")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 1600)
    colors = image.getcolors(maxcolors=1_000_000)
    assert colors is not None
    assert len(colors) > 50  # text, lines and bars: not a blank page
    white = max(count for count, rgb in colors if rgb == (255, 255, 255))
    assert white < 0.97 * image.size[0] * image.size[1]
    # every model's bars are drawn in its own colour
    counts = {rgb: count for count, rgb in colors}
    for model, color in model_colors(compared).items():
        assert counts.get(hex_rgb(color), 0) > 500, f"no bars of {model} ({color}) on screen"
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 10  # light and dark, not one tone


def test_odd_data_never_draws_outside_the_plot() -> None:
    from parley.compare.charts import Series, bar_chart
    from parley.compare.fmt import seconds

    nan, inf = float("nan"), float("inf")
    svg = bar_chart(
        "latency",
        "odd",
        ["turn 1", "turn 2", "turn 3"],
        [Series("m", "#000000", [nan, 2.0, inf])],
        axis="seconds",
        fmt=seconds,
    )
    page = parse(svg)
    bars = page.having("rect")
    assert [b["data-value"] for b in bars] == ["2.0"]  # NaN and infinity read as missing
    for bar in bars:
        assert 0 <= float(bar["y"]) <= 260
        assert 0 < float(bar["height"]) <= 260
    assert "nan" not in svg.lower().replace("nanos", "")
    assert "inf" not in svg
    assert nice_ticks(5e-324) == [0.0, 1.0]
    with pytest.raises(ValueError, match="finite"):
        ComparisonReply.from_dict({"text": "", "latency": "NaN"})


def test_every_model_keeps_a_colour_of_its_own() -> None:
    models = tuple(f"m{n}" for n in range(24))
    comparison = Comparison(
        comparison_id="many",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        turns=("hi",),
        models=models,
        runs=tuple(
            ComparisonRun(
                model=m, repeat=0, session_id=m, replies=(ComparisonReply(text="", latency=0.1),)
            )
            for m in models
        ),
    )
    colors = model_colors(comparison)
    assert len(set(colors.values())) == len(models)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors.values())
    # a turn answered with no text: no first-token bar, and the note says so (not "error")
    notes = parse(comparison.to_html()).having("text", data_series="m0", data_category="turn 1")
    assert notes == [notes[0]]
    assert (
        "error" not in comparison.to_html().split('data-chart="first_token"')[1].split("</svg>")[0]
    )
    assert "no text" in comparison.to_html()
