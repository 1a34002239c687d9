"""`parley serve` under bad input and bad clients, in process over real TCP: malformed,
oversized and unparsable frames, unknown methods, bad params, tokens, clients that vanish
mid-turn, and several clients at once. Nothing crashes the server or loses stored history."""

from __future__ import annotations

import asyncio

import pytest

from copilot_runtime import serving
from parley import Client
from parley.errors import ConfigError
from parley.server import CopilotServer, serve_tcp
from parley.server.framing import MAX_FRAME_BYTES, encode_frame


async def test_bad_frames_and_json_get_errors_and_the_connection_goes_on(db: str) -> None:
    async with serving(db) as (_, connect), connect() as wire:
        wire.send_raw(encode_frame(b"{not json"))
        assert (await wire.next_reply())["error"]["code"] == -32700
        wire.send_raw(encode_frame(b"[1, 2]"))
        error = (await wire.next_reply())["error"]
        assert (error["code"], error["message"]) == (
            -32600,
            "invalid request: batches are not supported",
        )
        wire.send_raw(encode_frame(b"x" * (MAX_FRAME_BYTES + 1)))
        error = (await wire.next_reply())["error"]
        assert error["code"] == -32600
        assert "over the limit" in error["message"]
        huge = {"jsonrpc": "2.0", "id": "big-1", "method": "session.send",
                "params": {"sessionId": "s", "prompt": "x" * MAX_FRAME_BYTES}}  # fmt: skip
        wire.send(huge)
        reply = (
            await wire.next_reply()
        )  # answered by its id: the caller need not wait for a timeout
        assert (reply["id"], reply["error"]["code"]) == ("big-1", -32600)
        assert (await wire.ok("ping", {"message": "still here"}))["message"] == "pong: still here"


async def test_unknown_methods_and_bad_params_say_what_is_wrong(db: str) -> None:
    async with serving(db) as (_, connect), connect() as wire:
        error = (await wire.call("session.teleport", {}))["error"]
        assert error["code"] == -32601
        assert "unknown method 'session.teleport'" in error["message"]
        assert "session.sendAndWait" in error["message"]  # lists what there is
        error = (await wire.call("session.create", {"sessionId": 5}))["error"]
        assert error["code"] == -32602
        assert "sessionId" in error["message"]
        error = (await wire.call("session.sendAndWait", {"sessionId": "x"}))["error"]
        assert (error["code"], "prompt" in error["message"]) == (-32602, True)
        wire.send({"jsonrpc": "2.0", "id": 99, "method": "ping", "params": [1]})
        assert (await wire.next_reply())["error"]["code"] == -32602
        error = (await wire.call("session.send", {"sessionId": "nobody", "prompt": "hi"}))["error"]
        assert error["data"] == {"errorType": "SessionNotFoundError", "sessionId": "nobody"}


async def test_a_malformed_frame_ends_that_connection_only(db: str) -> None:
    async with serving(db) as (_, connect), connect() as good:
        await good.ok("session.create", {"sessionId": "keep-me", "model": "echo"})
        await good.ok("session.sendAndWait", {"sessionId": "keep-me", "prompt": "first"})
        async with connect() as bad:
            bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await bad.closed()
        reply = await good.ok("session.sendAndWait", {"sessionId": "keep-me", "prompt": "again"})
        assert "first" in reply["response"]["data"]["content"]
        events = (await good.ok("session.getMessages", {"sessionId": "keep-me"}))["events"]
        assert len(events) == 4


async def test_tokens(db: str) -> None:
    async with serving(db, token="s3cret") as (_, connect):
        async with connect() as anonymous:
            error = (await anonymous.call("session.list"))["error"]
            assert error["code"] == -32001
            assert "connection token" in error["message"]
        async with connect() as wrong:
            error = (await wrong.call("connect", {"token": "guess"}))["error"]
            assert (error["code"], "wrong or missing" in error["message"]) == (-32001, True)
            assert await wrong.closed()
        async with connect() as right:
            result = await right.ok("connect", {"token": "s3cret"})
            assert (result["ok"], result["protocolVersion"]) == (True, 3)
            assert (await right.ok("session.list"))["sessions"] == []


async def test_listening_beyond_loopback_needs_a_token(db: str) -> None:
    async with Client(store=db) as client:
        with pytest.raises(ConfigError, match="COPILOT_CONNECTION_TOKEN"):
            await serve_tcp(CopilotServer(client), host="0.0.0.0", port=0)


async def test_a_client_that_vanishes_mid_turn_loses_nothing(db: str) -> None:
    """The turn goes on and is stored whole; the server keeps serving."""
    async with serving(db) as (_, connect):
        async with connect() as leaving:
            await leaving.ok(
                "session.create", {"sessionId": "s", "model": "slow", "streaming": True}
            )
            leaving.send(
                {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "session.sendAndWait",
                    "params": {"sessionId": "s", "prompt": "tell me a long story"},
                }
            )
            await leaving.event("assistant.message_delta")
        async with connect() as other:
            await other.ok("session.resume", {"sessionId": "s"})
            for _ in range(200):
                events = (await other.ok("session.getMessages", {"sessionId": "s"}))["events"]
                if len(events) == 2:
                    break
                await asyncio.sleep(0.05)
            reply = events[1]["data"]
            assert reply["interrupted"] is False
            assert reply["content"].endswith("This is the first message of our conversation.")


async def test_each_client_sees_only_its_own_sessions_unless_it_asks(db: str) -> None:
    async with (
        serving(db) as (_, connect),
        connect() as a,
        connect() as b,
        connect() as watcher,
    ):
        assert (await watcher.ok("parley.subscribe", {"all": True})) == {"all": True}
        await a.ok("session.create", {"sessionId": "a1", "model": "echo"})
        await b.ok("session.create", {"sessionId": "b1", "model": "echo"})
        await a.ok("session.sendAndWait", {"sessionId": "a1", "prompt": "from a"})
        await b.ok("session.sendAndWait", {"sessionId": "b1", "prompt": "from b"})
        await watcher.ok("ping")  # its notifications arrive before this reply
        assert {e["sessionId"] for e in a.events} == {"a1"}
        assert {e["sessionId"] for e in b.events} == {"b1"}
        assert {e["sessionId"] for e in watcher.events} == {"a1", "b1"}
        kinds = [e["event"]["type"] for e in a.events]
        assert kinds[0] == "user.message"
        assert kinds[-1] == "session.idle"
        assert "assistant.message_delta" not in kinds  # a1 was not created with streaming
        error = (await b.call("session.send", {"sessionId": "a1", "prompt": "hijack"}))["error"]
        assert "not open on this connection" in error["message"]
