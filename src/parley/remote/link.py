"""The connection of a remote `Client` to `parley serve`: requests out, events in.

Errors come back as the same parley exception classes the embedded runtime raises: the
server puts the class name in ``error.data.errorType`` (and the session id where the class
needs one), and `rebuild_error` makes that exception again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from parley import errors
from parley.errors import ConfigError, ParleyError, RuntimeConnectionError, RuntimeFailure
from parley.server.copilot import UNAUTHORIZED
from parley.server.rpc import ConnectionClosedError, Peer, RpcError

__all__ = ["RemoteLink", "parse_url", "rebuild_error"]

EventSink = Callable[[str, dict[str, Any]], None]


def parse_url(url: str) -> tuple[str, int]:
    """``tcp://host:port`` as (host, port); ConfigError saying the form otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ConfigError(
            f"a remote runtime URL looks like 'tcp://127.0.0.1:4321' (a `parley serve --port` "
            f"server), not {url!r}"
        )
    return parts.hostname, parts.port


def rebuild_error(error: RpcError) -> ParleyError:
    """The parley exception a JSON-RPC error stands for: the class named by `data.errorType`
    (RuntimeFailure if it names none), with the runtime's message and fields."""
    data = error.data if isinstance(error.data, dict) else {}
    cls = getattr(errors, str(data.get("errorType")), None)
    if not (isinstance(cls, type) and issubclass(cls, ParleyError)):
        return RuntimeFailure(f"the runtime answered with error {error.code}: {error.message}")
    # Their own __init__s build messages from other arguments; this one is built already.
    exc = cls.__new__(cls)
    Exception.__init__(exc, error.message)
    session_id = data.get("sessionId")  # what SessionNotFoundError's __str__ reads
    vars(exc)["session_id"] = session_id if isinstance(session_id, str) else None
    if isinstance(exc, errors.ProviderError):
        exc.provider = str(data.get("provider") or "")
        status, retry_after = data.get("status"), data.get("retryAfter")
        exc.status = status if isinstance(status, int) else None
        exc.retry_after = float(retry_after) if isinstance(retry_after, int | float) else None
    return exc


class RemoteLink:
    """One TCP connection to a `parley serve` server."""

    def __init__(
        self, url: str, *, token: str | None, on_event: EventSink, on_lost: Callable[[], None]
    ) -> None:
        self.url = url
        self.host, self.port = parse_url(url)
        self.token = token
        self._on_event = on_event
        self._on_lost = on_lost
        self._peer: Peer | None = None
        self._reading: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return self._peer is not None and not self._peer.closed

    async def connect(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise RuntimeConnectionError(
                f"cannot reach the parley runtime at {self.url}: {exc}; is `parley serve "
                f"--port {self.port}` running there?"
            ) from exc
        peer = self._peer = Peer(reader, writer, on_notification=self._notified, name=self.url)
        self._reading = asyncio.create_task(peer.run())
        self._reading.add_done_callback(lambda _: self._on_lost())
        params = {"token": self.token} if self.token is not None else {}
        try:
            await peer.request("connect", params)
        except RpcError as exc:
            await self.close()
            if exc.code == UNAUTHORIZED:
                raise ConfigError(
                    f"the parley runtime at {self.url} refused the connection token: pass "
                    "Client(url=..., token=...) (or set COPILOT_CONNECTION_TOKEN) to the token "
                    "it was started with"
                ) from None
            raise rebuild_error(exc) from None
        except ConnectionClosedError as exc:
            await self.close()
            raise RuntimeConnectionError(
                f"the parley runtime at {self.url} closed the connection at once ({exc}); "
                "is it a `parley serve --port` server?"
            ) from None

    async def close(self) -> None:
        if self._peer is not None:
            await self._peer.close()
        if self._reading is not None:
            with contextlib.suppress(Exception):
                await self._reading
        self._peer = self._reading = None

    def _notified(self, method: str, params: dict[str, Any]) -> None:
        if method == "session.event":
            session_id, event = params.get("sessionId"), params.get("event")
            if isinstance(session_id, str) and isinstance(event, dict):
                self._on_event(session_id, event)

    def call(self, method: str, params: dict[str, Any]) -> Awaitable[Any]:
        """Send a request to the runtime now (requests leave in call order); the awaitable
        gives its result, or raises the parley exception its error stands for."""
        if self._peer is None:
            raise errors.SessionClosedError("the client is not running; call start() first")
        try:
            reply = self._peer.request(method, params)
        except ConnectionClosedError as exc:
            raise self._closed_error(exc) from None
        return self._result(reply)

    async def _result(self, reply: Awaitable[Any]) -> Any:
        try:
            return await reply
        except RpcError as exc:
            raise rebuild_error(exc) from None
        except ConnectionClosedError as exc:
            raise self._closed_error(exc) from None

    def _closed_error(self, exc: ConnectionClosedError) -> RuntimeConnectionError:
        return RuntimeConnectionError(
            f"the connection to the parley runtime at {self.url} closed ({exc}); what it "
            "stored is kept: start the client again and resume_session to go on"
        )
