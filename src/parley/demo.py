"""Several independent conversations at once: the seed scenario of parley.

Three sessions (two on one model, one on another) each get an opening message and a
follow-up that only makes sense with their own history; then a session with a chosen id is
created, the sessions are listed, that one is deleted, and everything is disposed.

By default it runs embedded and offline: a SQLite file at ./.parley/parley.db and the `echo`
model, whose replies quote the session's own history. Choose other models and stores with
flags or environment variables:

    python examples/multiple_sessions.py --model echo:alpha --other-model echo:beta
    PARLEY_MODEL=... PARLEY_OTHER_MODEL=... PARLEY_STORE=memory:// parley demo

This module is what both `examples/multiple_sessions.py` and `parley demo` run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from parley import Client, Message, ParleyError, Session, SessionConfig, SessionExistsError

CONVERSATIONS = (
    ("python", "You are helping with a Python project", "How do I create a virtual environment?"),
    ("typescript", "You are helping with a TypeScript project", "How do I set up tsconfig?"),
    ("go", "You are helping with a Go project", "How do I initialize a module?"),
)
CHOSEN_ID = "user-123-chat"
TAG = {"example": "multiple_sessions"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="multiple_sessions", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("PARLEY_MODEL", "echo:alpha"),
        help="model of the first two sessions (env PARLEY_MODEL; default echo:alpha)",
    )
    parser.add_argument(
        "--other-model",
        default=os.environ.get("PARLEY_OTHER_MODEL", "echo:beta"),
        help="model of the third session (env PARLEY_OTHER_MODEL; default echo:beta)",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="store URL (env PARLEY_STORE; default sqlite:///.parley/parley.db)",
    )
    return parser.parse_args(argv)


def label(client: Client, model: str) -> str:
    offline = client.models.resolve(model).adapter.offline
    return f"{model} (offline)" if offline else model


async def converse(session: Session, opening: str, follow_up: str) -> tuple[Message, Message]:
    """Two turns in one session; the second only makes sense after the first."""
    first = await session.send_and_wait(opening)
    second = await session.send_and_wait(follow_up)
    return first, second


def show(client: Client, name: str, prompt: str, reply: Message) -> None:
    print(f"[{name}] you: {prompt}")
    print(f"[{name}] {label(client, reply.model or '?')}: {reply.text}")


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    async with Client(store=args.store) as client:
        print(f"parley multiple-sessions example; store: {client.store!r}\n")
        models = (args.model, args.model, args.other_model)
        sessions = [
            await client.create_session(SessionConfig(model=model, metadata={**TAG, "topic": name}))
            for model, (name, _, _) in zip(models, CONVERSATIONS, strict=True)
        ]

        # The three conversations run at the same time; each keeps its own history.
        replies = await asyncio.gather(
            *(
                converse(session, opening, follow_up)
                for session, (_, opening, follow_up) in zip(sessions, CONVERSATIONS, strict=True)
            )
        )
        for (name, opening, follow_up), (first, second) in zip(CONVERSATIONS, replies, strict=True):
            show(client, name, opening, first)
            show(client, name, follow_up, second)
            print()

        try:
            chat = await client.create_session(
                model=args.other_model, session_id=CHOSEN_ID, metadata=TAG
            )
        except SessionExistsError:  # left behind by an earlier run that was interrupted
            await client.delete_session(CHOSEN_ID)
            chat = await client.create_session(
                model=args.other_model, session_id=CHOSEN_ID, metadata=TAG
            )
        print(f"created session {chat.session_id!r} on {label(client, chat.model)}")
        print(f"[{chat.session_id}] streaming: ", end="", flush=True)
        async for event in chat.stream("Hello from a session with a chosen id"):
            if event.type == "assistant.message_delta":
                print(event.data.delta_content, end="", flush=True)
        print("\n")

        print("sessions of this example, newest first:")
        for info in await client.list_sessions(metadata=TAG, limit=10):
            print(
                f"  {info.session_id:<38} {info.model:<12} {info.message_count:>3} messages  "
                f"{info.usage.total_tokens:>4} tokens  {info.title}"
            )

        await client.delete_session(CHOSEN_ID)
        print(f"\ndeleted {CHOSEN_ID!r}")
        for session in sessions:
            await session.close()
    print("disposed the client; the other sessions stay in the store for resume_session()")
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """Run the scenario as a program: exit code 0, or 1 with one `error:` line."""
    try:
        return asyncio.run(main(argv))
    except ParleyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
