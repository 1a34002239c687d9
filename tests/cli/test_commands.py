"""The `parley` command through typer's runner, on a real SQLite file in the test's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parley.cli import app

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def parley(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_send_prints_the_reply_and_continues_a_session(store: str) -> None:
    code, stdout, stderr = parley("--store", store, "send", "You are helping with Go")
    assert code == 0, stderr
    assert 'You said "You are helping with Go"' in stdout
    session_id = stderr.split("session ")[1].split(" ")[0]
    code, stdout, _ = parley("--store", store, "send", "-s", session_id, "And modules?")
    assert code == 0
    assert "#2 here" in stdout
    assert '"You are helping with Go"' in stdout


def test_send_reads_standard_input_and_prints_json_events(store: str) -> None:
    code, stdout, _ = parley("--store", store, "send", "--json", input="from stdin\n")
    assert code == 0
    events = [json.loads(line) for line in stdout.splitlines()]
    assert events[0]["type"] == "user.message"
    assert events[0]["data"]["content"] == "from stdin\n"
    assert events[-1]["type"] == "session.idle"
    assert any(e["type"] == "assistant.message_delta" for e in events)


def test_errors_are_one_red_line_and_exit_1(store: str) -> None:
    code, _, stderr = parley("--store", store, "send", "-m", "nowhere:x", "hi")
    assert code == 1
    assert stderr.startswith("error: unknown model 'nowhere:x'")
    assert "Traceback" not in stderr
    code, _, stderr = parley("--store", store, "send", "-s", "no-such-session", "hi")
    assert code == 1
    assert "no session 'no-such-session'" in stderr
    code, _, stderr = parley("--store", "mysql://x", "sessions", "list")
    assert code == 1
    assert "unknown store URL" in stderr


def test_sessions_list_show_and_delete(store: str) -> None:
    parley("--store", store, "send", "-m", "echo:alpha", "first session")
    parley("--store", store, "send", "-m", "echo:beta", "second session")
    code, stdout, _ = parley("--store", store, "sessions", "list", "--json")
    assert code == 0
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["model"] for r in rows] == ["echo:beta", "echo:alpha"]
    assert all(r["messages"] == 2 for r in rows)
    code, stdout, _ = parley("--store", store, "sessions", "list", "-m", "echo:alpha")
    assert rows[1]["session_id"] in stdout
    assert rows[0]["session_id"] not in stdout
    code, stdout, _ = parley("--store", store, "sessions", "show", rows[0]["session_id"])
    assert code == 0
    assert "second session" in stdout
    assert "assistant" in stdout
    code, _, _ = parley("--store", store, "sessions", "delete", rows[0]["session_id"], input="n\n")
    assert code == 1  # not confirmed: nothing deleted
    code, _, stderr = parley("--store", store, "sessions", "delete", "--yes", rows[0]["session_id"])
    assert code == 0
    assert f"deleted {rows[0]['session_id']}" in stderr
    _, stdout, _ = parley("--store", store, "sessions", "list", "--json")
    assert [json.loads(line)["session_id"] for line in stdout.splitlines()] == [
        rows[1]["session_id"]
    ]


def test_models_says_which_keys_are_missing(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-set")
    code, stdout, _ = parley("--store", store, "models")
    assert code == 0
    lines = {line.split("│")[1].strip(): line for line in stdout.splitlines() if "│" in line}
    assert "set" in lines["anthropic"]
    assert "missing: set OPENAI_API_KEY" in lines["openai"]
    assert "not needed" in lines["ollama"]
    assert "offline" in lines["echo"]


def test_the_store_comes_from_parley_store_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "from-env.db"
    monkeypatch.setenv("PARLEY_STORE", f"sqlite:///{db}")
    code, _, _ = parley("send", "hello")
    assert code == 0
    assert db.exists()


def test_export_and_import_round_trip_exactly(store: str, tmp_path: Path) -> None:
    parley("--store", store, "send", "-m", "echo:alpha", "keep me")
    _, stdout, _ = parley("--store", store, "sessions", "list", "--json")
    session_id = json.loads(stdout.splitlines()[0])["session_id"]
    parley("--store", store, "send", "-s", session_id, "and me")
    code, exported, _ = parley("--store", store, "sessions", "export", session_id)
    assert code == 0
    data = json.loads(exported)
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
    other = f"sqlite:///{tmp_path / 'other.db'}"
    dump = tmp_path / "session.json"
    dump.write_text(exported)
    code, _, stderr = parley("--store", other, "sessions", "import", str(dump))
    assert code == 0, stderr
    assert f"imported {session_id} (4 messages)" in stderr
    _, again, _ = parley("--store", other, "sessions", "export", session_id)
    assert json.loads(again) == data
    code, _, stderr = parley("--store", other, "sessions", "import", str(dump))
    assert code == 1
    assert "already exists" in stderr
    code, _, stderr = parley("--store", other, "sessions", "import", "-", input="{}")
    assert code == 1
    assert "not a parley session export" in stderr


def test_tag_sets_and_removes_metadata(store: str) -> None:
    parley("--store", store, "send", "hello")
    _, stdout, _ = parley("--store", store, "sessions", "list", "--json")
    session_id = json.loads(stdout)["session_id"]
    code, _, stderr = parley("--store", store, "sessions", "tag", session_id, "owner=ann", "x=1")
    assert code == 0
    assert "owner=ann, x=1" in stderr
    _, stdout, _ = parley("--store", store, "sessions", "list", "--tag", "owner", "--json")
    assert json.loads(stdout)["metadata"] == {"owner": "ann", "x": "1"}
    parley("--store", store, "sessions", "tag", session_id, "x=")
    _, stdout, _ = parley("--store", store, "sessions", "list", "--json")
    assert json.loads(stdout)["metadata"] == {"owner": "ann"}
    code, _, stderr = parley("--store", store, "sessions", "tag", session_id, "novalue")
    assert code == 2
    assert "is not KEY=VALUE" in stderr


def test_demo_runs_the_seed_scenario(store: str) -> None:
    code, stdout, stderr = parley("--store", store, "demo", "--other-model", "echo:gamma")
    assert code == 0, stderr
    assert "created session 'user-123-chat' on echo:gamma (offline)" in stdout
    assert 'You said "How do I initialize a module?". Earlier in this conversation you said' in (
        stdout
    )
    assert "deleted 'user-123-chat'" in stdout
    code, _, stderr = parley("--store", store, "demo", "--model", "nowhere:x")
    assert code == 1
    assert "error: unknown model 'nowhere:x'" in stderr


def test_debug_shows_the_traceback(store: str) -> None:
    result = runner.invoke(app, ["--store", store, "--debug", "send", "-m", "nowhere:x", "hi"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "UnknownModelError"


def test_chat_through_the_runner_continues_the_latest_session(store: str) -> None:
    parley("--store", store, "send", "remember this")
    code, stdout, stderr = parley(
        "--store", store, "chat", input="what did I say?\n/sessions\n/new\nfresh\n/exit\n"
    )
    assert code == 0, stderr
    assert 'Earlier in this conversation you said "remember this"' in stdout
    assert "This is the first message of our conversation" in stdout  # after /new
    code, _, stderr = parley("--store", store, "chat", "-s", "no-such", input="/exit\n")
    assert code == 1
    assert "no session 'no-such'" in stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["send"],
        ["chat"],
        ["models"],
        ["demo"],
        ["sessions"],
        ["sessions", "list"],
        ["sessions", "show"],
        ["sessions", "delete"],
        ["sessions", "export"],
        ["sessions", "import"],
        ["sessions", "tag"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    body = result.stdout.split("Usage:", 1)[1]
    assert len(body.strip().splitlines()) > 3  # a description and options, not just usage
