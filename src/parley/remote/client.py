"""`Client(url="tcp://host:port")`: the same API, on a `parley serve` runtime elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from parley.client import Client, _session_config
from parley.comparison import Comparison, ComparisonPage
from parley.config import ClientConfig, OnBusy, ProviderConfig, SessionConfig
from parley.errors import (
    ConfigError,
    ParleyError,
    RuntimeConnectionError,
    SessionClosedError,
    SessionNotFoundError,
)
from parley.info import SessionInfo, SessionPage
from parley.models.registry import ModelRegistry
from parley.remote.link import RemoteLink
from parley.remote.session import RemoteSession
from parley.runtime.bus import EventBus, Handler, Unsubscribe
from parley.server.wire import event_from_copilot, info_from_wire
from parley.session import Session
from parley.tools import PermissionHandler, Tool, check_tools

__all__ = ["RemoteClient"]


def _unsupported(what: str) -> ConfigError:
    return ConfigError(f"{what} is not available on a remote client; run it where the store is")


class RemoteClient(Client):
    """What `Client(url=...)` makes: the sessions live in the `parley serve` runtime at `url`,
    with its store and providers; tools given here run here. Comparisons and the model registry
    stay with the runtime's host.

    `token` is the runtime's connection token (default: ``$COPILOT_CONNECTION_TOKEN``).
    `stop()` disconnects: turns already sent still finish and are stored by the runtime.
    """

    def __init__(
        self,
        store: Any = None,
        config: ClientConfig | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        max_live_sessions: int | None = None,
        idle_ttl: float | None = None,
    ) -> None:
        if url is None:
            raise ConfigError("RemoteClient needs url='tcp://host:port'")
        given = {"store": store, "config": config, "max_live_sessions": max_live_sessions,
                 "idle_ttl": idle_ttl}  # fmt: skip
        if named := [name for name, value in given.items() if value is not None]:
            raise ConfigError(
                f"{', '.join(named)}: a remote client has no store, providers or memory of its "
                "own; these are the settings of the `parley serve` process that holds the "
                "sessions (its --store, config files and environment)"
            )
        self.config = ClientConfig()
        self.url = url
        if token is None:
            token = os.environ.get("COPILOT_CONNECTION_TOKEN") or None
        self._link = RemoteLink(url, token=token, on_event=self._event, on_lost=self._lost)
        self._sessions: dict[str, RemoteSession] = {}
        self._bus = EventBus()
        self._watching: asyncio.Task[Any] | None = None
        self._default_model: str | None = None

    def __repr__(self) -> str:
        state = "running" if self._link.open else "stopped"
        return f"<Client url={self.url!r} {state}>"

    @property
    def live_sessions(self) -> int:
        """Sessions this client has open (the runtime may hold others)."""
        return len(self._sessions)

    @property
    def default_model(self) -> str:
        """The runtime's default model (the first that ``models.list`` names)."""
        if self._default_model is None:
            raise SessionClosedError("the client is not running; call start() first")
        return self._default_model

    @property
    def models(self) -> ModelRegistry:
        raise _unsupported("the model registry")

    async def start(self) -> None:
        if self._link.open:
            return
        await self._link.connect()
        listed = await self._link.call("models.list", {})
        self._default_model = str(listed["models"][0]["id"])
        self._watching = None
        self._watch()  # handlers given before start

    async def stop(self) -> None:
        for session in self._sessions.values():
            session._end("was closed when its client stopped", running=SessionClosedError)
        self._sessions.clear()
        if self._watching is not None:
            with contextlib.suppress(ParleyError):
                await self._watching
        await self._link.close()

    def _lost(self) -> None:
        """The connection ended (stop, or the runtime went away): no session of ours is open."""
        reason = f"lost its connection to the runtime at {self.url}"
        for session in self._sessions.values():
            session._end(reason, running=RuntimeConnectionError)
        self._sessions.clear()

    def _forget(self, session: RemoteSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

    def _event(self, session_id: str, wire: dict[str, Any]) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.deliver(wire)  # which publishes to this client's bus too
            return
        event = event_from_copilot(session_id, wire)
        if event is not None:
            self._bus.publish(event)

    def _open(
        self,
        session_id: str,
        model: str,
        title: str | None,
        tools: Sequence[Tool],
        on_permission_request: PermissionHandler | None,
    ) -> RemoteSession:
        session = RemoteSession(
            self._link,
            session_id,
            model=model,
            title=title,
            tools=tools,
            on_permission_request=on_permission_request,
            forget=self._forget,
        )
        session.on(self._bus.publish)
        self._sessions[session_id] = session
        return session

    @staticmethod
    def _tool_specs(tools: Sequence[Tool]) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in check_tools(tools)
        ]

    async def create_session(
        self, config: SessionConfig | None = None, /, **kwargs: Any
    ) -> Session:
        config = _session_config(config, kwargs)
        if config.provider is not None:
            raise _unsupported("a session's own provider (keys stay on the runtime's host)")
        params: dict[str, Any] = {
            "model": config.model,
            "sessionId": config.session_id,
            "systemMessage": {"content": config.system_message} if config.system_message else None,
            "title": config.title,
            "metadata": dict(config.metadata),
            "onBusy": config.on_busy,
            "maxToolRounds": config.max_tool_rounds,
            "maxHistoryMessages": config.max_history_messages,
            "maxHistoryTokens": config.max_history_tokens,
            "tools": self._tool_specs(config.tools),
            "streaming": True,
            "requestPermission": config.on_permission_request is not None,
        }
        result = await self._link.call(
            "session.create", {k: v for k, v in params.items() if v is not None}
        )
        info = await self.get_session(result["sessionId"])
        return self._open(
            info.session_id, info.model, info.title, config.tools, config.on_permission_request
        )

    async def resume_session(
        self,
        session_id: str,
        *,
        on_busy: OnBusy | None = None,
        provider: ProviderConfig | None = None,
        tools: Sequence[Tool] | None = None,
        on_permission_request: PermissionHandler | None = None,
        max_tool_rounds: int | None = None,
        max_history_messages: int | None = None,
        max_history_tokens: int | None = None,
    ) -> Session:
        if provider is not None:
            raise _unsupported("a session's own provider (keys stay on the runtime's host)")
        open_one = self._sessions.get(session_id)
        params: dict[str, Any] = {"sessionId": session_id, "streaming": True}
        if tools is not None:
            params["tools"] = self._tool_specs(tools)
        if on_permission_request is not None:
            params["requestPermission"] = True
        for key, value in (
            ("onBusy", on_busy),
            ("maxToolRounds", max_tool_rounds),
            ("maxHistoryMessages", max_history_messages),
            ("maxHistoryTokens", max_history_tokens),
        ):
            if value is not None:
                params[key] = value
        await self._link.call("session.resume", params)
        if open_one is not None and open_one._closed is None:
            open_one._take(tools, on_permission_request)  # as embedded: given ones replace
            return open_one
        info = await self.get_session(session_id)
        return self._open(session_id, info.model, info.title, tools or (), on_permission_request)

    async def get_session(self, session_id: str) -> SessionInfo:
        result = await self._link.call("session.getMetadata", {"sessionId": session_id})
        if result.get("session") is None:
            raise SessionNotFoundError(session_id)
        return info_from_wire(result["session"])

    async def list_sessions(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> SessionPage:
        params = {"limit": limit, "cursor": cursor, "model": model, "tag": tag,
                  "metadata": dict(metadata) if metadata else None}  # fmt: skip
        result = await self._link.call(
            "session.list", {k: v for k, v in params.items() if v is not None}
        )
        sessions = tuple(info_from_wire(entry) for entry in result["sessions"])
        return SessionPage(sessions, result.get("nextCursor"))

    async def update_session(
        self,
        session_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionInfo:
        params: dict[str, Any] = {"sessionId": session_id, "title": title}
        if metadata is not None:
            params["metadata"] = dict(metadata)
        result = await self._link.call("parley.session.update", params)
        info = info_from_wire(result["session"])
        session = self._sessions.get(session_id)
        if session is not None and title is not None:
            session._title = info.title
        return info

    async def export_session(self, session_id: str) -> dict[str, Any]:
        result = await self._link.call("parley.session.export", {"sessionId": session_id})
        data: dict[str, Any] = result["data"]
        return data

    async def import_session(self, data: dict[str, Any]) -> SessionInfo:
        if not isinstance(data, dict):
            raise ConfigError(f"import_session takes an export's dict, not {type(data).__name__}")
        result = await self._link.call("parley.session.import", {"data": data})
        return info_from_wire(result["session"])

    async def delete_session(self, session_id: str) -> None:
        await self._link.call("session.delete", {"sessionId": session_id})
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session._end("was deleted", deleted=True)

    # --- comparisons: on the runtime's host ------------------------------------------------

    async def compare(self, *args: Any, **kwargs: Any) -> Comparison:
        raise _unsupported("compare()")

    async def get_comparison(self, comparison_id: str) -> Comparison:
        raise _unsupported("get_comparison()")

    async def list_comparisons(self, *args: Any, **kwargs: Any) -> ComparisonPage:
        raise _unsupported("list_comparisons()")

    async def delete_comparison(self, comparison_id: str, *, sessions: bool = True) -> None:
        raise _unsupported("delete_comparison()")

    def on(self, handler: Handler) -> Unsubscribe:
        """Every session's events, this client's and the runtime's others alike."""
        unsubscribe = self._bus.subscribe(handler)
        self._watch()
        return unsubscribe

    def _watch(self) -> None:
        """Ask the runtime for every session's events, once some handler wants them."""
        if self._watching is None and self._bus and self._link.open:
            self._watching = asyncio.ensure_future(
                self._link.call("parley.subscribe", {"all": True})
            )
