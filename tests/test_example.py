"""examples/multiple_sessions.py, run as a user runs it: a real process, twice in a row."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RunPython

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multiple_sessions.py"
FOLLOW_UPS = {
    "python": ("How do I create a virtual environment?", "Python project"),
    "typescript": ("How do I set up tsconfig?", "TypeScript project"),
    "go": ("How do I initialize a module?", "Go project"),
}


def run_example(run_python: RunPython, *args: str) -> str:
    done = run_python(str(EXAMPLE), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_seed_scenario_runs_twice_on_the_embedded_default(
    tmp_path: Path, run_python: RunPython
) -> None:
    for run in (1, 2):
        out = run_example(run_python)
        assert (tmp_path / ".parley" / "parley.db").exists()
        for name, (question, context) in FOLLOW_UPS.items():
            # The follow-up's reply quotes that session's own opening, never another's.
            reply = next(
                line
                for line in out.splitlines()
                if line.startswith(f"[{name}] ") and f'You said "{question}"' in line
            )
            assert context in reply
            others = [c for n, (_, c) in FOLLOW_UPS.items() if n != name]
            assert not any(other in reply for other in others)
            assert "(offline)" in reply
        assert "echo:alpha (offline)" in out
        assert "echo:beta (offline)" in out
        assert "created session 'user-123-chat'" in out
        assert "deleted 'user-123-chat'" in out
        listed = out.split("newest first:")[1].split("deleted")[0]
        assert listed.count("echo:") == 3 * run + 1  # 3 kept per run, and user-123-chat


def test_models_are_chosen_by_flag_and_unknown_ones_fail_cleanly(run_python: RunPython) -> None:
    out = run_example(
        run_python, "--model", "echo:one", "--other-model", "echo:two", "--store", "memory://"
    )
    assert "echo:one (offline)" in out
    assert "echo:two (offline)" in out
    failed = run_python(str(EXAMPLE), "--model", "nowhere:x", "--store", "memory://")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: unknown model 'nowhere:x'")
    assert "Traceback" not in failed.stderr
    keyless = run_python(str(EXAMPLE), "--model", "gpt-5", "--store", "memory://")
    assert keyless.returncode == 1
    assert keyless.stderr.startswith("error: provider 'openai' needs an API key")
    assert "OPENAI_API_KEY" in keyless.stderr
