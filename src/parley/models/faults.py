"""Turning a provider's failure into parley's error tree: the one mapping both adapters use."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from parley.errors import (
    AuthenticationError,
    ProviderError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)

__all__ = ["broken_stream", "from_status", "retry_after_seconds"]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's wait hint: ``retry-after-ms``, ``retry-after`` in seconds or as a date."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(float(lowered["retry-after-ms"]) / 1000, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # a hint we cannot read is no hint: the backoff applies
    return max(moment.timestamp() - time.time(), 0.0)


def from_status(
    provider: str, status: int, detail: str, headers: Mapping[str, str]
) -> ProviderError:
    """The error for an HTTP error status from `provider`, with what to do about it."""
    where = f"provider {provider!r} answered {status}: {detail}"
    if status in (401, 403):
        return AuthenticationError(
            f"{where}. Check the API key for {provider!r} (the variable named by its "
            "api_key_env, or ProviderConfig(api_key=...))",
            provider=provider,
            status=status,
        )
    if status == 429:
        return RateLimitError(
            f"{where}. Retried as configured by ClientConfig(retry=...); send again later",
            provider=provider,
            retry_after=retry_after_seconds(headers),
        )
    if status >= 500:
        return ProviderUnavailableError(
            f"{where}. The provider failed on its side; send again later",
            provider=provider,
            status=status,
        )
    return ProviderRequestError(
        f"{where}. The request was refused: check the model name and the provider's limits",
        provider=provider,
        status=status,
    )


def broken_stream(provider: str, exc: BaseException) -> ProviderError:
    """A stream that broke off or could not be read."""
    if "timeout" in type(exc).__name__.lower():
        return ProviderTimeoutError(
            f"provider {provider!r} stopped sending in the middle of the reply ({exc!r}); "
            "raise the provider's timeout= if it is slow",
            provider=provider,
        )
    return ProviderResponseError(
        f"the reply stream from provider {provider!r} broke off or was malformed ({exc!r}); "
        "the partial reply is kept, marked interrupted: send again",
        provider=provider,
    )
