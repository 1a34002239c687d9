"""`Client`: creates, lists, resumes and deletes sessions over one store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from parley.compare.runner import ComparisonSpec, OnReply, run_comparison
from parley.comparison import COMPARISON_TAG, Comparison, ComparisonPage
from parley.config import (
    DEFAULT_MODEL,
    ClientConfig,
    OnBusy,
    ProviderConfig,
    SessionConfig,
)
from parley.errors import ConfigError, SessionNotFoundError
from parley.info import SessionInfo, SessionPage
from parley.models.providers import ConfigFile, load_config_files, merged_providers
from parley.models.registry import ModelRegistry
from parley.runtime.bus import Handler, Unsubscribe
from parley.runtime.engine import Runtime
from parley.session import Session
from parley.stores import Store, default_store_url, store_from_url
from parley.stores.base import ComparisonStore, SessionQuery, check_page
from parley.tools import PermissionHandler, Tool

__all__ = ["Client"]


def _session_config(config: SessionConfig | None, kwargs: dict[str, Any]) -> SessionConfig:
    """What `create_session` was given, as one SessionConfig (for the embedded and the remote
    client alike); ConfigError for both forms at once, or for something else."""
    if config is not None and kwargs:
        raise ConfigError(
            "pass either a SessionConfig or keyword arguments to create_session, not both"
        )
    if config is None:
        try:
            return SessionConfig(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"create_session: {exc}; see SessionConfig's fields") from None
    if not isinstance(config, SessionConfig):
        raise ConfigError(f"create_session takes a SessionConfig, not {type(config).__name__}")
    return config


class Client:
    """The entry point: many sessions, one store, one event stream.

    ``Client()`` runs embedded: the runtime in this process and a SQLite file at
    ``./.parley/parley.db`` (or ``$PARLEY_STORE``). ``Client(url="tcp://host:port")`` uses a
    `parley serve` runtime elsewhere instead, with the same methods (`token=` if it has one).
    `store` takes a URL (``"sqlite:///path.db"``, ``"memory://"``) or a `Store` object; a store
    given as an object is opened by the client but left for its owner to close.

    Use it as ``async with Client() as client:``, or call `start` and `stop` yourself.

    Open sessions stay in memory until closed, unless told otherwise: `max_live_sessions`
    evicts the least recently used idle sessions beyond that many, and `idle_ttl` evicts
    sessions idle for that many seconds. An evicted session keeps working: its next send or
    read loads its history from the store, and a session whose turn is queued or running is
    never evicted.
    """

    def __new__(cls, *args: Any, url: str | None = None, **kwargs: Any) -> Client:
        if url is not None and cls is Client:
            from parley.remote.client import RemoteClient

            return super().__new__(RemoteClient)
        return super().__new__(cls)

    def __init__(
        self,
        store: str | Store | None = None,
        config: ClientConfig | None = None,
        *,
        max_live_sessions: int | None = None,
        idle_ttl: float | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if url is not None or token is not None:
            raise ConfigError("token= goes with url='tcp://host:port' (a remote runtime)")
        self.config = config or ClientConfig()
        if store is None:
            store = default_store_url()
        if isinstance(store, str):
            store_obj, owns = store_from_url(store), True
        elif isinstance(store, Store):
            store_obj, owns = store, False
        else:
            raise ConfigError(f"store must be a URL string or a Store, not {type(store).__name__}")
        self.store = store_obj
        files = load_config_files() if self.config.config_files else ConfigFile()
        registry = ModelRegistry(
            providers=merged_providers(files, self.config.providers),
            aliases={**files.aliases, **self.config.aliases},
        )
        self._runtime = Runtime(
            store_obj,
            registry,
            default_model=self.config.default_model or files.default_model or DEFAULT_MODEL,
            retry=self.config.retry,
            owns_store=owns,
            max_prompt_chars=self.config.max_prompt_chars,
            max_live_sessions=max_live_sessions,
            idle_ttl=idle_ttl,
        )

    def __repr__(self) -> str:
        state = "running" if self._runtime.running else "stopped"
        return f"<Client store={self.store!r} {state}>"

    @property
    def live_sessions(self) -> int:
        """How many sessions are open in memory now (evicted ones are not counted)."""
        return len(self._runtime.table)

    @property
    def default_model(self) -> str:
        """The model of sessions created without one."""
        return self._runtime.default_model

    @property
    def models(self) -> ModelRegistry:
        """The model registry: which providers serve which model strings."""
        return self._runtime.registry

    async def start(self) -> None:
        """Open the store (migrating its schema). Calling it twice is harmless."""
        await self._runtime.start()

    async def stop(self) -> None:
        """Close every live session (aborting running turns, keeping their partial replies)
        and the store if the client opened it from a URL."""
        await self._runtime.stop()

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def create_session(
        self, config: SessionConfig | None = None, /, **kwargs: Any
    ) -> Session:
        """Create a session from a `SessionConfig`, or from its fields as keyword arguments.

        Raises SessionExistsError for an id already taken, InvalidSessionIdError for an id that
        breaks the naming rules, UnknownModelError for a model no provider serves.
        """
        config = _session_config(config, kwargs)
        return Session(self._runtime, await self._runtime.create(config))

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
        """Open an existing session with its full history (SessionNotFoundError if none).

        A turn that a crash cut off is closed in the history as interrupted, so the session
        accepts the next send. The session keeps the `on_busy` it was created with unless
        `on_busy` says otherwise.
        A session created with its own `provider` needs it again here (its key and headers are
        never stored); for any other session, `provider` is a ConfigError. Tools are code, not
        data: give them (and the permission hook and limits) again here after a restart; for a
        session already open, the ones given replace its own and the others stay.
        """
        given: dict[str, Any] = {
            "tools": tools,
            "on_permission_request": on_permission_request,
            "max_tool_rounds": max_tool_rounds,
            "max_history_messages": max_history_messages,
            "max_history_tokens": max_history_tokens,
        }
        # Only what is given changes an open session; a session loaded from the store starts
        # from SessionConfig's defaults for the rest.
        behaviour = SessionConfig(**{k: v for k, v in given.items() if v is not None})
        changed = {k for k, v in given.items() if v is not None}
        live = await self._runtime.resume(
            session_id, on_busy=on_busy, provider=provider, behaviour=behaviour, changed=changed
        )
        return Session(self._runtime, live)

    async def get_session(self, session_id: str) -> SessionInfo:
        """A session's metadata, without loading its history (SessionNotFoundError if none)."""
        return await self._runtime.info(session_id)

    async def list_sessions(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> SessionPage:
        """A page of session metadata, most recently updated first; no history is read.

        Filter by `model`, by `metadata` (every key/value pair must match) or by `tag` (the
        metadata key must exist). Pass the page's `next_cursor` back for the next page.
        """
        query = SessionQuery(
            limit=limit, cursor=cursor, model=model, metadata=dict(metadata or {}), tag=tag
        )
        return await self._runtime.list_page(query)

    async def update_session(
        self,
        session_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionInfo:
        """Change a session's title or metadata (replaced whole); returns the new SessionInfo."""
        return await self._runtime.update(session_id, title=title, metadata=metadata)

    async def export_session(self, session_id: str) -> dict[str, Any]:
        """The session's settings and whole history as JSON-ready data (no keys, no tools)."""
        return await self._runtime.export(session_id)

    async def import_session(self, data: dict[str, Any]) -> SessionInfo:
        """Recreate an exported session, same id and history; SessionExistsError if taken."""
        return await self._runtime.import_(data)

    async def delete_session(self, session_id: str) -> None:
        """Delete a session and its history; a running turn is aborted first."""
        await self._runtime.delete(session_id)

    # --- comparisons --------------------------------------------------------------------------

    async def compare(
        self,
        turns: Sequence[str],
        *,
        models: Sequence[str],
        system_message: str | None = None,
        repeats: int = 1,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - inactivity per turn, as send_and_wait
        max_concurrency: int | None = None,
        metadata: Mapping[str, str] | None = None,
        comparison_id: str | None = None,
        on_reply: OnReply | None = None,
    ) -> Comparison:
        """Send the same user `turns` to each of `models` and return them side by side.

        One ordinary session per model and repeat, tagged ``comparison=<id>`` in its metadata,
        each keeping its own history; all of them run at once (at most `max_concurrency` turns
        at a time, if given), each turn measured from its send (latency, time to first token,
        tokens, cost). A turn that fails or times out (`timeout`: seconds without an event, as
        in `send_and_wait`) shows as an error in its reply, and that run goes on with its next
        turn while the others finish. An unknown model or a missing key raises before anything
        is sent. The comparison is kept in the store: `get_comparison`, `list_comparisons`.
        `on_reply(run, reply)` is called after each turn of each run, for progress displays.
        """
        spec = ComparisonSpec(
            turns,
            models,
            system_message=system_message,
            repeats=repeats,
            timeout=timeout,
            max_concurrency=max_concurrency,
            metadata=metadata,
            comparison_id=comparison_id,
            max_prompt_chars=self.config.max_prompt_chars,
        )
        return await run_comparison(self, self._comparisons(), spec, on_reply)

    def _comparisons(self) -> ComparisonStore:
        self._runtime.check_running()
        if not isinstance(self.store, ComparisonStore):
            raise ConfigError(
                f"{self.store!r} does not keep comparisons (it lacks the ComparisonStore "
                "methods); use one of parley's stores: sqlite://, memory:// or postgresql://"
            )
        return self.store

    async def get_comparison(self, comparison_id: str) -> Comparison:
        """A comparison kept by `compare` (ComparisonNotFoundError if none)."""
        return await self._comparisons().get_comparison(comparison_id)

    async def list_comparisons(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> ComparisonPage:
        """A page of comparisons, newest first; pass the page's `next_cursor` back for more."""
        check_page(limit, cursor)
        return await self._comparisons().list_comparisons(limit, cursor)

    async def delete_comparison(self, comparison_id: str, *, sessions: bool = True) -> None:
        """Delete a comparison and, unless `sessions=False`, the sessions it made."""
        store = self._comparisons()
        comparison = await store.get_comparison(comparison_id)
        if sessions:
            for run in comparison.runs:
                try:
                    info = await self.get_session(run.session_id)
                except SessionNotFoundError:
                    continue  # deleted by hand already
                if info.metadata.get(COMPARISON_TAG) == comparison_id:  # not a reused id
                    await self.delete_session(run.session_id)
        await store.delete_comparison(comparison_id)

    def on(self, handler: Handler) -> Unsubscribe:
        """Call `handler(event)` for every event of every session; returns a function to stop."""
        return self._runtime.bus.subscribe(handler)
