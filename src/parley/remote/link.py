"""The connection of a remote `Client` to `parley serve`: requests out, events in.

Errors come back as the same parley exception classes the embedded runtime raises: the
server puts the class name in ``error.data.errorType`` (and the session id where the class
needs one), and `rebuild_error` makes that exception again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from parley import errors
from parley.errors import ConfigError, ParleyError, RuntimeFailure
from parley.server.rpc import ConnectionClosedError, Peer, RpcError

__all__ = ["RemoteLink", "make_error", "parse_url", "rebuild_error"]

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


def make_error(type_name: str, message: str, session_id: str | None = None) -> ParleyError:
    """The parley exception class named `type_name` (RuntimeFailure if none), with `message`."""
    cls = getattr(errors, type_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ParleyError)):
        return RuntimeFailure(f"{type_name}: {message}")
    exc = cls.__new__(cls)  # their own __init__s take other arguments; the message is made
    Exception.__init__(exc, message)
    vars(exc)["session_id"] = session_id  # what SessionNotFoundError's __str__ reads
    if isinstance(exc, errors.ProviderError):
        exc.provider, exc.status, exc.retry_after = "", None, None
    return exc


def rebuild_error(error: RpcError) -> ParleyError:
    """The parley exception a JSON-RPC error stands for."""
    data = error.data if isinstance(error.data, dict) else {}
    if "errorType" not in data:
        return RuntimeFailure(f"the runtime answered with error {error.code}: {error.message}")
    session_id = data.get("sessionId")
    return make_error(
        str(data["errorType"]), error.message, session_id if isinstance(session_id, str) else None
    )


class RemoteLink:
    """One TCP connection to a `parley serve` server."""

    def __init__(self, url: str, *, token: str | None, on_event: EventSink) -> None:
        self.url = url
        self.host, self.port = parse_url(url)
        self.token = token
        self._on_event = on_event
        self._peer: Peer | None = None
        self._reading: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return self._peer is not None and not self._peer.closed

    async def connect(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise errors.StoreError(
                f"cannot reach the parley runtime at {self.url}: {exc}; start it with "
                f"`parley serve --port {self.port}`"
            ) from exc
        self._peer = Peer(reader, writer, on_notification=self._notified, name=self.url)
        self._reading = asyncio.create_task(self._peer.run())
        params = {"token": self.token} if self.token is not None else {}
        await self.call("connect", params)

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

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """A request to the runtime; its error as the parley exception it stands for."""
        if self._peer is None:
            raise errors.SessionClosedError("the client is not running; call start() first")
        try:
            return await self._peer.request(method, params)
        except RpcError as exc:
            raise rebuild_error(exc) from None
        except ConnectionClosedError as exc:
            raise errors.StoreError(
                f"the connection to the parley runtime at {self.url} closed: {exc}"
            ) from None
