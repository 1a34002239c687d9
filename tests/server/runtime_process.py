"""`parley-runtime` as a real process, and official Copilot SDK clients pointed at it."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from copilot import CopilotClient
from copilot.client import RuntimeConnection

RUNTIME = Path(sys.executable).with_name("parley-runtime")


@dataclass
class TcpRuntime:
    """A `parley-runtime --port 0` process and the port it announced."""

    process: asyncio.subprocess.Process
    port: int
    stderr: list[str]

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.terminate()
        _, err = await asyncio.wait_for(self.process.communicate(), 10)  # closes the pipes
        self.stderr.append(err.decode())
        assert self.process.returncode is not None
        return self.process.returncode


async def start_tcp(store_url: str, *args: str, env: dict[str, str] | None = None) -> TcpRuntime:
    process = await asyncio.create_subprocess_exec(
        str(RUNTIME),
        "--store",
        store_url,
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    match = re.match(r"listening on port (\d+)", line)
    if match is None:
        assert process.stderr is not None
        problem = (await process.stderr.read()).decode()
        raise AssertionError(f"no port announced: {line!r}; stderr: {problem}")
    return TcpRuntime(process, int(match.group(1)), [])


TRANSPORTS = ["stdio", "cli_path", "tcp"]


@dataclass
class Sdk:
    """Makes official `CopilotClient`s on parley over one transport."""

    transport: str
    store_url: str
    server: TcpRuntime | None

    def client(self) -> CopilotClient:
        if self.transport == "stdio":
            connection = RuntimeConnection.for_stdio(
                path=str(RUNTIME), args=["--store", self.store_url]
            )
            return CopilotClient(connection=connection)
        if self.transport == "cli_path":
            env = {**os.environ, "COPILOT_CLI_PATH": str(RUNTIME), "PARLEY_STORE": self.store_url}
            return CopilotClient(env=env)
        assert self.server is not None
        return CopilotClient(connection=RuntimeConnection.for_uri(f"127.0.0.1:{self.server.port}"))

    async def release_store(self) -> None:
        """Stop the TCP server, if any, so another client may open the SQLite file."""
        if self.server is not None:
            assert await self.server.stop() in (0, -15)
            self.server = None
