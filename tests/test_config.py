"""Session-id rules and the validation done by SessionConfig."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from parley.config import (
    DEFAULT_MODEL,
    MAX_SESSION_ID_LENGTH,
    ClientConfig,
    SessionConfig,
    validate_session_id,
)
from parley.errors import ConfigError, InvalidSessionIdError, UsageError

VALID_IDS = [
    "user-123-chat",
    "a",
    "x" * MAX_SESSION_ID_LENGTH,
    "café-日本語-Ωμέγα",
    "with inner spaces",
    "dots.are.fine",
    "a.b",
    "UPPER_and_lower:colon@at",
    "0",
]


@pytest.mark.parametrize("session_id", VALID_IDS)
def test_valid_ids_pass(session_id: str) -> None:
    assert validate_session_id(session_id) == session_id
    assert SessionConfig(session_id=session_id).session_id == session_id


def test_max_length_is_128() -> None:
    assert MAX_SESSION_ID_LENGTH == 128


# (id, a phrase of the rule that the message must contain)
INVALID_IDS: list[tuple[object, str]] = [
    ("", "it is empty"),
    ("x" * 129, "129 characters long, over 128"),
    ("é" * 129, "129 characters long"),
    ("line\nbreak", "control character U+000A"),
    ("nul\x00byte", "control character U+0000"),
    ("del\x7fchar", "control character U+007F"),
    ("zero\u200bwidth", "control character U+200B"),
    ("tab\there", "control character U+0009"),
    ("a/b", "path separator"),
    ("/leading", "path separator"),
    ("a\\b", "path separator"),
    ("..", "'..'"),
    ("a..b", "'..'"),
    ("../etc/passwd", "path separator"),
    (" leading", "leading or trailing whitespace"),
    ("trailing ", "leading or trailing whitespace"),
    ("trailing\n", "leading or trailing whitespace"),
    ("   ", "leading or trailing whitespace"),
    (123, "must be a str, not int"),
    (b"bytes", "must be a str, not bytes"),
    (None, "must be a str, not NoneType"),
]


@pytest.mark.parametrize(
    ("session_id", "rule"), INVALID_IDS, ids=[repr(i)[:20] for i, _ in INVALID_IDS]
)
def test_each_rule_fails_with_a_message_naming_it(session_id: object, rule: str) -> None:
    with pytest.raises(InvalidSessionIdError) as info:
        validate_session_id(session_id)
    assert rule in str(info.value)
    assert rule in info.value.rule
    assert info.value.session_id == session_id
    # The message also says what to do instead.
    assert "omit session_id" in str(info.value)


@pytest.mark.parametrize(
    ("session_id", "rule"),
    [(i, r) for i, r in INVALID_IDS if i is not None],
    ids=[repr(i)[:20] for i, _ in INVALID_IDS if i is not None],
)
def test_session_config_applies_the_same_rules(session_id: Any, rule: str) -> None:
    with pytest.raises(InvalidSessionIdError, match="invalid session id") as info:
        SessionConfig(session_id=session_id)
    assert rule in str(info.value)


def test_invalid_session_id_is_a_usage_and_value_error() -> None:
    with pytest.raises(InvalidSessionIdError) as info:
        validate_session_id("")
    assert isinstance(info.value, UsageError)
    assert isinstance(info.value, ValueError)


def test_none_session_id_means_generated() -> None:
    config = SessionConfig()
    assert config.session_id is None
    assert SessionConfig(session_id=None).session_id is None


def test_session_config_defaults() -> None:
    config = SessionConfig()
    assert config.model is None
    assert config.system_message is None
    assert config.title is None
    assert dict(config.metadata) == {}
    assert config.on_busy == "enqueue"


@pytest.mark.parametrize("on_busy", ["enqueue", "reject"])
def test_on_busy_accepts_enqueue_and_reject(on_busy: Any) -> None:
    assert SessionConfig(on_busy=on_busy).on_busy == on_busy


@pytest.mark.parametrize("on_busy", ["queue", "Reject", "", None, 1])
def test_other_on_busy_values_are_config_errors(on_busy: Any) -> None:
    with pytest.raises(ConfigError, match="on_busy must be 'enqueue' or 'reject'"):
        SessionConfig(on_busy=on_busy)


@pytest.mark.parametrize("model", ["", "   ", 5])
def test_empty_or_non_str_model_is_a_config_error(model: Any) -> None:
    with pytest.raises(ConfigError, match="model must be a non-empty string"):
        SessionConfig(model=model)


@pytest.mark.parametrize(
    "metadata",
    [{"owner": 42}, {"owner": None}, {"owner": ["u1"]}, {1: "x"}, {"": "x"}, {"ok": "v", "n": 1.5}],
)
def test_metadata_must_map_str_to_str(metadata: Any) -> None:
    with pytest.raises(ConfigError, match="metadata must map non-empty str keys to str values"):
        SessionConfig(metadata=metadata)


def test_metadata_is_copied() -> None:
    source = {"owner": "u-42"}
    config = SessionConfig(metadata=source)
    source["owner"] = "changed"
    assert dict(config.metadata) == {"owner": "u-42"}


def test_session_config_is_frozen() -> None:
    config = SessionConfig(model="echo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = "other"  # type: ignore[misc]


def test_client_config_defaults_to_echo() -> None:
    config = ClientConfig()
    assert config.default_model is None  # then parley.toml's, then DEFAULT_MODEL
    assert DEFAULT_MODEL == "echo"
    assert dict(config.providers) == {}
