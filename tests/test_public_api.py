"""The public surface is pinned: adding or removing a name is a decision, made here."""

from __future__ import annotations

import parley

EXPECTED = [
    "AbortEvent",
    "AssistantMessageDeltaEvent",
    "AssistantMessageEvent",
    "AssistantTurnEndEvent",
    "AssistantTurnStartEvent",
    "AssistantUsageEvent",
    "AuthenticationError",
    "Client",
    "ClientConfig",
    "Comparison",
    "ComparisonNotFoundError",
    "ComparisonPage",
    "ComparisonReply",
    "ComparisonRun",
    "ConfigError",
    "InvalidPromptError",
    "InvalidSessionIdError",
    "Message",
    "MessageOptions",
    "ModelSummary",
    "ParleyError",
    "PermissionRequest",
    "ProviderConfig",
    "ProviderError",
    "ProviderRequestError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "RetryPolicy",
    "RuntimeConnectionError",
    "RuntimeFailure",
    "Session",
    "SessionBusyError",
    "SessionClosedError",
    "SessionConfig",
    "SessionErrorEvent",
    "SessionEvent",
    "SessionExistsError",
    "SessionIdleEvent",
    "SessionInfo",
    "SessionNotFoundError",
    "SessionPage",
    "SessionResumeEvent",
    "SessionStartEvent",
    "Store",
    "StoreError",
    "TextPart",
    "Tool",
    "ToolCallPart",
    "ToolExecutionCompleteEvent",
    "ToolExecutionStartEvent",
    "ToolInvocation",
    "ToolLoopError",
    "ToolResultPart",
    "TurnAbortedError",
    "TurnTimeoutError",
    "UnknownModelError",
    "Usage",
    "UsageError",
    "UserMessageEvent",
    "__version__",
    "approve_all",
    "tool",
]


def test_all_is_pinned() -> None:
    assert parley.__all__ == EXPECTED


def test_all_is_sorted_and_importable() -> None:
    assert parley.__all__ == sorted(parley.__all__)
    for name in parley.__all__:
        assert getattr(parley, name) is not None


def test_every_error_is_a_parley_error_and_misuse_is_apart_from_failures() -> None:
    errors = [getattr(parley, n) for n in parley.__all__ if n.endswith("Error")]
    for error in errors:
        assert issubclass(error, parley.ParleyError)
        if error not in (parley.ParleyError,):
            assert issubclass(error, parley.UsageError) != issubclass(error, parley.RuntimeFailure)
