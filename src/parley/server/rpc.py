"""JSON-RPC 2.0 over `Content-Length` frames, both ways on one connection.

A `Peer` answers the requests it receives (each in a task of its own, so a long
``session.sendAndWait`` never holds up a ``ping``), sends notifications, and sends requests of
its own and awaits their replies. The server and parley's remote `Client` both use it. It knows
nothing of the transport: it reads an `asyncio.StreamReader` and writes an `asyncio.StreamWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from parley.server.framing import (
    MAX_FRAME_BYTES,
    FrameError,
    FrameTooLargeError,
    encode_frame,
    read_frame,
)

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "REQUEST_CANCELLED",
    "ConnectionClosedError",
    "Peer",
    "RpcError",
]

log = logging.getLogger("parley.server")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800  # the LSP's code for a request cancelled by $/cancelRequest

RequestHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
NotificationHandler = Callable[[str, dict[str, Any]], None]
ErrorMapper = Callable[[Exception], "RpcError | None"]


class RpcError(Exception):
    """A JSON-RPC error reply: `code`, `message` and optional `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ConnectionClosedError(ConnectionError):
    """The other side went away before answering."""


def _dumps(message: dict[str, Any]) -> bytes:
    # ASCII escapes: text with a lone surrogate (valid JSON, from a client or a model) still
    # encodes, where UTF-8 would refuse it.
    return json.dumps(message, separators=(",", ":")).encode()


class Peer:
    """One JSON-RPC connection. `run()` reads until the other side closes."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_request: RequestHandler | None = None,
        on_notification: NotificationHandler | None = None,
        map_error: ErrorMapper | None = None,
        on_eof: Callable[[], None] | None = None,
        max_frame: int = MAX_FRAME_BYTES,
        name: str = "peer",
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._on_notification = on_notification
        self._map_error = map_error
        self._on_eof = on_eof
        self._max_frame = max_frame
        self.name = name
        self._ids = itertools.count(1)
        self._waiting: dict[Any, asyncio.Future[Any]] = {}
        self._handling: dict[Any, asyncio.Task[None]] = {}
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- writing ----------------------------------------------------------------------------

    def _write(self, message: dict[str, Any]) -> None:
        if self._closed.is_set() or self._writer.is_closing():
            return
        try:
            self._writer.write(encode_frame(_dumps(message)))
        except (ConnectionError, RuntimeError):  # the other side is gone; run() ends soon
            self._closed.set()

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._writer.drain()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification (no reply). Silently nothing once the connection is closed."""
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Awaitable[Any]:
        """Send a request now and return an awaitable of its result: RpcError for an error
        reply, ConnectionClosedError when the connection ends first.

        Writing before the first await keeps requests in call order, even those made by tasks
        that have not run yet (a stream's send takes its place in the queue when called).
        """
        if self._closed.is_set():
            raise ConnectionClosedError(f"the connection to {self.name} is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._write({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return self._result(request_id, future)

    async def _result(self, request_id: int, future: asyncio.Future[Any]) -> Any:
        try:
            await self._drain()
            return await future
        finally:
            self._waiting.pop(request_id, None)

    # --- reading ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch messages until the other side closes or the stream breaks.

        At a clean end of input the requests already received are still answered (a client
        may close its side and read on: stdio does), after `on_eof` lets go of whatever
        waits on that client; a broken stream cancels them.
        """
        try:
            while True:
                try:
                    body = await read_frame(self._reader, self._max_frame)
                except FrameTooLargeError as exc:
                    request_id = _id_in(exc.head)
                    self._write(_error_reply(request_id, RpcError(INVALID_REQUEST, str(exc))))
                    continue
                if body is None:
                    break
                self._dispatch(body)
            if self._on_eof is not None:
                self._on_eof()
            await asyncio.gather(*self._handling.values(), return_exceptions=True)
        except FrameError as exc:
            log.warning("%s: closing the connection: %s", self.name, exc)
        except (ConnectionError, OSError) as exc:
            log.info("%s: connection lost: %s", self.name, exc)
        finally:
            await self._shut()

    async def _shut(self) -> None:
        self._closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionClosedError(f"the connection to {self.name} closed"))
        tasks = list(self._handling.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError, OSError):
            self._writer.close()

    async def close(self) -> None:
        """End the connection from this side (run() returns)."""
        self._reader.feed_eof()
        with contextlib.suppress(ConnectionError, RuntimeError, OSError):
            self._writer.close()
        await self._closed.wait()

    def _dispatch(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            self._write(_error_reply(None, RpcError(PARSE_ERROR, f"invalid JSON: {exc}")))
            return
        if not isinstance(message, dict):
            why = "batches are not supported" if isinstance(message, list) else "not an object"
            self._write(_error_reply(None, RpcError(INVALID_REQUEST, f"invalid request: {why}")))
            return
        method = message.get("method")
        request_id = message.get("id")
        if not _valid_id(request_id):
            if method is not None:  # a response with a strange id answers nothing we asked
                error = RpcError(INVALID_REQUEST, "an id must be a string, a number or null")
                self._write(_error_reply(None, error))
            return
        if method is None and "id" in message:
            self._settle(message)
            return
        if not isinstance(method, str) or message.get("jsonrpc") != "2.0":
            problem = 'needs "jsonrpc": "2.0"' if isinstance(method, str) else "needs a method"
            self._write(_error_reply(request_id, RpcError(INVALID_REQUEST, f"a request {problem}")))
            return
        params = message.get("params", {})
        if params is None:
            params = {}
        if "id" not in message:
            self._notification(method, params)
            return
        if not isinstance(params, dict):
            error = RpcError(INVALID_PARAMS, f"{method}: params must be an object")
            self._write(_error_reply(request_id, error))
            return
        if request_id in self._handling:
            error = RpcError(INVALID_REQUEST, f"request id {request_id!r} is already in use")
            self._write(_error_reply(request_id, error))
            return
        task = asyncio.create_task(self._answer(request_id, method, params))
        self._handling[request_id] = task
        task.add_done_callback(lambda done: self._answered(request_id, method, done))

    def _answered(self, request_id: Any, method: str, task: asyncio.Task[None]) -> None:
        self._handling.pop(request_id, None)
        if task.cancelled() and not self._closed.is_set():
            # cancelled before it began (its cancel came in the same read): no reply was sent
            error = RpcError(REQUEST_CANCELLED, f"{method} was cancelled")
            self._write(_error_reply(request_id, error))

    def _notification(self, method: str, params: Any) -> None:
        if method == "$/cancelRequest":
            target = params.get("id") if isinstance(params, dict) else None
            task = self._handling.get(target) if _valid_id(target) else None
            if task is not None:
                task.cancel()
            return
        if self._on_notification is not None and isinstance(params, dict):
            try:
                self._on_notification(method, params)
            except Exception:
                log.exception("%s: notification %s failed", self.name, method)

    def _settle(self, message: dict[str, Any]) -> None:
        future = self._waiting.get(message["id"])
        if future is None or future.done():
            return  # an answer nobody waits for any more
        error = message.get("error")
        if isinstance(error, dict):
            future.set_exception(
                RpcError(
                    int(error.get("code", -1)),
                    str(error.get("message", "unknown error")),
                    error.get("data"),
                )
            )
        else:
            future.set_result(message.get("result"))

    async def _answer(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        try:
            if self._on_request is None:
                raise RpcError(METHOD_NOT_FOUND, f"{self.name} answers no requests")
            result = await self._on_request(method, params)
        except asyncio.CancelledError:
            if self._closed.is_set():
                raise
            reply = _error_reply(request_id, RpcError(REQUEST_CANCELLED, f"{method} was cancelled"))
        except Exception as exc:
            reply = _error_reply(request_id, self._as_rpc_error(method, exc))
        else:
            reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
        self._write(reply)
        await self._drain()

    def _as_rpc_error(self, method: str, exc: Exception) -> RpcError:
        if isinstance(exc, RpcError):
            return exc
        mapped = self._map_error(exc) if self._map_error is not None else None
        if mapped is not None:
            return mapped
        log.exception("%s: %s failed", self.name, method)
        return RpcError(INTERNAL_ERROR, f"{method} failed: {type(exc).__name__}: {exc}")


_ID = re.compile(
    rb'^\s*\{(?:\s*"jsonrpc"\s*:\s*"2\.0"\s*,)?\s*"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)'
)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _id_in(head: bytes) -> Any:
    """The id of a request too large to read, when it comes first (the SDKs write it so), so
    its caller gets the error at once instead of waiting for its timeout; else None."""
    match = _ID.match(head)
    return json.loads(match.group(1)) if match else None


def _error_reply(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_dict()}
