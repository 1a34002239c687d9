"""Where the frames travel: standard input and output, or TCP connections.

Both hand an `asyncio.StreamReader` and `StreamWriter` to `CopilotServer.serve`, so framing and
JSON-RPC are the same on each. Over stdio the process's file descriptor 1 is kept for frames
alone: anything else that writes to "stdout" (a stray print, a library) lands on stderr.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Callable

from parley.errors import ConfigError
from parley.server.copilot import CopilotServer
from parley.server.framing import MAX_FRAME_BYTES

__all__ = ["is_loopback", "protect_stdout", "serve_stdio", "serve_tcp"]

log = logging.getLogger("parley.server")

_LINE_LIMIT = 64 * 1024  # the longest header line; frames themselves are read by length
_SHUTDOWN_GRACE = 2.0  # seconds to let the runtime.shutdown reply out before stopping


def protect_stdout() -> int:
    """Keep a private copy of fd 1 for frames, and point fd 1 and `sys.stdout` at stderr."""
    sys.stdout.flush()
    frames = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return frames


async def serve_stdio(server: CopilotServer, *, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Serve the one client on the other end of our stdin and stdout, until it closes stdin or
    sends ``runtime.shutdown``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdin_fd, "rb", 0, closefd=False)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(stdout_fd, "wb", 0, closefd=False)
    )
    writer = asyncio.StreamWriter(write_transport, protocol, reader, loop)
    connection = asyncio.create_task(server.serve(reader, writer, "stdio", trusted=True))
    try:
        await _until_done(server, [connection])
    finally:
        read_transport.close()


async def _until_done(server: CopilotServer, connections: list[asyncio.Task[None]]) -> None:
    """Wait for the connections to end or for ``runtime.shutdown``, then stop them."""
    stop = asyncio.create_task(server.shutdown.wait())
    try:
        await asyncio.wait([stop, *connections], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        await asyncio.gather(stop, return_exceptions=True)
        await _end(connections, grace=_SHUTDOWN_GRACE if server.shutdown.is_set() else 0)


async def _end(connections: list[asyncio.Task[None]], *, grace: float) -> None:
    """Give the connections `grace` seconds (the shutdown reply going out), then stop them."""
    if connections and grace:
        await asyncio.wait(connections, timeout=grace)
    for task in connections:
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_tcp(
    server: CopilotServer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Accept connections on `host`:`port` (0: any free port) until ``runtime.shutdown``.

    Beyond loopback the server refuses to start without a connection token.
    """
    if not is_loopback(host) and server.token is None:
        raise ConfigError(
            f"refusing to listen on {host} without a connection token: anyone who reaches "
            "the port could drive every session; set COPILOT_CONNECTION_TOKEN (or "
            "--connection-token), or listen on 127.0.0.1"
        )
    connections: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        name = f"tcp {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "tcp"
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        log.info("%s: connected", name)
        try:
            await server.serve(reader, writer, name, trusted=server.token is None)
        except asyncio.CancelledError:
            # `_end` stops it at shutdown. Ending quietly matters: Python 3.11's start_server
            # asks a cancelled handler task for its exception and logs the CancelledError.
            pass
        finally:
            connections.discard(task)
            log.info("%s: closed", name)

    listener = await asyncio.start_server(accept, host, port, limit=_LINE_LIMIT)
    bound = listener.sockets[0].getsockname()[1]
    log.info("frames up to %d bytes", MAX_FRAME_BYTES)
    if on_listening is not None:
        on_listening(bound)
    async with listener:
        await server.shutdown.wait()
        listener.close()
        await asyncio.sleep(0)
        await _end(list(connections), grace=_SHUTDOWN_GRACE)
