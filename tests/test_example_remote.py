"""examples/remote_client.py, run as a user runs it: a real process that starts `parley serve`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunPython

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "remote_client.py"
OPENINGS = {
    "python": "You are helping with a Python project",
    "user-123-chat": "How do I set up tsconfig?",
}
FOLLOW_UPS = {
    "python": "How do I create a virtual environment?",
    "user-123-chat": "What file was I asking about?",
}


def reply_to(out: str, label: str, prompt: str) -> str:
    """The line where session `label`'s echo reply quotes `prompt` as the message it answers."""
    found = [
        line
        for line in out.splitlines()
        if line.startswith(f"[{label}] ") and f'You said "{prompt}"' in line
    ]
    assert len(found) == 1, f"no single reply of [{label}] to {prompt!r} in:\n{out}"
    return found[0]


@pytest.mark.slow
def test_two_clients_share_the_sessions_of_one_runtime(run_python: RunPython) -> None:
    done = run_python(str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert done.stderr == ""  # the server's stderr is the example's: no log, no traceback

    port = re.search(r"is listening on port (\d+); store: sqlite:///", out)
    assert port is not None
    assert f"connected to tcp://127.0.0.1:{port[1]}; the runtime's default model is echo" in out
    python_id = re.search(r"created session '([0-9a-f-]{36})' \(python\) on echo", out)
    assert python_id is not None
    assert "created session 'user-123-chat' (user-123-chat) on echo" in out

    for label, opening in OPENINGS.items():
        first = reply_to(out, label, opening)
        assert "This is the first message of our conversation." in first
        # The follow-up is answered from its own history: it quotes its own opening only.
        follow_up = reply_to(out, label, FOLLOW_UPS[label])
        assert f'Earlier in this conversation you said "{opening}"' in follow_up
        others = [text for name, text in OPENINGS.items() if name != label]
        assert not any(other in follow_up for other in others)
        assert "this is your message #2 here" in follow_up

    listed = out.split("newest first:\n")[1].split("first client stopped")[0].splitlines()
    assert sorted(line.split()[0] for line in listed) == sorted([python_id[1], "user-123-chat"])
    assert all("4 messages" in line for line in listed)

    # A new connection finds the history where the runtime kept it.
    assert f"resumed '{python_id[1]}': 4 messages kept by the runtime" in out
    third = reply_to(out, "python", "What was my first message?")
    assert f'you said "{OPENINGS["python"]}"; this is your message #3 here' in third

    assert "deleted 'user-123-chat'" in out
    assert "'user-123-chat' is gone: SessionNotFoundError" in out
    assert f"sessions left in the runtime: {python_id[1]}\n" in out
    assert out.endswith("parley serve stopped (exit status 0)\n")


@pytest.mark.slow
def test_the_store_url_goes_to_the_runtime(tmp_path: Path, run_python: RunPython) -> None:
    url = "sqlite:///remote.db"  # relative to the runtime's folder: the test's tmp_path
    first = run_python(str(EXAMPLE), "--store", url)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "remote.db").exists()
    kept = re.search(r"sessions left in the runtime: (\S+)\n", first.stdout)
    assert kept is not None

    # A second run on the same store sees the first run's session next to its own.
    second = run_python(str(EXAMPLE), "--store", url)
    assert second.returncode == 0, second.stderr
    left = re.search(r"sessions left in the runtime: (.+)\n", second.stdout)
    assert left is not None
    assert kept[1] in left[1].split(", ")
    assert len(left[1].split(", ")) == 2
