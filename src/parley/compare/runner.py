"""`Client.compare`: one conversation sent to several models at once, measured turn by turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from parley.comparison import (
    COMPARISON_TAG,
    Comparison,
    ComparisonReply,
    ComparisonRun,
    new_comparison_id,
)
from parley.config import validate_session_id
from parley.errors import ConfigError, InvalidSessionIdError, ParleyError
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
    client: Client, spec: ComparisonSpec, on_reply: OnReply | None = None
) -> Comparison:
    """Create the sessions, run every model's turns concurrently, and keep the result.

    Creating the sessions is all or nothing: an unknown model or a missing key raises before
    any turn is sent, and the sessions made so far are deleted. After that, a turn that fails
    is an error in its run's column, and the run goes on with its next turn.
    """
    store = client.store
    if not isinstance(store, ComparisonStore):
        raise ConfigError(
            f"{store!r} does not keep comparisons (it lacks the ComparisonStore methods); "
            "use one of parley's stores: sqlite://, memory:// or postgresql://"
        )
    try:
        await store.get_comparison(spec.comparison_id)
    except KeyError:
        pass
    else:
        raise ConfigError(
            f"a comparison with id {spec.comparison_id!r} already exists; choose another id "
            "or delete_comparison() it first"
        )
    sessions = await _create_sessions(client, spec)
    runs = [
        ComparisonRun(model=model, repeat=repeat, session_id=session.session_id)
        for session, model, repeat in sessions
    ]
    started = Comparison(
        comparison_id=spec.comparison_id,
        created_at=utcnow(),
        turns=spec.turns,
        models=spec.models,
        runs=tuple(runs),
        repeats=spec.repeats,
        system_message=spec.system_message,
        metadata=spec.metadata,
    )
    await store.save_comparison(started)
    gate = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None

    async def drive(index: int, session: Session) -> None:
        for prompt in spec.turns:
            if gate is None:
                reply = await _turn(session, prompt, spec.timeout)
            else:
                async with gate:
                    reply = await _turn(session, prompt, spec.timeout)
            runs[index] = replace(runs[index], replies=(*runs[index].replies, reply))
            if on_reply is not None:
                try:
                    on_reply(runs[index], reply)
                except Exception:
                    log.exception("compare on_reply callback failed")

    finished = False
    try:
        async with asyncio.TaskGroup() as group:
            for index, (session, _, _) in enumerate(sessions):
                group.create_task(drive(index, session))
        finished = True
    finally:
        result = replace(started, runs=tuple(runs), finished_at=utcnow() if finished else None)
        try:
            await store.save_comparison(result)
        finally:
            for session, _, _ in sessions:
                with contextlib.suppress(ParleyError):
                    await session.close()
    return result


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
        for session, _, _ in made:
            with contextlib.suppress(ParleyError):
                await client.delete_session(session.session_id)
        raise
    return made


async def _turn(session: Session, prompt: str, quiet: float | None) -> ComparisonReply:
    """Send one turn and measure it from the send: to its first text, and to its end."""
    first: float | None = None
    pieces: list[str] = []
    usage = Usage(cost=None)
    start = time.perf_counter()

    def watch(event: SessionEvent) -> None:
        nonlocal first, usage
        if event.type == "assistant.message_delta":
            if first is None:
                first = time.perf_counter() - start
            pieces.append(event.data.delta_content)
        elif event.type == "assistant.message":
            pieces.clear()  # a complete message of a tool round: the reply is what follows
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
    except ParleyError as exc:
        return ComparisonReply(
            text="".join(pieces),
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
