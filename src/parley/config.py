"""Configuration values: what a session and a client are made with, and the session-id rules."""

from __future__ import annotations

import dataclasses
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from parley.errors import ConfigError, InvalidSessionIdError
from parley.tools import PermissionHandler, Tool, check_tools

if TYPE_CHECKING:
    from parley.models.base import ModelAdapter

__all__ = [
    "DEFAULT_MAX_PROMPT_CHARS",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "DEFAULT_MODEL",
    "MAX_SESSION_ID_LENGTH",
    "PROVIDER_TYPES",
    "ClientConfig",
    "OnBusy",
    "ProviderConfig",
    "ProviderType",
    "RetryPolicy",
    "SessionConfig",
    "validate_session_id",
]

DEFAULT_MODEL = "echo"
DEFAULT_MAX_PROMPT_CHARS = 1_000_000
DEFAULT_MAX_TOOL_ROUNDS = 10
MAX_SESSION_ID_LENGTH = 128

OnBusy: TypeAlias = Literal["enqueue", "reject"]


def validate_session_id(session_id: object) -> str:
    """Return `session_id` if it is a valid id, else raise InvalidSessionIdError naming the rule.

    Ids appear in URLs, file names, logs and SQL, so they are kept to printable text with no
    path separators and no surrounding spaces.
    """
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(
            session_id, f"it must be a str, not {type(session_id).__name__}"
        )
    if not session_id:
        raise InvalidSessionIdError(session_id, "it is empty")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InvalidSessionIdError(
            session_id, f"it is {len(session_id)} characters long, over {MAX_SESSION_ID_LENGTH}"
        )
    if session_id != session_id.strip():
        raise InvalidSessionIdError(session_id, "it has leading or trailing whitespace")
    for ch in session_id:
        if unicodedata.category(ch).startswith("C"):
            raise InvalidSessionIdError(
                session_id, f"it contains the control character U+{ord(ch):04X}"
            )
    if "/" in session_id or "\\" in session_id:
        raise InvalidSessionIdError(session_id, "it contains a path separator ('/' or '\\')")
    if ".." in session_id:
        raise InvalidSessionIdError(session_id, "it contains '..'")
    return session_id


