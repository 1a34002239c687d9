"""Turning a provider's failure into parley's error tree: the one mapping both adapters use."""

from __future__ import annotations

import email.utils
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from parley.errors import (
    AuthenticationError,
    ProviderError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)

# Error types carried in a body, for errors that arrive inside a stream whose status was 200
# (Anthropic's `event: error`, an OpenAI-compatible server's `{"error": ...}` chunk).
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def status_of_error(error: object) -> int:
    """The HTTP status an in-stream ``error`` object stands for (500 when it does not say)."""
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, int) and 400 <= code < 600:  # OpenAI-compatible servers
            return code
        kind = error.get("type")
        if isinstance(kind, str):
            return _STATUS_OF_TYPE.get(kind, 500)
    return 500


__all__ = [
    "broken_stream",
    "from_status",
    "parse_tool_arguments",
    "retry_after_seconds",
    "safe_url",
    "status_of_error",
]


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
    where = f"provider {provider!r} answered {status}: {detail.rstrip('. ')}"
    if status in (401, 403):
        return AuthenticationError(
            f"{where}. Check the API key for {provider!r} (the variable named by its "
            "api_key_env, or ProviderConfig(api_key=...))",
            provider=provider,
            status=status,
        )
    if status == 429:
        return RateLimitError(
            f"{where}. parley retries this as far as ClientConfig(retry=...) allows; "
            "send again later",
            provider=provider,
            retry_after=retry_after_seconds(headers),
        )
    if status >= 500:
        return ProviderUnavailableError(
            f"{where}. The provider failed on its side; send again later",
            provider=provider,
            status=status,
            retry_after=retry_after_seconds(headers),
        )
    return ProviderRequestError(
        f"{where}. The request was refused: check the model name and the provider's limits",
        provider=provider,
        status=status,
    )


def broken_stream(provider: str, exc: BaseException) -> ProviderError:
    """A stream that stalled, broke off or could not be parsed.

    A broken connection is retryable (the retry only happens when nothing had been streamed
    yet); a malformed stream is not: the provider would likely send the same again.
    """
    if "timeout" in type(exc).__name__.lower():
        return ProviderTimeoutError(
            f"provider {provider!r} stopped sending in the middle of the reply ({exc!r}); "
            "raise the provider's timeout= if it is slow",
            provider=provider,
        )
    if isinstance(exc, ValueError):  # json.JSONDecodeError and the like
        return ProviderResponseError(
            f"the reply stream from provider {provider!r} was malformed ({exc!r}); the partial "
            "reply is kept, marked interrupted: send again",
            provider=provider,
        )
    return ProviderUnavailableError(
        f"the reply stream from provider {provider!r} broke off ({type(exc).__name__}); the "
        "partial reply is kept, marked interrupted: send again",
        provider=provider,
    )


def safe_url(url: object) -> str:
    """A URL fit for an error message: no user:password part, no query (keys hide there)."""
    parts = urllib.parse.urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_tool_arguments(provider: str, tool: str, raw: str) -> dict[str, Any]:
    """A tool call's JSON arguments, which must decode to an object."""
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ProviderResponseError(
            f"provider {provider!r} sent arguments for tool {tool!r} that are not JSON: "
            f"{raw[:200]!r}",
            provider=provider,
        ) from exc
    if not isinstance(arguments, dict):
        raise ProviderResponseError(
            f"provider {provider!r} sent arguments for tool {tool!r} that are not an object",
            provider=provider,
        )
    return arguments
