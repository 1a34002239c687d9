"""`Client.compare`: one conversation sent to several models at once, measured turn by turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from parley.comparison import (
    COMPARISON_TAG,
    Comparison,
    ComparisonReply,
    ComparisonRun,
    new_comparison_id,
)
from parley.config import validate_session_id
from parley.errors import ConfigError, InvalidSessionIdError, ParleyError, StoreError
from parley.events import SessionEvent
from parley.messages import Usage, utcnow
from parley.stores.base import ComparisonStore

if TYPE_CHECKING:
    from parley.client import Client
    from parley.session import Session

__all__ = ["ComparisonSpec", "OnReply", "run_comparison"]

log = logging.getLogger("parley")

OnReply = Callable[[ComparisonRun, ComparisonReply], None]
"""Called after each turn of each run with the run so far (its last reply is `reply`)."""


class ComparisonSpec:
    """`Client.compare`'s arguments, checked before anything is created."""

    def __init__(
        self,
        turns: Sequence[str],
        models: Sequence[str],
        *,
        system_message: str | None,
        repeats: int,
        timeout: float | None,
        max_concurrency: int | None,
        metadata: Mapping[str, str] | None,
        comparison_id: str | None,
        max_prompt_chars: int,
    ) -> None:
        self.turns = _texts("turns", turns, "the user messages to send, in order")
        for n, turn in enumerate(self.turns):
            if len(turn) > max_prompt_chars:
                raise ConfigError(
                    f"turn {n + 1} is {len(turn):,} characters, over the client's "
                    f"max_prompt_chars ({max_prompt_chars:,}); shorten it or raise the limit"
                )
        self.models = _texts("models", models, 'model strings such as "openai:gpt-5"')
        repeated = sorted({m for m in self.models if self.models.count(m) > 1})
        if repeated:
            raise ConfigError(
                f"models lists {', '.join(map(repr, repeated))} more than once; "
                "use repeats=N to run a model several times"
            )
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ConfigError(f"repeats must be a positive int, not {repeats!r}")
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ConfigError(f"timeout must be > 0 seconds, or None; got {timeout!r}")
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ConfigError(
                f"max_concurrency must be a positive int or None, not {max_concurrency!r}"
            )
        if comparison_id is None:
            comparison_id = new_comparison_id()
        else:
            try:
                validate_session_id(comparison_id)  # ids of both kinds follow the same rules
            except InvalidSessionIdError as exc:
                raise ConfigError(f"invalid comparison id {comparison_id!r}: {exc.rule}") from None
        self.comparison_id = comparison_id
        self.system_message = system_message
        self.repeats = repeats
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.metadata = dict(metadata or {})
        reserved = sorted(k for k in self.metadata if k.split(".")[0] == COMPARISON_TAG)
        if reserved:
            raise ConfigError(
                f"metadata keys {reserved} are reserved: compare tags its sessions with them"
            )


def _texts(name: str, values: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of strings ({what}), not {values!r}")
    if not values:
        raise ConfigError(f"{name} is empty: give at least one ({what})")
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"each of {name} must be a non-empty string, not {value!r}")
    return tuple(values)


async def run_comparison(
    client: Client,
    store: ComparisonStore,
    spec: ComparisonSpec,
    on_reply: OnReply | None = None,
) -> Comparison:
    """Create the sessions, run every model's turns concurrently, and keep the result.

    The comparison's id is claimed in the store first (a taken id is refused, even by another
    process racing for it). Creating the sessions is all or nothing: an unknown model or a
    missing key raises before any turn is sent, and what was made is removed. After that, a
    turn that fails is an error in its run's column, the run goes on with its next turn, and
    the comparison is saved as turns end (at most every `_SAVE_EVERY` seconds) and when it
    ends, so a crash loses only the last moments' measurements (the sessions keep the replies).
    """
    record = _Record(
        store,
        Comparison(
            comparison_id=spec.comparison_id,
            created_at=utcnow(),
            turns=spec.turns,
            models=spec.models,
            runs=(),
            repeats=spec.repeats,
            system_message=spec.system_message,
            metadata=spec.metadata,
        ),
    )
    await store.save_comparison(record.comparison, new=True)  # claims the id, or refuses
    sessions: list[tuple[Session, str, int]] = []
    try:
        sessions = await _create_sessions(client, spec)
        record.runs = [
            ComparisonRun(model=model, repeat=repeat, session_id=session.session_id)
            for session, model, repeat in sessions
        ]
        await record.save()
    except BaseException:
        await _remove(client, [session for session, _, _ in sessions])
        with contextlib.suppress(ParleyError):
            await store.delete_comparison(spec.comparison_id)
        raise
    gate = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None

    async def drive(index: int, session: Session) -> None:
        for prompt in spec.turns:
            async with gate or contextlib.nullcontext():
                reply = await _turn(session, prompt, spec.timeout)
            run = record.add(index, reply)
            if on_reply is not None:
                try:
                    on_reply(run, reply)
                except Exception:
                    log.exception("compare on_reply callback failed")
            await record.save(quietly=True)

    try:
        async with asyncio.TaskGroup() as group:
            for index, (session, _, _) in enumerate(sessions):
                group.create_task(drive(index, session))
        record.finished_at = utcnow()
    finally:
        try:
            await record.save()
        except ParleyError as exc:
            if record.finished_at is None:  # the run's own failure or cancellation goes on
                log.warning("saving the stopped comparison %s failed", spec.comparison_id)
            else:
                raise StoreError(
                    f"comparison {spec.comparison_id!r} ran, but its result could not be saved "
                    f"({exc}); its sessions keep every reply (list_sessions(metadata="
                    f"{{'comparison': {spec.comparison_id!r}}}))"
                ) from exc
        finally:
            for session, _, _ in sessions:
                with contextlib.suppress(ParleyError):
                    await session.close()
    return record.snapshot()


