"""`parley serve` / `parley-runtime` as processes: the SDK's flags, stdout kept for frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parley.server.framing import encode_frame

pytestmark = pytest.mark.slow


def _frames(data: bytes) -> list[dict[str, Any]]:
    """Parse `data` strictly as the SDK's reader does: every byte must belong to a frame."""
    messages: list[dict[str, Any]] = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"bytes outside a frame on stdout: {data[:80]!r}"
        name, _, value = header.partition(b": ")
        assert name == b"Content-Length", f"not a frame header: {header[:80]!r}"
        size = int(value)
        messages.append(json.loads(rest[:size]))
        data = rest[size:]
    return messages


def _request(n: int, method: str, params: dict[str, object]) -> bytes:
    body = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
    return encode_frame(json.dumps(body).encode())


def test_stdio_writes_only_frames_and_exits_on_shutdown(runtime: Path, sqlite_url: str) -> None:
    script = b"".join(
        [
            _request(1, "connect", {"supportedTaskKinds": ["agent"]}),
            _request(2, "session.create", {"sessionId": "one", "model": "echo"}),
            _request(3, "session.sendAndWait", {"sessionId": "one", "prompt": "hi"}),
            _request(4, "runtime.shutdown", {}),
        ]
    )
    done = subprocess.run(
        [str(runtime), "--store", sqlite_url, "--headless", "--no-auto-update",
         "--log-level", "debug", "--auth-token-env", "X", "--no-auto-login", "--stdio"],
        input=script, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    messages = _frames(done.stdout)
    replies = {m["id"]: m for m in messages if "id" in m}
    assert sorted(replies) == [1, 2, 3, 4]
    assert replies[1]["result"] == {
        "ok": True,
        "protocolVersion": 3,
        "version": replies[1]["result"]["version"],
    }
    assert replies[2]["result"] == {"sessionId": "one"}
    events = [m["params"]["event"]["type"] for m in messages if m.get("method") == "session.event"]
    assert events[0] == "user.message"
    assert events[-1] == "session.idle"
    assert b"ignoring flags" in done.stderr  # logs went to stderr, at the level asked


def test_tcp_announces_its_port_on_stdout_alone(runtime: Path, sqlite_url: str) -> None:
    process = subprocess.Popen(
        [str(runtime), "--store", sqlite_url, "--port", "0", "--headless", "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("listening on port ")
        assert int(line.split()[-1]) > 0
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert out == b""  # nothing after the announcement
    assert process.returncode in (0, -15), err.decode()


def test_stray_writes_to_stdout_go_to_stderr(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from parley.server.transport import protect_stdout\n"
        "frames = protect_stdout()\n"
        "print('stray print')\n"
        "os.write(1, b'stray bytes\\n')\n"
        "os.write(frames, b'FRAME')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"FRAME"
    assert b"stray print" in done.stderr
    assert b"stray bytes" in done.stderr


def test_stdio_and_port_together_are_refused(runtime: Path) -> None:
    done = subprocess.run(
        [str(runtime), "--stdio", "--port", "1234"], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert b"--stdio or --port" in done.stderr
