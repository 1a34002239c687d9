"""Configuration values: what a session and a client are made with, and the session-id rules."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from parley.errors import ConfigError, InvalidSessionIdError

if TYPE_CHECKING:
    from parley.models.base import ModelAdapter

__all__ = [
    "DEFAULT_MAX_PROMPT_CHARS",
    "DEFAULT_MODEL",
    "MAX_SESSION_ID_LENGTH",
    "ClientConfig",
    "OnBusy",
    "SessionConfig",
    "validate_session_id",
]

DEFAULT_MODEL = "echo"
DEFAULT_MAX_PROMPT_CHARS = 1_000_000
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


def _validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ConfigError(
                f"metadata must map non-empty str keys to str values; got {key!r}: {value!r}"
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
    """

    model: str | None = None
    session_id: str | None = None
    system_message: str | None = None
    title: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    on_busy: OnBusy = "enqueue"

    def __post_init__(self) -> None:
        if self.session_id is not None:
            validate_session_id(self.session_id)
        if self.on_busy not in ("enqueue", "reject"):
            raise ConfigError(f"on_busy must be 'enqueue' or 'reject', not {self.on_busy!r}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ConfigError(f"model must be a non-empty string, not {self.model!r}")
        object.__setattr__(self, "metadata", _validate_metadata(self.metadata))


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """How a client runs.

    - `default_model`: the model of sessions created without one.
    - `providers`: extra model adapters by provider name, on top of the built-in ones; a
      session whose model is ``"name:model"`` is served by ``providers["name"]``.
    - `max_prompt_chars`: the longest message a send accepts (InvalidPromptError beyond it);
      a guard against pasting a whole file by mistake, far above any model's context.
    """

    default_model: str = DEFAULT_MODEL
    providers: Mapping[str, ModelAdapter] = field(default_factory=dict)
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        if isinstance(self.max_prompt_chars, bool) or not isinstance(self.max_prompt_chars, int):
            raise ConfigError(f"max_prompt_chars must be an int, not {self.max_prompt_chars!r}")
        if self.max_prompt_chars < 1:
            raise ConfigError(f"max_prompt_chars must be at least 1, not {self.max_prompt_chars}")
