"""Turns on a shared store: each turn holds its session across every process that uses it.

Several workers may serve one session. Before a turn runs, its worker takes the session from
the store (`SharedStore.acquire`), waiting while another worker's turn holds it, and brings its
in-memory copy up to date: the model and title, and the history when other workers appended to
it (mending a turn that a dead worker left open). The lease is released when the turn ends, so
the turns of one session run one at a time across all workers, each on the whole history.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from parley.errors import ParleyError, SessionBusyError, TurnAbortedError
from parley.runtime.agent import fail_unstarted, run_turn
from parley.runtime.history import mend
from parley.runtime.turn import Turn
from parley.stores.base import Lease, SharedStore

if TYPE_CHECKING:
    from parley.runtime.live import LiveSession

__all__ = ["catch_up", "run_shared_turn"]


async def run_shared_turn(live: LiveSession, store: SharedStore, turn: Turn) -> None:
    lease = await _take(live, store, turn)
    if lease is None:
        return
    live.lease = lease  # released by the turn just before it goes idle (or below, on a bug)
    try:
        if turn.admitted is not None:
            turn.admitted.set()
        try:
            await catch_up(live, store, lease)
        except ParleyError as exc:
            await fail_unstarted(live, turn, exc)
            return
        if turn.aborted:  # aborted while catching up: nothing of it was stored yet
            await live.release_lease()
            turn.drop(_aborted_before_start(live, turn))
            return
        await run_turn(live, turn)
    finally:
        await live.release_lease()


async def _take(live: LiveSession, store: SharedStore, turn: Turn) -> Lease | None:
    """The session's lease, or None when the turn ended without it (and was told why)."""
    reject = live.on_busy == "reject"
    waiting = asyncio.ensure_future(store.acquire(live.session_id, wait=not reject))
    turn.stream_task = waiting  # an abort while it waits cancels the wait
    try:
        lease = await waiting
    except asyncio.CancelledError:
        if not turn.aborted:
            raise
        turn.drop(
            TurnAbortedError(
                f"the turn was aborted ({turn.abort_reason}) while it waited for another "
                f"worker's turn of session {live.session_id!r}; nothing of it was stored"
            )
        )
        return None
    except ParleyError as exc:
        await fail_unstarted(live, turn, exc)
        return None
    finally:
        turn.stream_task = None
    if lease is None:
        turn.drop(SessionBusyError(live.session_id))
        return None
    if turn.aborted:  # aborted just as the wait ended
        await store.release(lease)
        turn.drop(_aborted_before_start(live, turn))
        return None
    return lease


def _aborted_before_start(live: LiveSession, turn: Turn) -> TurnAbortedError:
    return TurnAbortedError(
        f"the turn of session {live.session_id!r} was aborted ({turn.abort_reason}) before it "
        "ran; nothing of it was stored"
    )


async def catch_up(live: LiveSession, store: SharedStore, lease: Lease) -> None:
    """Make the live copy what the store holds: other workers may have moved the session on."""
    live.model = lease.model
    live.title = lease.title
    if lease.created_at != live.created_at:  # deleted and created anew elsewhere: start over
        live.created_at = lease.created_at
        live.system_message = lease.system_message
        live.history.clear()
    if lease.message_count == len(live.history) and not live.stale:
        return
    history = await store.read_messages(live.session_id)
    await mend(store, live.session_id, history, live.model)  # a worker died mid-turn
    live.history[:] = history
    live.stale = False
