"""Model routing: model strings, aliases and families resolve to adapters, or say why not."""

from __future__ import annotations

import pytest

from parley.config import ProviderConfig
from parley.errors import ConfigError, UnknownModelError, UsageError
from parley.models import EchoModel, ModelRegistry
from parley.models.registry import family_provider


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry()


def test_echo_is_always_there(registry: ModelRegistry) -> None:
    assert registry.names == ["echo"]
    assert isinstance(registry.providers["echo"], EchoModel)


def test_bare_echo_resolves_to_echo(registry: ModelRegistry) -> None:
    resolved = registry.resolve("echo")
    assert isinstance(resolved.adapter, EchoModel)
    assert resolved.provider == "echo"
    assert resolved.name == "echo"
    assert resolved.adapter is registry.providers["echo"]


def test_provider_colon_model_resolves(registry: ModelRegistry) -> None:
    resolved = registry.resolve("echo:alpha")
    assert resolved.adapter is registry.providers["echo"]
    assert resolved.provider == "echo"
    assert resolved.name == "alpha"


def test_only_the_first_colon_splits(registry: ModelRegistry) -> None:
    resolved = registry.resolve("echo:org/model:v2")
    assert (resolved.provider, resolved.name) == ("echo", "org/model:v2")


@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-5", "openai"), ("claude-sonnet-4-5", "anthropic"), ("o3-mini", "openai")],
)
def test_known_family_without_its_provider_says_whose_it_is(
    registry: ModelRegistry, model: str, provider: str
) -> None:
    with pytest.raises(UnknownModelError) as info:
        registry.resolve(model)
    message = str(info.value)
    assert info.value.model == model
    assert repr(model) in message
    assert f"it is a model of {provider!r}" in message
    assert f"no {provider!r} provider is configured" in message
    assert "(configured: echo)" in message
    assert "'echo:alpha'" in message  # what to write instead


def test_configured_list_names_every_provider() -> None:
    registry = ModelRegistry({"zeta": EchoModel(provider="zeta"), "beta": EchoModel()})
    with pytest.raises(UnknownModelError, match=r"\(configured: beta, echo, zeta\)"):
        registry.resolve("gpt-5")
    with pytest.raises(UnknownModelError, match=r"\(configured: beta, echo, zeta\)"):
        registry.resolve("nope:x")


def test_family_resolves_once_its_provider_is_configured() -> None:
    openai = EchoModel(provider="openai")
    anthropic = EchoModel(provider="anthropic")
    registry = ModelRegistry({"openai": openai, "anthropic": anthropic})
    gpt = registry.resolve("gpt-5")
    assert (gpt.adapter, gpt.provider, gpt.name) == (openai, "openai", "gpt-5")
    claude = registry.resolve("claude-sonnet-4-5")
    assert (claude.adapter, claude.provider, claude.name) == (
        anthropic,
        "anthropic",
        "claude-sonnet-4-5",
    )
    explicit = registry.resolve("openai:gpt-4o-mini")
    assert (explicit.adapter, explicit.name) == (openai, "gpt-4o-mini")


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("gpt-4o", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("o1", "openai"),
        ("o4-mini", "openai"),
        ("claude-3-5-haiku", "anthropic"),
        ("llama3", None),
        ("echo", None),
        ("my-gpt-5", None),
    ],
)
def test_family_provider(name: str, provider: str | None) -> None:
    assert family_provider(name) == provider


def test_unknown_provider_prefix(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError) as info:
        registry.resolve("nope:x")
    message = str(info.value)
    assert "no provider 'nope' is configured" in message
    assert "(configured: echo)" in message
    assert "Use 'echo' to run offline" in message


def test_provider_without_a_model_name(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError, match="no model name after 'echo:'"):
        registry.resolve("echo:")


@pytest.mark.parametrize("model", ["", "   "])
def test_empty_model_string(registry: ModelRegistry, model: str) -> None:
    with pytest.raises(UnknownModelError, match="must be non-empty text"):
        registry.resolve(model)


def test_bare_unknown_name_says_how_to_write_models(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError) as info:
        registry.resolve("llama3")
    message = str(info.value)
    assert "no provider serves that name" in message
    assert "'provider:model'" in message


def test_unknown_model_is_a_usage_and_value_error(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError) as info:
        registry.resolve("nope:x")
    assert isinstance(info.value, UsageError)
    assert isinstance(info.value, ValueError)


# --- aliases --------------------------------------------------------------------------------


