"""`parley compare`: through typer's runner on the offline model, and as a real process driving
the official SDKs against FakeLLMServers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parley import Client, ClientConfig
from parley.cli import app
from parley.cli.compare import read_turns
from parley.testing import FakeLLMServer, FakeReply, Fault

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def parley(*args: str, input: str | None = None) -> tuple[int, str, str]:
    # wide enough that the side-by-side table does not wrap the replies
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "240"})
    return result.exit_code, result.stdout, result.stderr


def test_turns_are_lines_or_blocks_between_dashes() -> None:
    assert read_turns("one\n\n  two  \n") == ["one", "two"]
    assert read_turns("first line\nsecond line\n---\nnext turn\n---\n\n") == [
        "first line\nsecond line",
        "next turn",
    ]
    assert read_turns("") == []


def test_run_list_show_and_delete(store: str, tmp_path: Path) -> None:
    turns = tmp_path / "turns.txt"
    turns.write_text("My name is Ada\nWhat is my name?\n")
    report = tmp_path / "report.html"
    code, stdout, stderr = parley(
        "--store", store, "compare", "-m", "echo:alpha", "-m", "echo:beta", str(turns),
        "--html", str(report), "--id", "names",
    )  # fmt: skip
    assert code == 0, stderr
    # the side-by-side table: both models' columns, each answering its own history
    assert "echo:alpha" in stdout
    assert "echo:beta" in stdout
    # each column quotes the first turn in turn 1's reply, and again (its own history) in turn 2's
    assert stdout.count('said "My name is Ada"') == 4
    assert "#2 here" in stdout
    assert "totals" in stdout
    # a progress bar per model, finished, on standard error
    assert "echo:alpha" in stderr
    assert stderr.count("2/2") == 2
    assert "comparison names" in stderr
    html = report.read_text()
    assert "My name is Ada" in html
    assert html.count('class="chart"') == 4

    code, stdout, _ = parley("--store", store, "compare", "list")
    assert code == 0
    assert "names" in stdout
    assert "done" in stdout
    code, stdout, _ = parley("--store", store, "compare", "list", "--json")
    assert json.loads(stdout.splitlines()[0])["models"] == ["echo:alpha", "echo:beta"]

    again = tmp_path / "again.html"
    code, stdout, stderr = parley(
        "--store", store, "compare", "show", "names", "--html", str(again)
    )
    assert code == 0, stderr
    assert stdout.count('said "My name is Ada"') == 4
    assert again.read_text().count('class="reply"') == 4
    code, stdout, _ = parley("--store", store, "compare", "show", "names", "--json")
    data = json.loads(stdout)
    assert [run["model"] for run in data["runs"]] == ["echo:alpha", "echo:beta"]

    code, stdout, _ = parley("--store", store, "sessions", "list", "--tag", "comparison")
    assert "echo:alpha" in stdout  # the comparison's sessions, before the delete
    code, _, stderr = parley("--store", store, "compare", "delete", "names", "--yes")
    assert code == 0, stderr
    code, _, stderr = parley("--store", store, "compare", "show", "names")
    assert code == 1
    assert "no comparison 'names'" in stderr
    code, stdout, _ = parley("--store", store, "sessions", "list", "--tag", "comparison")
    assert "echo:alpha" not in stdout  # its sessions went with it


def test_inline_turns_repeats_and_stdin(store: str) -> None:
    code, stdout, stderr = parley(
        "--store", store, "compare", "run", "-m", "echo", "-t", "hi", "--repeats", "3", "--json"
    )
    assert code == 0, stderr
    assert len(json.loads(stdout)["runs"]) == 3
    code, stdout, stderr = parley(
        "--store", store, "compare", "-m", "echo", "-", "--json", input="one\n---\ntwo\nlines\n"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["turns"] == ["one", "two\nlines"]


def test_mistakes_get_one_line_and_a_nonzero_exit(store: str, tmp_path: Path) -> None:
    code, _, stderr = parley("--store", store, "compare", "-m", "echo", str(tmp_path / "none"))
    assert code == 1
    assert "cannot read turns" in stderr
    code, _, stderr = parley("--store", store, "compare", "-t", "hi")
    assert code == 2
    assert "-m MODEL" in stderr
    code, _, stderr = parley("--store", store, "compare", "-m", "echo", "-t", " ")
    assert code == 2
    assert "no turns" in stderr
    code, _, stderr = parley(
        "--store", store, "compare", "-m", "echo", "-m", "nowhere:x", "-t", "hi"
    )
    assert code == 1
    assert stderr.startswith("error: unknown model 'nowhere:x'")
    code, stdout, _ = parley("--store", store, "compare", "list")
    assert "echo" not in stdout  # nothing was kept
    code, _, stderr = parley("compare", "--store", store, "-m", "echo", "-t", "hi")
    assert code == 2
    assert "--store goes before the command" in stderr


def test_a_comparison_where_no_model_answered_exits_1(store: str, tmp_path: Path) -> None:
    # port 9 (discard) on loopback: nothing listens, every call is refused at once
    (tmp_path / "parley.toml").write_text(
        '[providers.dead]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        "key_required = false\n"
    )
    env = {"PARLEY_CONFIG": str(tmp_path / "parley.toml")}
    result = runner.invoke(
        app, ["--store", store, "compare", "-m", "dead:a", "-m", "dead:b", "-t", "hi"], env=env
    )
    assert result.exit_code == 1, result.stderr
    assert "no model answered any turn" in result.stderr
    assert result.stdout.count("ProviderUnavailableError") == 2  # each column shows its error


async def test_the_issues_command_as_a_real_process(tmp_path: Path) -> None:
    """`parley compare -m openai:gpt-5 -m anthropic:claude-sonnet-4-5 turns.txt --html ...`,
    the official SDKs reaching two FakeLLMServers through the usual environment variables."""
    turns = tmp_path / "turns.txt"
    turns.write_text("Plan a day in Porto\n---\nAnd if it rains?\n")
    async with (
        FakeLLMServer(models=("gpt-5",), api_key="sk-o") as openai_server,
        FakeLLMServer(
            time_to_first_token=0.1, models=("claude-sonnet-4-5",), api_key="sk-a"
        ) as anthropic_server,
    ):
        # the second turn fails on each of the 3 attempts the default retry policy makes
        openai_server.script(
            FakeReply(text="Ribeira, then port cellars."), *[Fault.server_error()] * 3
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
            "OPENAI_API_KEY": "sk-o",
            "OPENAI_BASE_URL": openai_server.openai_base_url,
            "ANTHROPIC_API_KEY": "sk-a",
            "ANTHROPIC_BASE_URL": anthropic_server.anthropic_base_url,
            "PARLEY_STORE": f"sqlite:///{tmp_path / 'p.db'}",
            "COLUMNS": "120",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parley", "compare",
            "-m", "openai:gpt-5", "-m", "anthropic:claude-sonnet-4-5", str(turns),
            "--html", str(tmp_path / "report.html"), "--timeout", "20",
            cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stderr
    assert "Ribeira, then port cellars." in stdout
    assert "ProviderUnavailableError" in stdout  # the OpenAI side failed its second turn
    assert 'Fake reply to "And if it rains?"' in stdout  # the Anthropic side answered both
    assert len(anthropic_server.requests) == 2
    assert [r.status for r in openai_server.requests] == [200, 500, 500, 500]
    html = (tmp_path / "report.html").read_text()
    assert "Ribeira, then port cellars." in html
    # kept in the store the command used
    config = ClientConfig(config_files=False)
    async with Client(store=f"sqlite:///{tmp_path / 'p.db'}", config=config) as client:
        (kept,) = await client.list_comparisons()
    assert kept.models == ("openai:gpt-5", "anthropic:claude-sonnet-4-5")
    assert kept.errors == 1
    assert kept.summary("anthropic:claude-sonnet-4-5").first_token is not None
    first = kept.summary("anthropic:claude-sonnet-4-5").first_token
    assert first is not None
    assert first >= 0.1
