"""Retrying a model call: whether a failed call is tried again, and the wait before it.

The turn loop (`runtime/agent.py`) reads the model's stream itself, with no generator in
between, and asks `retry_after` when a call fails: only a call that had passed nothing on (no
text, no tool call) may be tried again, since a retry would repeat what the caller has seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from parley.config import RetryPolicy
from parley.errors import ProviderError
from parley.models.base import ModelAdapter

__all__ = ["retry_after"]

log = logging.getLogger("parley")


async def retry_after(
    adapter: ModelAdapter,
    error: ProviderError,
    attempt: int,
    policy: RetryPolicy,
    on_retry: Callable[[], None] | None = None,
) -> bool:
    """After try number `attempt` of a call that produced nothing failed with `error`: wait
    as the policy says and return True to try again, or return False at once to give up.

    `on_retry` is called when the wait starts and when it ends, so that the session counts
    retrying as activity, not silence.
    """
    if not error.retryable:
        return False
    delay = policy.delay(attempt, error.retry_after)
    if delay is None:
        return False
    log.info(
        "model call to %s failed (%s); try %d of %d in %.2fs",
        adapter.provider,
        type(error).__name__,
        attempt + 1,
        policy.max_attempts,
        delay,
    )
    if on_retry is not None:
        on_retry()
    await asyncio.sleep(delay)
    if on_retry is not None:
        on_retry()
    return True
