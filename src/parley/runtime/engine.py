"""The engine behind `Client`: the table of live sessions over a store and a model registry."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from parley.config import (
    DEFAULT_MAX_PROMPT_CHARS,
    OnBusy,
    ProviderConfig,
    RetryPolicy,
    SessionConfig,
    validate_session_id,
)
from parley.errors import ConfigError, SessionClosedError, SessionExistsError
from parley.events import (
    SessionEvent,
    SessionResumeData,
    SessionResumeEvent,
    SessionStartData,
    SessionStartEvent,
)
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, Usage, utcnow
from parley.models.base import ModelAdapter
from parley.models.providers import build_adapter
from parley.models.registry import ModelRegistry
from parley.runtime.bus import EventBus
from parley.runtime.history import mend, repair
from parley.runtime.live import ClientParts, LiveSession
from parley.runtime.table import SessionTable
from parley.runtime.transfer import export_session, import_session
from parley.stores.base import SessionQuery, SharedStore, Store

__all__ = ["Runtime"]


class Runtime:
    """Owns every live session of one client. Sessions not live are only rows in the store."""

    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        *,
        default_model: str,
        owns_store: bool,
        max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
        retry: RetryPolicy | None = None,
        max_live_sessions: int | None = None,
        idle_ttl: float | None = None,
    ) -> None:
        self._parts = ClientParts(
            store=store,
            registry=registry,
            bus=EventBus(),
            max_prompt_chars=max_prompt_chars,
            retry=retry,
        )
        """Shared with every live session; the properties below read it."""
        self.default_model = default_model
        self._owns_store = owns_store
        self.table = SessionTable(max_live_sessions=max_live_sessions, idle_ttl=idle_ttl)
        self._locks: dict[str, _IdLock] = {}
        self._running = False

    @property
    def store(self) -> Store:
        return self._parts.store

    @property
    def shared(self) -> SharedStore | None:
        """The store when other processes share it: turns then hold their session there."""
        return self._parts.shared

    @property
    def registry(self) -> ModelRegistry:
        return self._parts.registry

    @property
    def bus(self) -> EventBus:
        """The client's: `Client.on` handlers see every session's events."""
        return self._parts.bus

    @property
    def retry(self) -> RetryPolicy:
        return self._parts.retry

    @property
    def max_prompt_chars(self) -> int:
        return self._parts.max_prompt_chars

    @property
    def running(self) -> bool:
        return self._running

    def check_running(self) -> None:
        if not self._running:
            raise SessionClosedError(
                "the client is not running; use 'async with Client() as client:' "
                "or await client.start() first"
            )

    async def start(self) -> None:
        if self._running:
            return
        self.registry.resolve(self.default_model)  # a bad default fails now, not on first send
        await self.store.open()
        if self.shared is not None:
            self.shared.on_remote_event(self._remote_event)
        self.table.start()
        self._running = True

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self.shared is not None:
            self.shared.on_remote_event(None)
        await self.table.stop()
        live = self.table.take_all()
        await asyncio.gather(
            *(session.close("was closed when its client stopped") for session in live)
        )
        await self.bus.drain()
        try:
            await self.registry.aclose()
        finally:
            if self._owns_store:
                await self.store.close()

    # --- sessions ---------------------------------------------------------------------------

    def _make_live(
        self,
        info: SessionInfo,
        history: list[Message],
        on_busy: OnBusy,
        own: ModelAdapter | None,
        behaviour: SessionConfig,
    ) -> LiveSession:
        live = LiveSession(
            info,
            history,
            client=self._parts,
            on_busy=on_busy,
            own_adapter=own,
            tools=tuple(behaviour.tools),
            on_permission_request=behaviour.on_permission_request,
            max_tool_rounds=behaviour.max_tool_rounds,
            max_history_messages=behaviour.max_history_messages,
            max_history_tokens=behaviour.max_history_tokens,
        )
        self.table.add(live)
        return live

    @contextlib.asynccontextmanager
    async def _exclusive(self, session_id: str) -> AsyncIterator[None]:
        """Serialise create, resume, close and delete of one id (other ids are not held up)."""
        entry = self._locks.get(session_id)
        if entry is None:
            entry = self._locks[session_id] = _IdLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[session_id]

    async def create(self, config: SessionConfig) -> LiveSession:
        self.check_running()
        model = config.model or self.default_model
        session_id = config.session_id or str(uuid.uuid4())  # unguessable, unlike new_id
        own = None
        if config.provider is not None:  # bring your own key: this session's own adapter
            if config.model is None:
                raise ConfigError(
                    "a session with its own provider needs model=..., the name that provider "
                    "serves (e.g. model='gpt-5' or 'llama3.2')"
                )
            own = build_adapter(f"session {session_id}", config.provider)
        else:
            self.registry.resolve(model)
        try:
            live = await self._create_locked(config, model, session_id, own)
        except BaseException:
            if own is not None:  # nobody else will ever close it
                await own.aclose()
            raise
        live.emit(SessionStartEvent, SessionStartData(model=model, title=config.title))
        return live

    async def _create_locked(
        self, config: SessionConfig, model: str, session_id: str, own: ModelAdapter | None
    ) -> LiveSession:
        async with self._exclusive(session_id):
            self.check_running()
            if self.table.get(session_id) is not None:
                raise SessionExistsError(session_id)
            now = utcnow()
            info = SessionInfo(
                session_id=session_id,
                model=model,
                title=config.title,
                created_at=now,
                updated_at=now,
                message_count=0,
                usage=Usage(cost=None),
                metadata=dict(config.metadata),
                system_message=config.system_message,
                on_busy=config.on_busy,
                provider=_keyless(config.provider),
            )
            await self.store.create_session(info)
            live = self._make_live(info, [], config.on_busy, own, config)
            live.own_config = config.provider
            return live

    async def resume(
        self,
        session_id: str,
        *,
        on_busy: OnBusy | None = None,
        provider: ProviderConfig | None = None,
        behaviour: SessionConfig | None = None,
        changed: Collection[str] = (),
    ) -> LiveSession:
        """The live session for `session_id`, loading (and mending) it from the store if needed.

        `on_busy`, when given, replaces the session's stored setting while it is open.
        `provider` is for sessions created with their own provider, and must match it when the
        session is already open.
        """
        self.check_running()
        validate_session_id(session_id)
        if on_busy not in (None, "enqueue", "reject"):
            raise ConfigError(f"on_busy must be 'enqueue' or 'reject', not {on_busy!r}")
        live = self.table.get(session_id)
        if live is None or live.closed:
            async with self._exclusive(session_id):
                self.check_running()
                live = self.table.get(session_id)  # another caller may have loaded it
                if live is None:
                    live = await self._load(
                        session_id, on_busy, provider, behaviour or SessionConfig()
                    )
        elif provider is not None and provider != live.own_config:
            raise ConfigError(
                f"session {session_id!r} is open with another provider; close() it first to "
                "resume it with this one"
            )
        self.table.use(live)
        if on_busy is not None:
            live.on_busy = on_busy
        if behaviour is not None:  # what the code gives again: tools, their hook, limits
            for name in changed:
                value = getattr(behaviour, name)
                setattr(live, name, tuple(value) if name == "tools" else value)
        return live

    async def _load(
        self,
        session_id: str,
        on_busy: OnBusy | None,
        provider: ProviderConfig | None,
        behaviour: SessionConfig,
    ) -> LiveSession:
        info = await self.store.get_session(session_id)
        own = None
        if info.provider is None and provider is not None:
            raise ConfigError(
                f"session {session_id!r} routes its model through the client's providers; "
                "provider= is only for sessions created with their own provider"
            )
        if info.provider is not None and provider is None:
            raise ConfigError(
                f"session {session_id!r} has its own provider, whose key and headers are never "
                "stored: pass it again, resume_session(session_id, provider=ProviderConfig(...))"
            )
        if provider is not None:
            own = build_adapter(f"session {session_id}", provider)
        try:
            history, settled = await self._read_mended(session_id, info.model)
        except BaseException:
            if own is not None:
                await own.aclose()
            raise
        live = self._make_live(info, history, on_busy or info.on_busy, own, behaviour)
        live.own_config = provider
        live.stale = not settled
        live.emit(
            SessionResumeEvent, SessionResumeData(model=info.model, message_count=len(history))
        )
        return live

    async def _read_mended(self, session_id: str, model: str) -> tuple[list[Message], bool]:
        """The stored history, with a turn cut off by a crash closed (see history.repair), and
        whether it is settled.

        On a shared store, an open turn may be running in another worker: it is mended only
        when no worker holds the session, else left for that worker, and the history is not
        settled: the next turn here reloads it (runtime/shared.py).
        """
        history = await self.store.read_messages(session_id)
        if not repair(history, model):
            return history, True
        shared = self.shared
        lease = None if shared is None else await shared.acquire(session_id, wait=False)
        if shared is not None and lease is None:
            return history, False  # a worker is running that turn right now
        try:
            if lease is not None:  # read again, now that nobody can append
                history = await self.store.read_messages(session_id)
            await mend(self.store, session_id, history, model)
            return history, True
        finally:
            if shared is not None and lease is not None:
                await asyncio.shield(shared.release(lease))

    def _remote_event(self, event: SessionEvent) -> None:
        """An event of a session another process serves: to Client.on, and to the session's
        own subscribers when it is open here too (its activity also keeps a send_and_wait that
        queues behind it from timing out)."""
        self.bus.publish(event)
        live = self.table.get(event.session_id)
        if live is not None:
            live.touch()
            live.publish(event)

    def _with_busy(self, info: SessionInfo) -> SessionInfo:
        live = self.table.get(info.session_id)
        if live is None:
            return info
        return dataclasses.replace(info, model=live.model, on_busy=live.on_busy, busy=live.busy)

    async def info(self, session_id: str) -> SessionInfo:
        self.check_running()
        validate_session_id(session_id)
        return self._with_busy(await self.store.get_session(session_id))

    async def list_page(self, query: SessionQuery) -> SessionPage:
        self.check_running()
        page = await self.store.list_sessions(query)
        return SessionPage(tuple(self._with_busy(i) for i in page), page.next_cursor)

    async def delete(self, session_id: str) -> None:
        """Abort its turn if one runs, then remove the session and its history."""
        self.check_running()
        validate_session_id(session_id)
        async with self._exclusive(session_id):
            live = self.table.get(session_id)
            if live is not None:
                await live.close("was deleted", deleted=True)
                self.table.remove(live)
            await self.store.delete_session(session_id)

    async def close(self, live: LiveSession) -> None:
        async with self._exclusive(live.session_id):
            await live.close()
            self.table.remove(live)

    async def messages(self, live: LiveSession) -> list[Message]:
        self.table.use(live)
        if not live.closed and not live.stale and self.shared is None:
            return list(live.history)  # else evicted, or shared with other processes: the store
        self.check_running()
        return await self.store.read_messages(live.session_id)

    async def update(
        self, session_id: str, *, title: str | None, metadata: Mapping[str, str] | None
    ) -> SessionInfo:
        self.check_running()
        validate_session_id(session_id)
        if metadata is not None:
            metadata = SessionConfig(metadata=metadata).metadata  # the same checks as at create
        await self.store.update_session(session_id, title=title, metadata=metadata)
        live = self.table.get(session_id)
        if live is not None and title is not None:
            live.title = title
        return await self.info(session_id)

    async def export(self, session_id: str) -> dict[str, Any]:
        self.check_running()
        validate_session_id(session_id)
        return await export_session(self.store, session_id)

    async def import_(self, data: dict[str, Any]) -> SessionInfo:
        self.check_running()
        return await import_session(self.store, data)

    async def set_model(self, live: LiveSession, model: str) -> None:
        self.check_running()
        self.table.use(live)
        live.resolve(model)
        await self.store.update_session(live.session_id, model=model)
        live.model = model


class _IdLock:
    """A lock for one session id, dropped from the table when nobody holds or awaits it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _keyless(provider: ProviderConfig | None) -> ProviderConfig | None:
    """What a store may keep of a provider: everything but its key and headers."""
    return None if provider is None else ProviderConfig.from_public(provider.public())
