"""examples/tools.py, run as a user runs it: a real process, offline, on the fake model."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import RunPython

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tools.py"


def test_the_tools_example_runs_offline_on_a_fake_model(run_python: RunPython) -> None:
    done = run_python(str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "a fake model (FakeLLMServer at http://127.0.0.1:" in out

    # Every call is started and completed, and reported with its id, arguments and outcome.
    for call_id, name in [
        ("call_weather", "get_weather"),
        ("call_convert", "convert_units"),
        ("call_email", "send_email"),
    ]:
        assert f"tool.execution_start    {call_id} {name}" in out
        assert f"tool.execution_complete {call_id} {name}" in out
    assert 'arguments: {"value": 42.195, "from_unit": "km", "to_unit": "mi"}' in out
    assert 'result: {"city": "Lisbon", "temperature": 21.0, "unit": "C", "sky": "sunny"}' in out
    assert "result: 26.22 (" in out

    # The hook allows two tools and denies send_email, whose refusal goes back as an error.
    assert "permission? get_weather -> allowed" in out
    assert "permission? convert_units -> allowed" in out
    assert "permission? send_email -> denied" in out
    assert "error: permission to run 'send_email' was denied" in out

    # The two allowed calls (0.3 s each) ran at the same time.
    work, wall = map(float, re.findall(r"tools: ([\d.]+)s of work in ([\d.]+)s", out)[0])
    assert work >= 0.6
    assert wall < 0.8 * work  # one after the other would take about `work`

    assert "assistant: Lisbon is sunny at 21 degrees C. A 42.195 km marathon is 26.22 miles." in out
    assert "sending email was not allowed" in out
    assert "result call_weather ok, result call_convert ok, result call_email error" in out
    assert out.rstrip().endswith("history roles: user, assistant, tool, assistant")
    assert done.stderr == ""


def test_a_model_no_provider_serves_fails_cleanly(run_python: RunPython) -> None:
    failed = run_python(str(EXAMPLE), "--model", "nowhere:x")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: unknown model 'nowhere:x'")
    assert "Traceback" not in failed.stderr
