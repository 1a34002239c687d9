"""The benchmarks' endpoint: a `FakeLLMServer` in a process of its own.

In the measured process the server's work would share that process's event loop and GIL, and
be counted against whichever side happened to be waiting on it. In a process of its own it
costs the client nothing, as a real provider does, and its CPU time is measured, so a reader
can check that the endpoint was never the bottleneck (its CPU per request, and how busy it was).

    async with Endpoint(time_to_first_token=0.05, tokens_per_second=500) as endpoint:
        client = openai.AsyncOpenAI(base_url=endpoint.openai_base_url, api_key="sk-bench")
        ...
        endpoint.cpu_seconds()  # so far

`Endpoint(lean=True)` serves a fixed streamed reply from a few lines of asyncio instead: it
reads each request's bytes without decoding them, so its cost does not grow with the history a
request carries. The per-turn cost by history length is measured against it, so that what is
measured is the client's work, not the server's JSON parsing on the other core.

Run as a script it is that process: it prints ``ready <url>`` and serves until its stdin
closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from types import TracebackType
from typing import Self

import psutil

from parley.testing import FakeLLMServer


class Endpoint:
    """A FakeLLMServer (any key accepted, the default reply) in a child process."""

    def __init__(
        self,
        *,
        time_to_first_token: float = 0.0,
        tokens_per_second: float | None = None,
        lean: bool = False,
    ) -> None:
        self.time_to_first_token = time_to_first_token
        self.tokens_per_second = tokens_per_second
        self.lean = lean
        self._process: asyncio.subprocess.Process | None = None
        self._url = ""

    @property
    def openai_base_url(self) -> str:
        return f"{self._url}/v1"

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the endpoint process has used so far."""
        assert self._process is not None, "use Endpoint in `async with`"
        times = psutil.Process(self._process.pid).cpu_times()
        return float(times.user + times.system)

    async def __aenter__(self) -> Self:
        args = [sys.executable, __file__, "--time-to-first-token", str(self.time_to_first_token)]
        if self.tokens_per_second is not None:
            args += ["--tokens-per-second", str(self.tokens_per_second)]
        if self.lean:
            args.append("--lean")
        self._process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        line = (await asyncio.wait_for(self._process.stdout.readline(), 30)).decode().split()
        if line[:1] != ["ready"]:
            raise RuntimeError(f"the endpoint process did not start: {line!r}")
        self._url = line[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


def _lean_reply() -> bytes:
    """A Chat Completions stream: ten words, a finish, usage and [DONE], as one HTTP reply."""
    chunks = [
        json.dumps({"choices": [{"index": 0, "delta": {"content": f"word{i} "}}]})
        for i in range(10)
    ]
    chunks.append(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    chunks.append(json.dumps({"choices": [], "usage": usage}))
    body = "".join(f"data: {c}\n\n" for c in [*chunks, "[DONE]"]).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Lean(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough: each request's body is skipped, not parsed."""

    REPLY = _lean_reply()

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(self.REPLY)


async def _serve_lean() -> None:
    server = await asyncio.get_running_loop().create_server(_Lean, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("ready", f"http://127.0.0.1:{port}", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    server.close()


async def _serve(time_to_first_token: float, tokens_per_second: float | None) -> None:
    server = FakeLLMServer(
        time_to_first_token=time_to_first_token, tokens_per_second=tokens_per_second, record=False
    )
    async with server:
        print("ready", server.url, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serve a FakeLLMServer until stdin closes")
    parser.add_argument("--time-to-first-token", type=float, default=0.0)
    parser.add_argument("--tokens-per-second", type=float)
    parser.add_argument("--lean", action="store_true", help="a fixed reply, requests unparsed")
    options = parser.parse_args()
    if options.lean:
        asyncio.run(_serve_lean())
    else:
        asyncio.run(_serve(options.time_to_first_token, options.tokens_per_second))
