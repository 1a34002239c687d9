"""Retrying a model call: the one place where failed calls are tried again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

from parley.config import RetryPolicy
from parley.errors import ProviderError
from parley.models.base import (
    ModelAdapter,
    ModelRequest,
    StreamEvent,
    StreamTextDelta,
    StreamToolCall,
)

__all__ = ["stream_with_retry"]

log = logging.getLogger("parley")

_OUTPUT = (StreamTextDelta, StreamToolCall)
"""What the caller has seen once it is passed on: after it, a failure is not tried again."""


async def stream_with_retry(
    adapter: ModelAdapter,
    request: ModelRequest,
    policy: RetryPolicy,
    on_retry: Callable[[], None] | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """`adapter.stream(request)`, tried again on retryable errors that came before any output.

    Once text or a tool call has been passed on, a failure is final: trying again would repeat
    what the caller has already seen. `on_retry` is called when a wait starts and when the next
    try does, so that the session counts retrying as activity, not silence.
    """
    attempt = 1
    while True:
        produced = False
        try:
            stream = adapter.stream(request)
            try:
                async for item in stream:
                    if not produced:
                        produced = isinstance(item, _OUTPUT)
                    yield item
            finally:
                # An abort closes this generator: close the adapter's stream (and its HTTP
                # response) now rather than whenever the garbage collector gets to it.
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
            return
        except ProviderError as exc:
            if produced or not exc.retryable:
                raise
            delay = policy.delay(attempt, exc.retry_after)
            if delay is None:
                raise
            log.info(
                "model call to %s failed (%s); try %d of %d in %.2fs",
                adapter.provider,
                type(exc).__name__,
                attempt + 1,
                policy.max_attempts,
                delay,
            )
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
            if on_retry is not None:
                on_retry()
            attempt += 1
