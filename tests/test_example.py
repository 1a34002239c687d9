"""examples/multiple_sessions.py, run as a user runs it: a real process, twice in a row."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from conftest import RunPython
from parley.testing import FakeLLMServer

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


async def test_seed_scenario_on_openai_and_anthropic_through_base_url_variables(
    tmp_path: Path,
) -> None:
    async with FakeLLMServer(api_key="sk-fake") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env |= {
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "sk-fake",
            "ANTHROPIC_BASE_URL": server.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-fake",
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--model",
            "openai:fake-gpt",
            "--other-model",
            "anthropic:fake-claude",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=120)
    out = stdout.decode()
    assert child.returncode == 0, stderr.decode()
    assert "(offline)" not in out
    for name, (question, context) in FOLLOW_UPS.items():
        reply = next(
            line
            for line in out.splitlines()
            if line.startswith(f"[{name}] ") and f'Fake reply to "{question}"' in line
        )
        assert context in reply  # answered from its own history, over real HTTP
    assert "openai:fake-gpt" in out
    assert "anthropic:fake-claude" in out
    apis = [r.api for r in server.requests]
    assert apis.count("openai") == 4  # two sessions x two turns
    assert apis.count("anthropic") == 3  # the Go session's two turns, and user-123-chat
    assert all(r.status == 200 for r in server.requests)
