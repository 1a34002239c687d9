"""Model routing: turn a model string into the adapter that serves it.

A model string is ``"provider:model"`` (``"echo:alpha"``), a provider's bare name (``"echo"``),
an alias, or a bare model name whose family names its provider (``"gpt-5"`` is OpenAI's,
``"claude-sonnet-4-5"`` Anthropic's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from parley.config import ProviderConfig
from parley.errors import ConfigError, UnknownModelError
from parley.models.base import ModelAdapter
from parley.models.echo import EchoModel
from parley.models.providers import build_adapter

__all__ = ["ModelRegistry", "ResolvedModel", "family_provider"]

log = logging.getLogger("parley")

_RESOLVED_AT_MOST = 1024

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
    """Providers by name, plus aliases. The offline `echo` provider is always there.

    A provider is given as a ready `ModelAdapter` or as a `ProviderConfig`; adapters for
    configs are built on first use (one connection pool per provider), which is when a missing
    key or extra is reported.
    """

    def __init__(
        self,
        providers: Mapping[str, ModelAdapter | ProviderConfig] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._configs: dict[str, ProviderConfig] = {}
        self._adapters: dict[str, ModelAdapter] = {"echo": EchoModel()}
        self._resolved: dict[str, ResolvedModel] = {}
        """What `resolve` found, by model string: each turn resolves its model twice."""
        for name, provider in (providers or {}).items():
            self.register(provider, name=name)
        self._aliases = dict(aliases or {})

    def register(self, provider: ModelAdapter | ProviderConfig, *, name: str | None = None) -> None:
        if isinstance(provider, ProviderConfig):
            if name is None:
                raise ConfigError("a ProviderConfig is registered under a name: name='...'")
        elif name is None:
            name = provider.provider
        if not name or ":" in name:
            raise ConfigError(f"a provider name must be non-empty and have no ':'; got {name!r}")
        self._adapters.pop(name, None)
        self._configs.pop(name, None)
        self._resolved.clear()
        if isinstance(provider, ProviderConfig):
            self._configs[name] = provider
        else:
            self._adapters[name] = provider

    @property
    def providers(self) -> dict[str, ModelAdapter | ProviderConfig]:
        """A copy of what is registered: adapters, and configs not yet built into adapters."""
        registered: dict[str, ModelAdapter | ProviderConfig] = dict(self._configs)
        registered.update(self._adapters)
        return registered

    @property
    def aliases(self) -> dict[str, str]:
        """Short model names and the model strings they stand for."""
        return dict(self._aliases)

    @property
    def names(self) -> list[str]:
        return sorted({*self._configs, *self._adapters})

    def config(self, name: str) -> ProviderConfig | None:
        """The configuration of a provider given as a ProviderConfig (None for adapters)."""
        return self._configs.get(name)

    def _adapter(self, name: str) -> ModelAdapter | None:
        adapter = self._adapters.get(name)
        if adapter is None and name in self._configs:
            adapter = self._adapters[name] = build_adapter(name, self._configs[name])
        return adapter

    def resolve(self, model: str) -> ResolvedModel:
        """The adapter and provider-side name for `model`.

        UnknownModelError when no provider serves the string; ConfigError when the provider
        exists but cannot be used (its key or extra is missing).
        """
        if not isinstance(model, str) or not model.strip():
            raise UnknownModelError(str(model), "a model string must be non-empty text")
        resolved = self._resolved.get(model)
        if resolved is None:
            resolved = self._resolve(model)
            if len(self._resolved) >= _RESOLVED_AT_MOST:  # model strings may come from users
                self._resolved.clear()
            self._resolved[model] = resolved
        return resolved

    def _resolve(self, model: str) -> ResolvedModel:
        target = self._aliases.get(model, model)
        provider, sep, name = target.partition(":")
        if sep:
            if not name:
                raise UnknownModelError(model, f"no model name after '{provider}:'")
            adapter = self._adapter(provider)
            if adapter is None:
                raise UnknownModelError(
                    model,
                    f"no provider {provider!r} is configured (configured: "
                    f"{', '.join(self.names)}). "
                    "Use 'echo' to run offline, or configure that provider.",
                )
            return ResolvedModel(adapter=adapter, provider=provider, name=name)
        # A bare adapter name: "echo", or an adapter given as an object (never a config's).
        if target in self._adapters and target not in self._configs:
            return ResolvedModel(adapter=self._adapters[target], provider=target, name=target)
        family = family_provider(target)
        if family is not None and (adapter := self._adapter(family)) is not None:
            return ResolvedModel(adapter=adapter, provider=family, name=target)
        hint = (
            f"it is a model of {family!r}, but no {family!r} provider is configured"
            if family
            else "no provider serves that name"
        )
        raise UnknownModelError(
            model,
            f"{hint} (configured: {', '.join(self.names)}). Write models as 'provider:model', "
            "e.g. 'openai:gpt-5' or 'echo:alpha' for the offline model.",
        )

    async def aclose(self) -> None:
        """Close every adapter; those built from configs are built afresh on next use."""
        adapters = list(self._adapters.values())
        self._resolved.clear()
        for name in self._configs:
            self._adapters.pop(name, None)
        results = await asyncio.gather(*(a.aclose() for a in adapters), return_exceptions=True)
        for adapter, result in zip(adapters, results, strict=True):
            if isinstance(result, Exception):
                log.warning("closing provider %s failed: %r", adapter.provider, result)
