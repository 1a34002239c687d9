"""What the two SDK adapters share: naming, pricing by endpoint, error translation, closing."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from parley.config import ProviderConfig
from parley.errors import ProviderError
from parley.models.faults import from_sdk_error
from parley.models.pricing import price

__all__ = ["SDKAdapter"]


class SDKAdapter:
    """Base of the adapters built on a vendor SDK client (`_client`, from module `_sdk`)."""

    _sdk: ModuleType
    _client: Any

    def __init__(
        self, name: str, config: ProviderConfig, *, base_url: str | None, priced_by: str
    ) -> None:
        self._name = name
        self._type = config.type
        # The vendors' own providers are priced by model name; other endpoints by their URL.
        self._price_url = base_url if priced_by == "url" else None

    @property
    def provider(self) -> str:
        return self._name

    @property
    def offline(self) -> bool:
        return False

    def _error(self, exc: Exception) -> ProviderError:
        return from_sdk_error(self._sdk, self._name, self._client.base_url, exc)

    def _price(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        return price(
            self._type,
            model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
            api_url=self._price_url,
        )

    async def aclose(self) -> None:
        await self._client.close()
