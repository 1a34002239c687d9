"""parley: run many independent LLM conversations at once.

    async with Client() as client:
        session = await client.create_session(model="echo")
        reply = await session.send_and_wait("Hello")

See README.md and docs/ for the whole picture.
"""

from parley.client import Client
from parley.comparison import (
    Comparison,
    ComparisonPage,
    ComparisonReply,
    ComparisonRun,
    ModelSummary,
)
from parley.config import ClientConfig, ProviderConfig, RetryPolicy, SessionConfig
from parley.errors import (
    AuthenticationError,
    ComparisonNotFoundError,
    ConfigError,
    InvalidPromptError,
    InvalidSessionIdError,
    ParleyError,
    ProviderError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RuntimeConnectionError,
    RuntimeFailure,
    SessionBusyError,
    SessionClosedError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    ToolLoopError,
    TurnAbortedError,
    TurnTimeoutError,
    UnknownModelError,
    UsageError,
)
from parley.events import (
    AbortEvent,
    AssistantMessageDeltaEvent,
    AssistantMessageEvent,
    AssistantTurnEndEvent,
    AssistantTurnStartEvent,
    AssistantUsageEvent,
    SessionErrorEvent,
    SessionEvent,
    SessionIdleEvent,
    SessionResumeEvent,
    SessionStartEvent,
    ToolExecutionCompleteEvent,
    ToolExecutionStartEvent,
    UserMessageEvent,
)
from parley.info import SessionInfo, SessionPage
from parley.messages import Message, MessageOptions, TextPart, ToolCallPart, ToolResultPart, Usage
from parley.session import Session
from parley.stores.base import Store
from parley.tools import PermissionRequest, Tool, ToolInvocation, approve_all, tool

__version__ = "0.1.0"

__all__ = [
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
