"""How a comparison's numbers are written, the same in the terminal table and the HTML report."""

from __future__ import annotations

__all__ = ["cost", "seconds", "tokens"]


def seconds(value: float | None) -> str:
    """``"850 ms"`` under a second, ``"1.23 s"`` above; ``"—"`` for none."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def tokens(value: int | float) -> str:
    return f"{value:,.0f}"


def cost(value: float | None) -> str:
    """US dollars with enough digits to tell small costs apart; ``"unknown"`` when unpriced."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:.4f}"