def _validate_metadata(metadata: Mapping[str, str], what: str = "metadata") -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"{what} must be a mapping of str to str, not {metadata!r}")
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ConfigError(
                f"{what} must map non-empty str keys to str values; got {key!r}: {value!r}"
            )
        clean[key] = value
    return clean


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """How a new session is made. Every field is optional.

    - `model`: a model string such as ``"echo"`` or ``"echo:alpha"`` (``"provider:model"``);
      the client's default model when omitted.
    - `session_id`: your own id (``"user-123-chat"``); a UUID is generated when omitted.
    - `system_message`: instructions sent before the history on every turn.
    - `title`: a label for listings; the first user message (shortened) when omitted.
    - `metadata`: string tags such as ``{"owner": "u-42"}``, filterable in `list_sessions`.
    - `on_busy`: what a send does while another turn of this session is queued or running:
      ``"enqueue"`` (wait its turn, the default) or ``"reject"`` (raise SessionBusyError).
    - `provider`: this session's own provider (bring your own key), instead of routing `model`
      through the client's providers; `model` is then the name that provider knows. Its key is
      kept in memory only: pass the provider again to `resume_session`.
    - `tools`: functions the model may call (see `parley.tool`); more can come with each send.
    - `on_permission_request`: asked before each tool call; returns (or awaits) True to allow.
      Without it every call is allowed; `approve_all` says so explicitly.
    - `max_tool_rounds`: how many rounds of tool calls one turn may take before it stops with
      ToolLoopError.
    - `max_history_messages` / `max_history_tokens`: send only the most recent messages to the
      model, by count or by an estimated token budget (the store keeps them all); the cut
      falls on a user message, so it never separates a tool call from its result.
    """

    model: str | None = None
    session_id: str | None = None
    system_message: str | None = None
    title: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    on_busy: OnBusy = "enqueue"
    provider: ProviderConfig | None = None
    tools: Sequence[Tool] = ()
    on_permission_request: PermissionHandler | None = None
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_history_messages: int | None = None
    max_history_tokens: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tools", check_tools(self.tools))
        if self.on_permission_request is not None and not callable(self.on_permission_request):
            raise ConfigError("on_permission_request must be a function (or approve_all)")
        for name in ("max_tool_rounds", "max_history_messages", "max_history_tokens"):
            value = getattr(self, name)
            if value is None and name != "max_tool_rounds":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, not {value!r}")
        if self.provider is not None and not isinstance(self.provider, ProviderConfig):
            raise ConfigError(f"provider must be a ProviderConfig, not {self.provider!r}")
        if self.session_id is not None:
            validate_session_id(self.session_id)
        if self.on_busy not in ("enqueue", "reject"):
            raise ConfigError(f"on_busy must be 'enqueue' or 'reject', not {self.on_busy!r}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ConfigError(f"model must be a non-empty string, not {self.model!r}")
        object.__setattr__(self, "metadata", _validate_metadata(self.metadata))


ProviderType: TypeAlias = Literal["openai", "azure", "anthropic"]
PROVIDER_TYPES: tuple[ProviderType, ...] = ("openai", "azure", "anthropic")


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """Where a provider is and how to authenticate: configuration, not code.

    `type` names the wire API: ``"openai"`` serves every OpenAI-compatible endpoint (OpenAI,
    Ollama, vLLM, llama.cpp, LM Studio, OpenRouter...), ``"azure"`` Azure OpenAI (its
    deployment URLs, ``api-version`` and ``api-key`` header), ``"anthropic"`` Anthropic.
    The key comes from `api_key`, else from the environment variable `api_key_env`; the base URL
    from the environment variable `base_url_env` when it is set, else `base_url`, else the
    vendor's own. The key and the headers are never stored nor shown in a repr or a log.
    """

    type: ProviderType = "openai"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    base_url_env: str | None = None
    key_required: bool = True
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_version: str | None = None
    """Azure OpenAI's ``api-version`` (else ``$OPENAI_API_VERSION``)."""
    timeout: float = 45.0
    """Seconds to wait for the provider to answer or to send the next chunk (kept under
    send_and_wait's default 60 s, so a stalled provider is reported as such)."""
    max_tokens: int | None = None
    """The reply budget sent with each request; Anthropic requires one (8192 when None)."""

    def __post_init__(self) -> None:
        if not isinstance(self.key_required, bool):
            raise ConfigError(f"key_required must be true or false, not {self.key_required!r}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise ConfigError(f"max_tokens must be a positive int, not {self.max_tokens!r}")
        if self.type not in PROVIDER_TYPES:
            raise ConfigError(
                f"provider type must be one of {', '.join(PROVIDER_TYPES)}, not {self.type!r}"
            )
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise ConfigError(f"timeout must be a number of seconds, not {self.timeout!r}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, not {self.timeout}")
        for name in ("base_url", "api_key", "api_key_env", "base_url_env", "api_version"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, not {value!r}")
        object.__setattr__(self, "headers", _validate_metadata(self.headers, "headers"))

    def public(self) -> dict[str, Any]:
        """Everything but the key and the headers (they may carry secrets): what a store keeps."""
        data = dataclasses.asdict(self)
        del data["api_key"], data["headers"]
        return data

    @classmethod
    def from_public(cls, data: Mapping[str, Any]) -> ProviderConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"api_key", "headers"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown provider setting(s): {', '.join(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How a model call that failed with a retryable error (429, 5xx, unreachable) is retried.

    Only calls that failed before streaming any text are retried, so no reply is duplicated.
    Delays grow from `initial_delay` by `multiplier` up to `max_delay`, each shortened by a
    random part of up to `jitter` of itself so that many sessions do not retry in lockstep; a
    `Retry-After` the provider sent is honoured instead, unless it is longer than `max_delay`
    (then the error is raised at once: waiting that long is the caller's decision).
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError(f"max_attempts must be an int, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1 (1 means no retry)")
        if min(self.initial_delay, self.max_delay) < 0 or self.multiplier < 1:
            raise ConfigError("retry delays must be >= 0 and the multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"jitter must be between 0 and 1, not {self.jitter}")

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when not to retry."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        backoff = min(self.initial_delay * self.multiplier ** (attempt - 1), self.max_delay)
        return backoff * (1 - self.jitter * random.random())


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """How a client runs.

    - `default_model`: the model of sessions created without one (else `default_model` from
      parley.toml, else ``"echo"``).
    - `providers`: providers by name, on top of the built-in presets and parley.toml: a
      `ProviderConfig`, or a ready `ModelAdapter` object. A session whose model is
      ``"name:model"`` is served by ``providers["name"]``.
    - `aliases`: short names for model strings, e.g. ``{"fast": "openai:gpt-5-mini"}``.
    - `retry`: how failed model calls are retried.
    - `config_files`: read ``./parley.toml`` and the user's ``parley/parley.toml`` (or the
      file named by ``$PARLEY_CONFIG``); False reads none.
    - `max_prompt_chars`: the longest message a send accepts (InvalidPromptError beyond it);
      a guard against pasting a whole file by mistake, far above any model's context.
    """

    default_model: str | None = None
    providers: Mapping[str, ModelAdapter | ProviderConfig] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    config_files: bool = True
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        if isinstance(self.max_prompt_chars, bool) or not isinstance(self.max_prompt_chars, int):
            raise ConfigError(f"max_prompt_chars must be an int, not {self.max_prompt_chars!r}")
        if self.max_prompt_chars < 1:
            raise ConfigError(f"max_prompt_chars must be at least 1, not {self.max_prompt_chars}")
