"""examples/ab_test.py, run as a user runs it: a real process, offline, on two fake models."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import RunPython

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ab_test.py"


def test_the_ab_example_compares_two_fake_models_offline(
    run_python: RunPython, tmp_path: Path
) -> None:
    done = run_python(str(EXAMPLE), "--repeats", "2", "--html", "report.html")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    flat = " ".join(out.split())  # the replies are wrapped for the terminal
    assert "offline: two fake models on FakeLLMServer" in out
    # Each model's third answer follows its own history: three user messages, the first quoted.
    assert flat.count("(user message #3;") == 2
    assert flat.count('first: "My order #1042') == 6
    # Totals: every turn of both runs answered; the slower server is slower at the first token.
    firsts = dict(re.findall(r"  (\S+) +answered 6/6 .* first token +(\d+) ms", out))
    assert set(firsts) == {"openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"}
    assert int(firsts["anthropic:claude-haiku-4-5"]) >= 250  # the server waits 0.25 s
    assert int(firsts["openai:gpt-4o-mini"]) < int(firsts["anthropic:claude-haiku-4-5"])
    assert "fastest: openai:gpt-4o-mini" in out
    # Progress went to standard error, one line per turn of each of the four runs.
    assert done.stderr.count(" ok") == 12
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="chart"') == 4
    assert "My order #1042" in html
    # two runs per model, each an ordinary session tagged with the comparison's id
    assert (
        "its sessions: ['anthropic:claude-haiku-4-5', 'anthropic:claude-haiku-4-5', "
        "'openai:gpt-4o-mini', 'openai:gpt-4o-mini']" in out
    )


def test_one_model_is_refused_with_a_usage_message(run_python: RunPython) -> None:
    done = run_python(str(EXAMPLE), "-m", "echo")
    assert done.returncode == 2
    assert "compare two models or more" in done.stderr
