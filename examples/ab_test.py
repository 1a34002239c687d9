"""A/B test: one support conversation sent to two models at once, compared turn by turn.

`client.compare` makes one ordinary session per model and run, tagged with the comparison's
id; every session gets the same user turns and keeps its own history, so each model's second
answer follows its own first one. Each turn is measured from its send (latency, time to first
token, tokens, cost); the comparison is kept in the store, and `to_html()` writes a
self-contained report with the replies side by side and plots (it opens offline).

By default it runs offline, with no key: the two "models" are `parley.testing.FakeLLMServer`s
on 127.0.0.1, one quick and one slower, reached over HTTP through parley's OpenAI and
Anthropic adapters and priced as the vendors' models of those names. With models given, it uses
your providers instead (keys from the environment, such as OPENAI_API_KEY):

    python examples/ab_test.py
    python examples/ab_test.py -m openai:gpt-5 -m anthropic:claude-sonnet-4-5 --repeats 3

The same from the command line: `parley compare -m MODEL -m MODEL turns.txt --html report.html`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from parley import Client, ClientConfig, Comparison, ParleyError, ProviderConfig

TURNS = [
    "My order #1042 arrived with a cracked screen. What are my options?",
    "I'd rather have a refund. How long does it take?",
    "Summarise what we agreed in one sentence.",
]
SYSTEM = "You are a concise, friendly support agent for an electronics shop."
OFFLINE_MODELS = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]


@contextlib.asynccontextmanager
async def offline_providers() -> AsyncIterator[dict[str, ProviderConfig]]:
    """Two fake endpoints with different speeds, standing in for OpenAI and Anthropic."""
    from parley.testing import FakeLLMServer

    async with (
        FakeLLMServer(
            time_to_first_token=0.05, tokens_per_second=400, models=("gpt-4o-mini",)
        ) as quick,
        FakeLLMServer(
            time_to_first_token=0.25, tokens_per_second=120, models=("claude-haiku-4-5",)
        ) as slower,
    ):
        yield {
            "openai": ProviderConfig(type="openai", base_url=quick.openai_base_url, api_key="-"),
            "anthropic": ProviderConfig(
                type="anthropic", base_url=slower.anthropic_base_url, api_key="-"
            ),
        }


def report(comparison: Comparison) -> None:
    print(f"comparison {comparison.comparison_id}: {len(comparison.turns)} turns")
    for n, turn in enumerate(comparison.turns):
        print(f"\nturn {n + 1}: {turn}")
        for model in comparison.models:
            reply = comparison.reply(n, model)
            if reply is None:
                continue
            if reply.ok:
                print(f"  {model} ({reply.latency * 1000:.0f} ms):")
                print(textwrap.indent(textwrap.fill(reply.text, 92), "    "))
            else:
                print(f"  {model}: {reply.error_type}: {reply.error}")
    print("\ntotals (medians over answered turns):")
    for s in comparison.summaries():
        cost = "unknown" if s.usage.cost is None else f"${s.usage.cost:.6f}"
        latency = "-" if s.latency is None else f"{s.latency * 1000:.0f} ms"
        first = "-" if s.first_token is None else f"{s.first_token * 1000:.0f} ms"
        print(
            f"  {s.model:<28} answered {s.ok}/{s.turns}  latency {latency:>7}  "
            f"first token {first:>7}  tokens {s.usage.total_tokens:>5}  cost {cost}"
        )
    answered = [s for s in comparison.summaries() if s.latency is not None]
    if len(answered) > 1:
        fastest = min(answered, key=lambda s: s.latency or 0.0)
        print(f"\nfastest: {fastest.model}")


async def main(models: list[str], repeats: int, html: Path, store: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        providers: dict[str, ProviderConfig] = {}
        if not models:
            providers = await stack.enter_async_context(offline_providers())
            models = OFFLINE_MODELS
            print("offline: two fake models on FakeLLMServer (127.0.0.1), priced as the vendors'")
        config = ClientConfig(providers=providers, config_files=not providers)
        client = await stack.enter_async_context(Client(store=store, config=config))

        comparison = await client.compare(
            TURNS,
            models=models,
            system_message=SYSTEM,
            repeats=repeats,
            on_reply=lambda run, reply: print(
                f"  . {run.model} run {run.repeat + 1}: turn {len(run.replies)} "
                + ("ok" if reply.ok else f"failed ({reply.error_type})"),
                file=sys.stderr,
            ),
        )
        report(comparison)

        await asyncio.to_thread(html.write_text, comparison.to_html(), encoding="utf-8")
        print(f"\nwrote {html}: replies side by side, plots of latency, tokens and cost")

        # Kept in the store, and its sessions are ordinary ones, tagged with its id.
        listed = await client.list_comparisons(limit=5)
        tagged = await client.list_sessions(metadata={"comparison": comparison.comparison_id})
        print(f"listed comparisons: {[c.comparison_id for c in listed]}")
        print(f"its sessions: {sorted(info.model for info in tagged)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", action="append", default=[], help="A model to compare")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per model")
    parser.add_argument("--html", type=Path, default=Path("ab_report.html"), help="Report path")
    parser.add_argument("--store", default="memory://", help="Store URL (default memory://)")
    args = parser.parse_args()
    if len(args.model) == 1:
        parser.error("compare two models or more: -m MODEL -m MODEL (or none, to run offline)")
    try:
        asyncio.run(main(args.model, args.repeats, args.html, args.store))
    except ParleyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
