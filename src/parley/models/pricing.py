"""Cost of a model call, from the `genai-prices` package: unknown prices are None, never 0."""

from __future__ import annotations

import logging
from functools import lru_cache

__all__ = ["load_prices", "price"]

log = logging.getLogger("parley")

# genai-prices names providers by the API they price, which is our provider *type*.
_PRICED_AS = {"openai": "openai", "azure": "azure", "anthropic": "anthropic"}


@lru_cache(maxsize=1)
def _calculator() -> object | None:
    try:
        import genai_prices
    except ImportError:  # prices are optional: without the package every price is unknown
        return None
    return genai_prices


@lru_cache(maxsize=1)
def load_prices() -> None:
    """Load the price tables now (a few hundred ms, once per process), so that the first
    priced turn does not wait for them; adapters call it when they are built."""
    if _calculator() is not None:
        price("openai", "gpt-4o", input_tokens=1, output_tokens=1)  # builds the tables


def price(
    provider_type: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    api_url: str | None = None,
) -> float | None:
    """US dollars for one call, or None when the model's price is not known.

    With `api_url` the provider is found by its endpoint (OpenRouter's, say), so a model served
    by a local or unknown endpoint is never priced as if it were the vendor's.
    """
    prices = _calculator()
    provider_id = _PRICED_AS.get(provider_type)
    if prices is None or provider_id is None:
        return None
    where = {"provider_api_url": api_url} if api_url else {"provider_id": provider_id}
    try:
        calculation = prices.calc_price(  # type: ignore[attr-defined]
            prices.Usage(  # type: ignore[attr-defined]
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cached_tokens,
                cache_write_tokens=cache_write_tokens,
            ),
            model_ref=model,
            **where,
        )
    except LookupError:
        return None
    except Exception:  # a pricing bug must never fail a turn
        log.warning("pricing %s:%s failed", provider_type, model, exc_info=True)
        return None
    return float(calculation.total_price)
