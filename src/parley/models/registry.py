"""Model routing: turn a model string into the adapter that serves it.

A model string is ``"provider:model"`` (``"echo:alpha"``), a provider's bare name (``"echo"``),
an alias, or a bare model name whose family names its provider (``"gpt-5"`` is OpenAI's,
``"claude-sonnet-4-5"`` Anthropic's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from parley.errors import ConfigError, UnknownModelError
from parley.models.base import ModelAdapter
from parley.models.echo import EchoModel

__all__ = ["ModelRegistry", "ResolvedModel", "family_provider"]

_FAMILIES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude-", "anthropic"),
)


def family_provider(name: str) -> str | None:
    """The provider a bare model name belongs to by its family prefix, if any."""
    for prefix, provider in _FAMILIES:
        if name.startswith(prefix):
            return provider
    return None


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    adapter: ModelAdapter
    provider: str
    name: str
    """The model name as the provider knows it."""


class ModelRegistry:
    """Providers by name, plus aliases. The offline `echo` provider is always there."""

    def __init__(
        self,
        providers: Mapping[str, ModelAdapter] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._providers: dict[str, ModelAdapter] = {"echo": EchoModel()}
        for name, adapter in (providers or {}).items():
            self.register(adapter, name=name)
        self._aliases = dict(aliases or {})

    def register(self, adapter: ModelAdapter, *, name: str | None = None) -> None:
        name = adapter.provider if name is None else name
        if not name or ":" in name:
            raise ConfigError(f"a provider name must be non-empty and have no ':'; got {name!r}")
        self._providers[name] = adapter

    @property
    def providers(self) -> Mapping[str, ModelAdapter]:
        return dict(self._providers)

    def resolve(self, model: str) -> ResolvedModel:
        """The adapter and provider-side name for `model`, or UnknownModelError saying why."""
        if not isinstance(model, str) or not model.strip():
            raise UnknownModelError(str(model), "a model string must be non-empty text")
        target = self._aliases.get(model, model)
        configured = ", ".join(sorted(self._providers))
        provider, sep, name = target.partition(":")
        if sep:
            if not name:
                raise UnknownModelError(model, f"no model name after '{provider}:'")
            adapter = self._providers.get(provider)
            if adapter is None:
                raise UnknownModelError(
                    model,
                    f"no provider {provider!r} is configured (configured: {configured}). "
                    "Use 'echo' to run offline, or configure that provider.",
                )
            return ResolvedModel(adapter=adapter, provider=provider, name=name)
        if target in self._providers:
            return ResolvedModel(adapter=self._providers[target], provider=target, name=target)
        family = family_provider(target)
        if family is not None and family in self._providers:
            return ResolvedModel(adapter=self._providers[family], provider=family, name=target)
        hint = (
            f"it is a model of {family!r}, but no {family!r} provider is configured"
            if family
            else "no provider serves that name"
        )
        raise UnknownModelError(
            model,
            f"{hint} (configured: {configured}). Write models as 'provider:model', "
            "e.g. 'echo:alpha' for the offline model.",
        )

    async def aclose(self) -> None:
        for adapter in self._providers.values():
            await adapter.aclose()
