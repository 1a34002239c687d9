"""`parley serve` under races and odd messages: sessions shared by connections, requests that
leave, cancels that arrive early, ids and text that broke a connection once.

In process over real TCP (as test_server_robustness.py), with a scripted model; a few tests
reach into the server (`server.hosted`, a connection's peer) to hit a race window exactly
instead of hoping for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from copilot import CopilotClient
from copilot.client import RuntimeConnection

from copilot_runtime import Wire, serving
from parley import Client, SessionEvent
from parley.models.base import ModelRequest, StreamEvent, StreamToolCall
from parley.server import CopilotServer
from parley.server.connection import Connection
from parley.testing import Reply, ScriptedModel

LOOKUP = {
    "name": "lookup",
    "description": "Look up an issue",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
}
CALL_LOOKUP = Reply(
    tool_calls=(StreamToolCall(call_id="call-1", name="lookup", arguments={"id": "7"}),)
)


class GatedModel(ScriptedModel):
    """A ScriptedModel whose first call waits for `gate`, so a test decides when it ends."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.gate = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        if not self.requests:
            await self.gate.wait()
        async for item in super().stream(request):
            yield item


def connection_of(server: CopilotServer, wire: Wire) -> Connection:
    (found,) = [c for c in server.connections if c.name.endswith(f":{wire.port}")]
    return found


# --- 1. the server-wide `pending` table, filtered by connection only ------------------------


async def test_leaving_an_idle_session_does_not_fail_another_sessions_tool_call(
    db: str,
) -> None:
    """A leaves its idle session; B's tool call, in another session, must stay answerable."""
    model = ScriptedModel(CALL_LOOKUP, "found it")
    async with serving(db, model) as (_, connect), connect() as a, connect() as b:
        await a.ok("session.create", {"sessionId": "quiet", "model": "scripted:x"})
        create = {"sessionId": "busy", "model": "scripted:x", "tools": [LOOKUP]}
        await b.ok("session.create", create)
        b.request("turn", "session.sendAndWait", {"sessionId": "busy", "prompt": "look"})
        asked = await b.event("external_tool.requested")
        await a.ok("session.detach", {"sessionId": "quiet"})
        answer = {
            "sessionId": "busy",
            "requestId": asked["data"]["requestId"],
            "result": {"textResultForLlm": "issue 7 is open", "resultType": "success"},
        }
        assert await b.ok("session.tools.handlePendingToolCall", answer) == {"success": True}
        reply = (await b.reply_to("turn"))["result"]
        assert reply["response"]["data"]["content"] == "found it"


async def test_leaving_one_session_does_not_fail_ones_tool_call_in_another(db: str) -> None:
    """A holds a tool call in S2 and leaves S1 (which B keeps open): S2's call is still A's."""
    model = ScriptedModel(CALL_LOOKUP, "found it")
    async with serving(db, model) as (_, connect), connect() as a, connect() as b:
        await a.ok("session.create", {"sessionId": "s1", "model": "scripted:x"})
        await b.ok("session.resume", {"sessionId": "s1"})
        await a.ok("session.create", {"sessionId": "s2", "model": "scripted:x", "tools": [LOOKUP]})
        a.request("turn", "session.sendAndWait", {"sessionId": "s2", "prompt": "look"})
        asked = await a.event("external_tool.requested")
        await a.ok("session.detach", {"sessionId": "s1"})
        answer = {
            "sessionId": "s2",
            "requestId": asked["data"]["requestId"],
            "result": {"textResultForLlm": "issue 7 is open", "resultType": "success"},
        }
        assert await a.ok("session.tools.handlePendingToolCall", answer) == {"success": True}


# --- 2. a permission request nobody attached can answer -------------------------------------


async def test_a_permission_request_ends_when_the_last_client_that_answers_leaves(
    db: str,
) -> None:
    """A (tools, requestPermission) and B (neither, as parley's remote client without a hook)
    share a session; B's turn asks permission; A leaves. Nobody left can answer: the request
    must be settled (denied), not left pending for ever with the turn stuck behind it."""
    model = ScriptedModel(CALL_LOOKUP, "gave up")
    async with serving(db, model) as (server, connect), connect() as a, connect() as b:
        create = {
            "sessionId": "s",
            "model": "scripted:x",
            "tools": [LOOKUP],
            "requestPermission": True,
        }
        await a.ok("session.create", create)
        await b.ok("session.resume", {"sessionId": "s"})
        b.request("turn", "session.sendAndWait", {"sessionId": "s", "prompt": "look"})
        await a.event("permission.requested")
        await a.ok("session.detach", {"sessionId": "s"})
        assert server.pending == {}, "the permission request is still waiting for an answer"
        reply = (await b.reply_to("turn"))["result"]
        assert reply["response"]["data"]["content"] == "gave up"


# --- 3. two connections resuming one session at once ----------------------------------------


async def test_two_connections_resuming_at_once_share_one_hosted_session(db: str) -> None:
    async with Client(store=db) as maker:
        await maker.create_session(session_id="shared", model="echo")
    async with serving(db) as (server, connect), connect() as a, connect() as b:
        first, second = connection_of(server, a), connection_of(server, b)
        await asyncio.gather(
            server._call(first, "session.resume", {"sessionId": "shared"}),
            server._call(second, "session.resume", {"sessionId": "shared"}),
        )
        # Observed: each made its own HostedSession; the second replaced the first in
        # server.hosted, and the first stays subscribed to the session for ever.
        assert set(server.hosted["shared"].attached) == {first, second}
        await a.ok("session.getMessages", {"sessionId": "shared"})


