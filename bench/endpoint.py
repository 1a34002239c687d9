"""The benchmarks' endpoint: a `FakeLLMServer` in a process of its own.

In the measured process the server's work would share that process's event loop and GIL, and
be counted against whichever side happened to be waiting on it. In a process of its own it
costs the client nothing, as a real provider does, and its CPU time is measured, so a reader
can check that the endpoint was never the bottleneck (its CPU per request, and how busy it was).

    async with Endpoint(time_to_first_token=0.05, tokens_per_second=500) as endpoint:
        client = openai.AsyncOpenAI(base_url=endpoint.openai_base_url, api_key="sk-bench")
        ...
        endpoint.cpu_seconds()  # so far

Run as a script it is that process: it prints ``ready <url>`` and serves until its stdin
closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from types import TracebackType
from typing import Self

import psutil

from parley.testing import FakeLLMServer


class Endpoint:
    """A FakeLLMServer (any key accepted, the default reply) in a child process."""

    def __init__(
        self, *, time_to_first_token: float = 0.0, tokens_per_second: float | None = None
    ) -> None:
        self.time_to_first_token = time_to_first_token
        self.tokens_per_second = tokens_per_second
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
    options = parser.parse_args()
    asyncio.run(_serve(options.time_to_first_token, options.tokens_per_second))
