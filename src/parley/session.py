"""`Session`: one conversation. A thin handle over the runtime's live session."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from types import TracebackType

from parley.errors import (
    ConfigError,
    ParleyError,
    SessionBusyError,
    SessionClosedError,
    TurnTimeoutError,
)
from parley.events import SessionEvent
from parley.messages import Message, MessageOptions
from parley.runtime.bus import Handler, Unsubscribe
from parley.runtime.engine import Runtime
from parley.runtime.live import LiveSession
from parley.runtime.turn import Turn
from parley.tools import Tool, check_tools

__all__ = ["Session"]


def _prompt(message: str | MessageOptions) -> tuple[str, tuple[Tool, ...]]:
    if isinstance(message, MessageOptions):
        return message.prompt, check_tools(message.tools)
    if isinstance(message, str):
        return message, ()
    raise TypeError(f"send takes a str or MessageOptions, not {type(message).__name__}")


async def _until_idle(
    queue: asyncio.Queue[SessionEvent | None], failed: Callable[[], ParleyError | None]
) -> AsyncGenerator[SessionEvent, None]:
    """One turn's events from `queue`, up to its ``session.idle``. None in the queue means the
    turn was dropped before it ran: `failed()` is raised if it gives an error."""
    while True:
        event = await queue.get()
        if event is None:
            error = failed()
            if error is not None:
                raise error
            return
        yield event
        if event.type == "session.idle":
            return


class Session:
    """A conversation with its own id, model, history and cost.

    Get one from `Client.create_session` or `Client.resume_session`. Sends are queued turns that
    run one after another, never interleaved; see `send`, `send_and_wait` and `stream`.
    """

    __slots__ = ("_live", "_runtime")

    def __init__(self, runtime: Runtime, live: LiveSession) -> None:
        self._runtime = runtime
        self._live = live

    def __repr__(self) -> str:
        return f"<Session {self.session_id!r} model={self.model!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other._live is self._live

    def __hash__(self) -> int:
        return hash(self.session_id)

    @property
    def session_id(self) -> str:
        return self._live.session_id

    @property
    def model(self) -> str:
        """The model string the next turn uses."""
        return self._live.model

    @property
    def title(self) -> str | None:
        return self._live.title

    @property
    def busy(self) -> bool:
        """Whether a turn of this session is queued or running."""
        return self._live.busy

    # --- sending ----------------------------------------------------------------------------

    def _enqueue(self, message: str | MessageOptions, *, listen: bool, admit: bool = False) -> Turn:
        prompt, tools = _prompt(message)
        turn = self._live.enqueue(prompt, listen=listen, tools=tools, admit=admit)
        self._runtime.table.use(self._live)  # after: a refused send does not count as use
        return turn

    async def send(self, message: str | MessageOptions) -> str:
        """Queue a turn and return its user message id at once; events report its progress.

        With on_busy="reject", SessionBusyError when a turn of this session is running, in this
        process or (on a shared store) in another one.
        """
        self._runtime.check_running()
        turn = self._enqueue(message, listen=False, admit=True)
        if turn.admitted is not None:  # another worker may hold the session: ask first
            await turn.admitted.wait()
            if isinstance(turn.error, SessionBusyError):
                raise turn.error
        return turn.message_id

    async def send_and_wait(
        self,
        message: str | MessageOptions,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - inactivity, not a deadline
    ) -> Message:
        """Send, wait for the turn to finish, and return the assistant's message.

        `timeout` counts inactivity: it runs out only when the session emits no event for that
        many seconds, so a long answer that keeps streaming never times out. When it runs out
        the turn is aborted (or taken out of the queue) and TurnTimeoutError is raised; None
        waits for ever. A failed turn raises its error (a ProviderError, TurnAbortedError...).
        Cancelling the call does not abort the turn: it still runs and is stored.
        """
        self._runtime.check_running()
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, or None; got {timeout!r}")
        turn = self._enqueue(message, listen=False)  # it waits for the end, not for each event
        await self._wait(turn, timeout)
        if turn.error is not None:
            raise turn.error
        assert turn.result is not None  # set on every path that does not set error
        return turn.result

    async def _wait(self, turn: Turn, quiet_limit: float | None) -> None:
        """Wait for the turn to end, giving up after `quiet_limit` seconds without activity.

        One timer per quiet window, not one per event: a streamed reply costs nothing here.
        """
        done = turn.done
        if quiet_limit is None:
            await done.wait()
            return
        while not done.is_set():
            left = quiet_limit - (time.monotonic() - self._live.last_activity)
            if left <= 0:
                if not self._live.tools_running:
                    await self._give_up(turn, quiet_limit)
                    return
                left = min(quiet_limit, 0.5)  # tools are working (each has its own timeout)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):  # activity meanwhile moves the deadline on
                    await done.wait()

    async def _give_up(self, turn: Turn, quiet_limit: float) -> None:
        quiet = f"session {self.session_id!r} emitted no event for {quiet_limit:g}s"
        queued = TurnTimeoutError(
            f"{quiet} while this turn waited behind another one, so it was taken out of the "
            "queue unsent; abort() stops the turn that holds the session"
        )
        if self._live.cancel_pending(turn, queued):
            return
        aborted = turn.abort(f"no event for {quiet_limit:g}s")
        await turn.done.wait()
        if not aborted:  # it finished meanwhile and its reply is stored: that is a success
            return
        turn.error = TurnTimeoutError(
            f"{quiet}, so the turn was aborted; pass a larger timeout= for slow models, or "
            "timeout=None to wait"
        )

    def stream(self, message: str | MessageOptions) -> AsyncGenerator[SessionEvent, None]:
        """Send now, and return an iterator over exactly this turn's events, up to `session.idle`.

        The turn is queued when `stream` is called, not when iteration starts, so it keeps its
        place among other sends. Failures arrive as a `session.error` event rather than an
        exception. Leaving the loop early does not abort the turn; call `abort()` for that.
        """
        return self._stream_turn(message)[1]

    def _stream_turn(
        self, message: str | MessageOptions
    ) -> tuple[str, AsyncGenerator[SessionEvent, None]]:
        """`stream`, with the turn's user message id known at once (for `parley serve`, which
        aborts just this turn when its caller gives up)."""
        self._runtime.check_running()
        turn = self._enqueue(message, listen=True)
        return turn.message_id, self._events(turn)

    @staticmethod
    async def _events(turn: Turn) -> AsyncGenerator[SessionEvent, None]:
        queue = turn.events
        assert queue is not None
        try:
            async for event in _until_idle(queue, lambda: turn.error):
                yield event
        finally:
            turn.events = None

    # --- the rest ---------------------------------------------------------------------------

    def on(self, handler: Handler) -> Unsubscribe:
        """Call `handler(event)` for each event of this session; returns a function to stop.

        A handler may be sync or async (async ones run as tasks); one that raises is logged.
        """
        return self._live.subscribe(handler)

    async def messages(self) -> list[Message]:
        """The whole history, oldest first: user, assistant and tool messages, as stored."""
        return await self._runtime.messages(self._live)

    async def abort(self, *, message_id: str | None = None) -> bool:
        """Stop the running turn, keeping its text so far (marked interrupted).

        Queued turns still run. Returns False when no turn was running. With `message_id` (as
        `send` returned it), only that turn: aborted if running, taken out of the queue if
        not started yet (its send_and_wait raises TurnAbortedError), False once it is over.
        """
        return await self._live.abort(message_id=message_id)

    async def set_model(self, model: str) -> None:
        """Use `model` from the next turn on; the history is kept."""
        if self._live.closed:
            raise SessionClosedError(
                f"session {self.session_id!r} is closed; "
                f"resume_session({self.session_id!r}) opens it again"
            )
        await self._runtime.set_model(self._live, model)

    async def close(self) -> None:
        """Release the session: queued turns are dropped and a running one is aborted.

        The history stays in the store; `Client.resume_session` opens it again.
        """
        await self._runtime.close(self._live)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
