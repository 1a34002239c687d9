"""Every error parley raises, in one tree.

Misuse (a caller's mistake, fixed by changing the call) is kept apart from runtime failures
(something went wrong while a turn ran, often worth a retry)::

    ParleyError
    ├── UsageError                  the call was wrong; fix the call
    │   ├── ConfigError             a bad option, store URL or argument combination
    │   ├── InvalidSessionIdError   a session id that breaks a naming rule
    │   ├── SessionNotFoundError    no session with that id in the store (also a KeyError)
    │   ├── SessionExistsError      create_session with an id already taken
    │   ├── ComparisonNotFoundError no comparison with that id in the store (also a KeyError)
    │   ├── SessionClosedError      a send to a closed session, or a client that is not running
    │   ├── InvalidPromptError      an empty message, or one over max_prompt_chars
    │   └── UnknownModelError       a model string no configured provider serves
    └── RuntimeFailure              the call was fine; running it failed
        ├── SessionBusyError        on_busy="reject" and a turn is already queued or running
        ├── TurnAbortedError        the turn was aborted before it finished
        ├── TurnTimeoutError        send_and_wait saw no event for `timeout` seconds
        ├── ToolLoopError           the model kept calling tools past max_tool_rounds
        ├── StoreError              the store could not be read or written
        ├── RuntimeConnectionError  a remote runtime (`parley serve`) is unreachable or dropped
        └── ProviderError           the model provider failed
            ├── AuthenticationError     the provider rejected the key
            ├── RateLimitError          the provider asked us to slow down (retried)
            ├── ProviderUnavailableError  5xx, overloaded or unreachable (retried)
            ├── ProviderTimeoutError    the provider did not answer in time (retried)
            ├── ProviderRequestError    the provider refused the request (400, 404, 422)
            └── ProviderResponseError   the provider answered with something unusable

Every message says what to do next.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ComparisonNotFoundError",
    "ConfigError",
    "InvalidPromptError",
    "InvalidSessionIdError",
    "ParleyError",
    "ProviderError",
    "ProviderRequestError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "RuntimeConnectionError",
    "RuntimeFailure",
    "SessionBusyError",
    "SessionClosedError",
    "SessionExistsError",
    "SessionNotFoundError",
    "StoreError",
    "ToolLoopError",
    "TurnAbortedError",
    "TurnTimeoutError",
    "UnknownModelError",
    "UsageError",
]


class ParleyError(Exception):
    """Base of every error parley raises."""


class UsageError(ParleyError):
    """The call was wrong: fix the call, retrying it as it is will fail again."""


class ConfigError(UsageError, ValueError):
    """A bad option, store URL or combination of arguments."""


class InvalidSessionIdError(UsageError, ValueError):
    """A session id that breaks a naming rule; the message names the rule."""

    def __init__(self, session_id: object, rule: str) -> None:
        self.session_id = session_id
        self.rule = rule
        super().__init__(
            f"invalid session id {session_id!r}: {rule}. Session ids are 1 to 128 printable "
            "characters without '/', '\\', '..' or leading/trailing spaces; "
            "omit session_id to get a generated one."
        )


class SessionNotFoundError(UsageError, KeyError):
    """No session with that id exists in the store."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(session_id)

    def __str__(self) -> str:
        return (
            f"no session {self.session_id!r} in the store; list_sessions() shows the ids "
            "that exist, and create_session() makes a new one."
        )


class SessionExistsError(UsageError):
    """create_session was given an id that another session already has."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"a session with id {session_id!r} already exists; resume_session({session_id!r}) "
            "continues it, delete_session() removes it, or choose another id."
        )


class ComparisonNotFoundError(UsageError, KeyError):
    """No comparison with that id exists in the store."""

    def __init__(self, comparison_id: str) -> None:
        self.comparison_id = comparison_id
        super().__init__(comparison_id)

    def __str__(self) -> str:
        return (
            f"no comparison {self.comparison_id!r} in the store; list_comparisons() (or "
            "`parley compare list`) shows the ids that exist."
        )


class SessionClosedError(UsageError):
    """The session was closed or deleted, or the client is not running."""


class InvalidPromptError(UsageError, ValueError):
    """A message that cannot be sent: empty, or longer than the client's max_prompt_chars."""


class UnknownModelError(UsageError, ValueError):
    """No configured provider serves this model string."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        super().__init__(f"unknown model {model!r}: {reason}")


class RuntimeFailure(ParleyError):
    """The call was fine, but running it failed."""


class SessionBusyError(RuntimeFailure):
    """A send met a session whose turn is running, and the session rejects instead of queuing."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"session {session_id!r} is busy with another turn and was configured with "
            "on_busy='reject'; wait for session.idle and send again, or use on_busy='enqueue'."
        )


class TurnAbortedError(RuntimeFailure):
    """The turn was aborted (by abort(), close() or delete_session()) before it finished."""


class TurnTimeoutError(RuntimeFailure, TimeoutError):
    """send_and_wait saw no event of the session for `timeout` seconds; the turn was aborted."""


class ToolLoopError(RuntimeFailure):
    """The model asked for tools round after round, past SessionConfig(max_tool_rounds=...)."""


class StoreError(RuntimeFailure):
    """The store could not be read or written."""


class RuntimeConnectionError(RuntimeFailure, ConnectionError):
    """`Client(url=...)` could not reach its `parley serve` runtime, or the connection dropped.

    What the runtime already stored is kept; a turn sent before the drop still runs there.
    """


class ProviderError(RuntimeFailure):
    """The model provider failed while a turn ran.

    `provider` names the provider, `status` carries the HTTP status where there was one,
    `retryable` says whether sending the same turn again may succeed, and `retry_after` is the
    provider's own hint in seconds, if it gave one.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class AuthenticationError(ProviderError):
    """The provider rejected the API key: check the key for that provider."""


class RateLimitError(ProviderError):
    """The provider asked us to slow down; `retry_after` is its hint in seconds, if it gave one."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status, retry_after=retry_after)


class ProviderUnavailableError(ProviderError):
    """The provider failed on its side (5xx, overloaded) or could not be reached; worth a retry."""

    retryable = True


class ProviderRequestError(ProviderError):
    """The provider refused the request as invalid (400, 404, 422): retrying will not help.

    A model name the provider does not know lands here; so would a history it rejects.
    """


class ProviderTimeoutError(ProviderError, TimeoutError):
    """The provider did not answer in time."""

    retryable = True


class ProviderResponseError(ProviderError):
    """The provider answered with an error status or something that is not a valid reply."""
