"""Providers as configuration: built-in presets, parley.toml, environment variables and keys.

A provider is a name (``openai``, ``ollama``, ``mycorp``...) bound to a `ProviderConfig`: which
wire API it speaks, where it is and how to find its key. Presets cover the common endpoints;
parley.toml changes them or adds more; `ClientConfig(providers=...)` wins over both.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parley.config import ProviderConfig
from parley.errors import ConfigError
from parley.models.base import ModelAdapter

__all__ = [
    "PRESETS",
    "ConfigFile",
    "build_adapter",
    "config_file_paths",
    "load_config_files",
    "resolve_key",
]

PRESETS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig(
        type="openai", api_key_env="OPENAI_API_KEY", base_url_env="OPENAI_BASE_URL"
    ),
    "anthropic": ProviderConfig(
        type="anthropic", api_key_env="ANTHROPIC_API_KEY", base_url_env="ANTHROPIC_BASE_URL"
    ),
    "azure": ProviderConfig(
        type="azure", api_key_env="AZURE_OPENAI_API_KEY", base_url_env="AZURE_OPENAI_ENDPOINT"
    ),
    "openrouter": ProviderConfig(
        type="openai", base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"
    ),
    "ollama": ProviderConfig(
        type="openai",
        base_url="http://localhost:11434/v1",
        base_url_env="OLLAMA_BASE_URL",
        key_required=False,
    ),
    "vllm": ProviderConfig(
        type="openai",
        base_url="http://localhost:8000/v1",
        base_url_env="VLLM_BASE_URL",
        api_key_env="VLLM_API_KEY",
        key_required=False,
    ),
    "lmstudio": ProviderConfig(
        type="openai",
        base_url="http://localhost:1234/v1",
        base_url_env="LMSTUDIO_BASE_URL",
        key_required=False,
    ),
}

_PIP = {"openai": "openai", "azure": "openai", "anthropic": "anthropic"}
# The vendors' own endpoints, for providers of their type with no base_url.
_VENDOR_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


@dataclass(frozen=True, kw_only=True)
class ConfigFile:
    """What parley.toml files said, merged (the project's file over the user's)."""

    default_model: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()


def config_file_paths() -> list[Path]:
    """The files read, lowest priority first: the user's, then the project's (cwd)."""
    explicit = os.environ.get("PARLEY_CONFIG")
    if explicit:
        return [Path(explicit)]
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(base) / "parley" / "parley.toml", Path.cwd() / "parley.toml"]


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_config_files(paths: list[Path] | None = None) -> ConfigFile:
    """Read and merge parley.toml files; a missing file is skipped, a broken one is an error."""
    default_model: str | None = None
    aliases: dict[str, str] = {}
    providers: dict[str, ProviderConfig] = {}
    sources: list[Path] = []
    for path in config_file_paths() if paths is None else paths:
        if not path.is_file():
            if paths is not None or os.environ.get("PARLEY_CONFIG"):
                raise ConfigError(f"config file {path} does not exist")
            continue
        data = _read(path)
        sources.append(path)
        unknown = sorted(set(data) - {"default_model", "aliases", "providers"})
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(unknown)}; "
                "parley.toml takes default_model, [aliases] and [providers.NAME]"
            )
        default_model = data.get("default_model", default_model)
        aliases.update(data.get("aliases", {}))
        for name, settings in data.get("providers", {}).items():
            if not isinstance(settings, dict):
                raise ConfigError(f"{path}: [providers.{name}] must be a table")
            if "api_key" in settings:
                raise ConfigError(
                    f"{path}: [providers.{name}] holds an api_key; config files are often "
                    'committed, so name the environment variable instead: api_key_env = "..."'
                )
            base = providers.get(name) or PRESETS.get(name) or ProviderConfig()
            if "base_url" in settings and "base_url_env" not in settings:
                settings = {**settings, "base_url_env": None}  # the file's URL is meant
            try:
                providers[name] = dataclasses.replace(base, **settings)
            except (TypeError, ConfigError) as exc:
                raise ConfigError(f"{path}: [providers.{name}]: {exc}") from None
    return ConfigFile(
        default_model=default_model,
        aliases=aliases,
        providers=providers,
        sources=tuple(sources),
    )


def resolve_key(name: str, config: ProviderConfig) -> str | None:
    """The provider's key, or ConfigError naming the variable to set when one is required."""
    key = config.api_key or (os.environ.get(config.api_key_env) if config.api_key_env else None)
    if key or not config.key_required:
        return key or None
    if config.api_key_env:
        raise ConfigError(
            f"provider {name!r} needs an API key: set {config.api_key_env} (or pass "
            f"ProviderConfig(api_key=...) for provider {name!r} in ClientConfig(providers=...))"
        )
    raise ConfigError(
        f"provider {name!r} needs an API key: give its ProviderConfig api_key=... or "
        "api_key_env='VARIABLE', or key_required=False for a local server that takes none"
    )


def resolve_base_url(config: ProviderConfig) -> str | None:
    """`base_url_env` when set in the environment, else `base_url`."""
    if config.base_url_env and os.environ.get(config.base_url_env):
        return os.environ[config.base_url_env]
    return config.base_url


def build_adapter(name: str, config: ProviderConfig) -> ModelAdapter:
    """An adapter for `config`; ConfigError when its key is missing or its extra not installed."""
    key = resolve_key(name, config)
    base_url = resolve_base_url(config) or _VENDOR_URL.get(config.type)
    # The vendors' own providers are priced by model name (also behind a proxy such as
    # OPENAI_BASE_URL); any other endpoint by its URL, so a local server is never priced.
    priced_by = "vendor" if name in _VENDOR_URL else "url"
    try:
        if config.type == "anthropic":
            from parley.models.anthropic import AnthropicAdapter

            return AnthropicAdapter(
                name, config, api_key=key, base_url=base_url, priced_by=priced_by
            )
        from parley.models.openai import OpenAIAdapter

        return OpenAIAdapter(name, config, api_key=key, base_url=base_url, priced_by=priced_by)
    except ImportError as exc:
        package = _PIP[config.type]
        raise ConfigError(
            f"provider {name!r} needs parley's {package!r} extra ({exc.name or exc}): "
            f"pip install 'parley[{package}]'"
        ) from exc
    except ConfigError:
        raise
    except Exception as exc:  # settings the adapter cannot use
        raise ConfigError(
            f"provider {name!r} cannot be set up: {exc}; check its base_url, key and type"
        ) from exc


def merged_providers(
    file: ConfigFile, overrides: Mapping[str, ModelAdapter | ProviderConfig]
) -> dict[str, ModelAdapter | ProviderConfig]:
    """Presets, then parley.toml, then the client's own providers."""
    merged: dict[str, ModelAdapter | ProviderConfig] = dict(PRESETS)
    merged.update(file.providers)
    merged.update(overrides)
    return merged