# --- 4. $/cancelRequest and queued turns ----------------------------------------------------


async def test_a_request_cancelled_before_it_started_still_gets_a_reply(db: str) -> None:
    """A request and its $/cancelRequest read in one batch: the task is cancelled before it
    ever runs; the request is still answered (cancelled), and the next one too."""
    async with serving(db) as (_, connect), connect() as wire:
        wire.send(
            {"jsonrpc": "2.0", "id": "doomed", "method": "ping", "params": {}},
            {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "doomed"}},
            {"jsonrpc": "2.0", "id": "after", "method": "ping", "params": {}},
        )
        replies = {r["id"]: r for r in [await wire.next_reply(), await wire.next_reply()]}
        assert replies["doomed"]["error"]["code"] == -32800  # replies may come in any order
        assert "result" in replies["after"]


# --- 5. messages that crash a connection or lose a reply ------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "id": [1], "method": "ping", "params": {}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": {"a": 1}}},
        {"jsonrpc": "2.0", "id": {"a": 1}, "result": None},
    ],
    ids=["request", "cancel", "response"],
)
async def test_an_unhashable_id_does_not_drop_the_connection(
    db: str, message: dict[str, Any]
) -> None:
    """`id` a list or object: a TypeError (unhashable) escapes Peer.run and ends the
    connection, which over stdio is the whole server."""
    async with serving(db) as (_, connect), connect() as wire:
        wire.send(message)
        assert (await wire.ok("ping", {"message": "still here"}))["message"] == "pong: still here"


async def test_a_reply_holding_a_lone_surrogate_is_still_sent(db: str) -> None:
    """JSON may carry "\\ud800"; echoing it back (a ping here; a prompt, tool arguments or a
    model's text the same) makes `_dumps(...).encode()` raise UnicodeEncodeError inside
    `_answer`, so the request never gets a reply and the client waits for its timeout."""
    async with serving(db) as (_, connect), connect() as wire:
        wire.send(
            {"jsonrpc": "2.0", "id": "odd", "method": "ping", "params": {"message": "\ud800"}},
            {"jsonrpc": "2.0", "id": "plain", "method": "ping", "params": {}},
        )
        assert (await wire.next_reply())["id"] == "odd"


# --- 6. stdio is trusted, whatever the environment says -------------------------------------


async def test_a_stdio_client_is_trusted_when_a_token_is_in_the_environment(
    runtime: Path, sqlite_url: str
) -> None:
    """The SDK's stdio child inherits the parent's environment; COPILOT_CONNECTION_TOKEN there
    (say, for a TCP server elsewhere) must not make the stdio `connect`, which carries no
    token, fail: the connection is `trusted`, yet `_connect` checks the token regardless."""
    env = {**os.environ, "COPILOT_CONNECTION_TOKEN": "meant-for-another-server"}
    connection = RuntimeConnection.for_stdio(path=str(runtime), args=["--store", sqlite_url])
    async with CopilotClient(connection=connection, env=env) as client:
        assert await client.list_sessions() == []


# --- $/cancelRequest aborts its own turn only, queued or running ---------------------------


async def test_cancelling_a_queued_send_and_wait_takes_its_turn_out_of_the_queue(db: str) -> None:
    """The SDK's timeout cancels a sendAndWait still queued behind another turn: the running
    turn must go on, and the cancelled one must not run later behind the client's back."""
    model = GatedModel("one", Reply(text="never asked for", hang=True))
    async with serving(db, model) as (server, connect), connect() as wire:
        await wire.ok("session.create", {"sessionId": "s", "model": "scripted:x"})
        wire.request("first", "session.sendAndWait", {"sessionId": "s", "prompt": "A"})
        wire.request("second", "session.sendAndWait", {"sessionId": "s", "prompt": "B"})
        await wire.ok("ping")  # both turns are queued by now, in order
        wire.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "second"}})
        assert (await wire.reply_to("second"))["error"]["code"] == -32800
        model.gate.set()
        first = (await wire.reply_to("first"))["result"]
        assert (first["aborted"], first["response"]["data"]["content"]) == (False, "one")
        assert not server.hosted["s"].session.busy, "the cancelled turn ran after all"


async def test_a_cancel_that_races_the_end_of_its_turn_does_not_abort_the_next_one(
    db: str,
) -> None:
    """$/cancelRequest read just after the turn's session.idle (before the sendAndWait handler
    resumes) must not abort the turn that starts next: here another send of the session."""
    model = GatedModel("one", Reply(text="two three four"))
    async with serving(db, model) as (server, connect), connect() as wire:
        await wire.ok("session.create", {"sessionId": "s", "model": "scripted:x"})
        peer = connection_of(server, wire).peer
        idles = 0

        def cancel_at_first_idle(event: SessionEvent) -> None:
            nonlocal idles
            if event.type == "session.idle":
                idles += 1
                if idles == 1:  # exactly as if the reader had just read the notification
                    peer._notification("$/cancelRequest", {"id": "first"})

        server.hosted["s"].session.on(cancel_at_first_idle)
        wire.request("first", "session.sendAndWait", {"sessionId": "s", "prompt": "A"})
        await wire.ok("session.send", {"sessionId": "s", "prompt": "B"})  # queued behind A
        model.gate.set()
        await wire.event("session.idle", count=2)
        events = (await wire.ok("session.getMessages", {"sessionId": "s"}))["events"]
        second = events[-1]["data"]
        assert (second["content"], second["interrupted"]) == ("two three four", False)