def test_alias_resolves_to_its_target() -> None:
    registry = ModelRegistry(aliases={"fast": "echo:alpha", "default": "echo"})
    fast = registry.resolve("fast")
    assert (fast.provider, fast.name) == ("echo", "alpha")
    default = registry.resolve("default")
    assert (default.provider, default.name) == ("echo", "echo")
    # Names that are not aliases are untouched.
    assert registry.resolve("echo:fast").name == "fast"


def test_alias_to_a_family_model() -> None:
    openai = EchoModel(provider="openai")
    registry = ModelRegistry({"openai": openai}, aliases={"smart": "gpt-5"})
    smart = registry.resolve("smart")
    assert (smart.adapter, smart.provider, smart.name) == (openai, "openai", "gpt-5")


def test_alias_to_an_unconfigured_provider_names_the_alias() -> None:
    registry = ModelRegistry(aliases={"smart": "claude-sonnet-4-5"})
    with pytest.raises(UnknownModelError) as info:
        registry.resolve("smart")
    assert info.value.model == "smart"
    assert "anthropic" in str(info.value)


def test_aliases_are_copied() -> None:
    aliases = {"fast": "echo:alpha"}
    registry = ModelRegistry(aliases=aliases)
    aliases["fast"] = "nope:x"
    assert registry.resolve("fast").name == "alpha"


# --- register -------------------------------------------------------------------------------


def test_register_under_the_adapters_provider_name(registry: ModelRegistry) -> None:
    slow = EchoModel(token_delay=0.01, provider="slow")
    registry.register(slow)
    assert registry.providers["slow"] is slow
    resolved = registry.resolve("slow:beta")
    assert (resolved.adapter, resolved.provider, resolved.name) == (slow, "slow", "beta")
    assert registry.resolve("slow").adapter is slow


def test_register_under_another_name(registry: ModelRegistry) -> None:
    adapter = EchoModel(provider="echo")
    registry.register(adapter, name="local")
    assert registry.resolve("local:m").adapter is adapter
    assert registry.resolve("echo:m").adapter is not adapter


def test_register_can_replace_echo(registry: ModelRegistry) -> None:
    replacement = EchoModel(token_delay=0.5)
    registry.register(replacement)
    assert registry.resolve("echo").adapter is replacement


@pytest.mark.parametrize("name", ["a:b", ":", "echo:"])
def test_register_with_a_colon_in_the_name_is_a_config_error(
    registry: ModelRegistry, name: str
) -> None:
    with pytest.raises(ConfigError, match="provider name must be non-empty and have no ':'"):
        registry.register(EchoModel(), name=name)
    assert registry.names == ["echo"]


def test_register_of_an_adapter_with_a_bad_provider_name(registry: ModelRegistry) -> None:
    with pytest.raises(ConfigError, match="provider name"):
        registry.register(EchoModel(provider=""))
    with pytest.raises(ConfigError, match="provider name"):
        registry.register(EchoModel(provider="x:y"))


def test_bad_provider_name_in_the_constructor() -> None:
    with pytest.raises(ConfigError, match="provider name"):
        ModelRegistry({"bad:name": EchoModel()})


def test_providers_is_a_copy(registry: ModelRegistry) -> None:
    snapshot = registry.providers
    assert isinstance(snapshot, dict)
    snapshot["sneaky"] = EchoModel()
    assert "sneaky" not in registry.providers


async def test_aclose_closes_every_adapter() -> None:
    closed: list[str] = []

    class Tracking(EchoModel):
        async def aclose(self) -> None:
            closed.append(self.provider)

    registry = ModelRegistry({"a": Tracking(provider="a"), "b": Tracking(provider="b")})
    await registry.aclose()
    assert sorted(closed) == ["a", "b"]


async def test_a_provider_registered_again_is_what_resolve_finds_next() -> None:
    registry = ModelRegistry(providers={"p": EchoModel(provider="p")})
    first = registry.resolve("p:m")
    assert registry.resolve("p:m") is first  # remembered
    replacement = EchoModel(provider="p")
    registry.register(replacement, name="p")
    assert registry.resolve("p:m").adapter is replacement
    await registry.aclose()
    assert registry.resolve("p:m").adapter is replacement


async def test_an_adapter_built_from_a_config_is_built_anew_after_aclose() -> None:
    config = ProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1", api_key="k")
    registry = ModelRegistry(providers={"o": config})
    built = registry.resolve("o:gpt-x").adapter
    assert registry.resolve("o:gpt-x").adapter is built
    await registry.aclose()
    assert registry.resolve("o:gpt-x").adapter is not built
    await registry.aclose()