_SAVE_EVERY = 1.0
"""Seconds between the saves made as turns end: each writes the whole comparison, so a save
per turn would write a long comparison's replies over and over."""


class _Record:
    """The comparison as it grows, saved whole: one save at a time, each of the latest state,
    so a slow save never overwrites a newer one."""

    def __init__(self, store: ComparisonStore, comparison: Comparison) -> None:
        self.store = store
        self.comparison = comparison
        self.runs: list[ComparisonRun] = []
        self.finished_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._saved_at = 0.0

    def add(self, index: int, reply: ComparisonReply) -> ComparisonRun:
        run = self.runs[index]
        self.runs[index] = run = replace(run, replies=(*run.replies, reply))
        return run

    def snapshot(self) -> Comparison:
        return replace(self.comparison, runs=tuple(self.runs), finished_at=self.finished_at)

    async def save(self, *, quietly: bool = False) -> None:
        """Save the latest state. `quietly`: only if the last save is `_SAVE_EVERY` old, and
        a failure is logged (the next save tries again)."""
        if quietly and time.monotonic() - self._saved_at < _SAVE_EVERY:
            return
        async with self._lock:
            self._saved_at = time.monotonic()
            try:
                await self.store.save_comparison(self.snapshot())
            except ParleyError:
                if not quietly:
                    raise
                log.warning(
                    "saving comparison %s failed; the next turn's save tries again",
                    self.comparison.comparison_id,
                    exc_info=True,
                )


async def _create_sessions(client: Client, spec: ComparisonSpec) -> list[tuple[Session, str, int]]:
    """One session per model and repeat, tagged; the model string kept as given (an alias
    stays an alias)."""
    made: list[tuple[Session, str, int]] = []
    try:
        for model in spec.models:
            for repeat in range(spec.repeats):
                tags = {
                    **spec.metadata,
                    COMPARISON_TAG: spec.comparison_id,
                    f"{COMPARISON_TAG}.model": model,
                    f"{COMPARISON_TAG}.repeat": str(repeat),
                }
                session = await client.create_session(
                    model=model, system_message=spec.system_message, metadata=tags
                )
                made.append((session, model, repeat))
    except BaseException:
        await _remove(client, [session for session, _, _ in made])
        raise
    return made


async def _remove(client: Client, sessions: list[Session]) -> None:
    for session in sessions:
        with contextlib.suppress(ParleyError):
            await client.delete_session(session.session_id)


async def _turn(session: Session, prompt: str, quiet: float | None) -> ComparisonReply:
    """Send one turn and measure it from the send: to its first text, and to its end."""
    first: float | None = None
    pieces: list[str] = []
    said = ""  # the last complete message of the turn (a tool round's, or a failed call's)
    usage = Usage(cost=None)
    start = time.perf_counter()

    def watch(event: SessionEvent) -> None:
        nonlocal first, usage, said
        if event.type == "assistant.message_delta":
            if first is None:
                first = time.perf_counter() - start
            pieces.append(event.data.delta_content)
        elif event.type == "assistant.message":
            said = event.data.content  # complete: the reply is in it, or in what follows
            pieces.clear()
        elif event.type == "assistant.usage":
            data = event.data
            usage = usage + Usage(
                input_tokens=data.input_tokens,
                output_tokens=data.output_tokens,
                cached_tokens=data.cached_tokens,
                cost=data.cost,
            )

    unsubscribe = session.on(watch)
    try:
        message = await session.send_and_wait(prompt, timeout=quiet)
    except Exception as exc:  # one model's failure, even a bug, must not stop the others
        if not isinstance(exc, ParleyError):
            log.exception("a turn of session %s failed unexpectedly", session.session_id)
        return ComparisonReply(
            text="".join(pieces) or said,
            latency=time.perf_counter() - start,
            first_token=first,
            usage=usage,
            error=str(exc),
            error_type=type(exc).__name__,
        )
    finally:
        unsubscribe()
    return ComparisonReply(
        text=message.text, latency=time.perf_counter() - start, first_token=first, usage=usage
    )
