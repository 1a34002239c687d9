"""Two app processes, one runtime: parley's `Client(url=...)` on a `parley serve` server.

The script starts `parley serve --port 0` as a subprocess (the runtime: it holds the sessions,
their histories, the store, the providers and their keys), then connects to it as an app
would. With a first connection it creates two sessions, one with the id `user-123-chat`, and
sends to both; each follow-up is answered from its own history. It disconnects, connects
again (as another app process or a restarted one would), resumes a session with its history
kept by the runtime, deletes the other, and finally stops the server with SIGTERM.

Offline by default: the runtime's `echo` model, and a SQLite store in a temporary folder.

    python examples/remote_client.py
    python examples/remote_client.py --store sqlite:///.parley/remote.db --model gpt-5

With `--model`, the runtime needs the provider's key in its own environment (this script's
environment is passed on to it); the clients never see keys. See docs/remote.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from parley import Client, ParleyError, SessionNotFoundError

OPENINGS = {
    "python": "You are helping with a Python project",
    "user-123-chat": "How do I set up tsconfig?",
}
FOLLOW_UPS = {
    "python": "How do I create a virtual environment?",
    "user-123-chat": "What file was I asking about?",
}


def start_server(store: str, model: str | None) -> tuple[subprocess.Popen[str], int]:
    """`parley serve --port 0` in a subprocess, and the port it announced on stdout."""
    command = [sys.executable, "-m", "parley", "serve", "--port", "0", "--store", store]
    if model:
        command += ["--model", model]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()  # "listening on port N", once it accepts connections
    if not line.startswith("listening on port "):
        server.kill()
        server.wait()
        raise SystemExit(f"error: parley serve did not start (exit status {server.returncode})")
    return server, int(line.split()[-1])


def stop_server(server: subprocess.Popen[str]) -> None:
    """SIGTERM, as a service manager would send it; parley serve then exits cleanly."""
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    print(f"parley serve stopped (exit status {server.returncode})")


async def first_app(url: str) -> str:
    """Create two sessions and talk to both; returns the generated id of the first."""
    async with Client(url=url) as client:
        print(f"connected to {url}; the runtime's default model is {client.default_model}")
        sessions = {
            "python": await client.create_session(metadata={"project": "python"}),
            "user-123-chat": await client.create_session(session_id="user-123-chat"),
        }
        for label, session in sessions.items():
            print(f"created session {session.session_id!r} ({label}) on {session.model}")

        for label, session in sessions.items():
            reply = await session.send_and_wait(OPENINGS[label])
            print(f"[{label}] {reply.text}")

        # Both follow-ups at once: each is answered from its own session's history.
        replies = await asyncio.gather(
            *(session.send_and_wait(FOLLOW_UPS[label]) for label, session in sessions.items())
        )
        for label, reply in zip(sessions, replies, strict=True):
            print(f"[{label}] {reply.text}")

        print("sessions in the runtime, newest first:")
        for info in await client.list_sessions():
            print(f"  {info.session_id}  {info.model}  {info.message_count} messages  {info.title}")
        python_id = sessions["python"].session_id
    print("first client stopped; its sessions stay in the runtime")
    return python_id


async def second_app(url: str, python_id: str) -> None:
    """A new connection: resume a session from the runtime, then delete the other one."""
    async with Client(url=url) as client:
        print(f"a new client connected to {url}")
        session = await client.resume_session(python_id)
        history = await session.messages()
        print(f"resumed {python_id!r}: {len(history)} messages kept by the runtime")
        reply = await session.send_and_wait("What was my first message?")
        print(f"[python] {reply.text}")

        await client.delete_session("user-123-chat")
        print("deleted 'user-123-chat'")
        try:
            await client.get_session("user-123-chat")
        except SessionNotFoundError:
            print("'user-123-chat' is gone: SessionNotFoundError")
        remaining = [info.session_id for info in await client.list_sessions()]
        print(f"sessions left in the runtime: {', '.join(remaining)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", help="the runtime's store URL (default: a temporary SQLite)")
    parser.add_argument("--model", help="the runtime's default model (default: echo)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-remote-") as folder:
        store = args.store or f"sqlite:///{Path(folder) / 'remote.db'}"
        server, port = start_server(store, args.model)
        print(f"parley serve (pid {server.pid}) is listening on port {port}; store: {store}")
        url = f"tcp://127.0.0.1:{port}"
        try:
            python_id = asyncio.run(first_app(url))
            asyncio.run(second_app(url, python_id))
        except ParleyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
