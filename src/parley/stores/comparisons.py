"""The SQL of the comparisons table, shared by the SQLite and PostgreSQL stores.

Each comparison is one row: its id, its creation time (microseconds, for the newest-first
order) and its JSON document (`comparison_to_json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parley.comparison import Comparison, ComparisonPage
from parley.stores.base import (
    comparison_from_json,
    comparison_to_json,
    decode_cursor,
    encode_cursor,
    to_micros,
)

__all__ = ["ComparisonSQL"]


@dataclass(frozen=True, slots=True)
class ComparisonSQL:
    """Statements and their parameters, for a driver whose placeholder is `mark`."""

    mark: str

    def save(self, comparison: Comparison, *, new: bool) -> tuple[str, tuple[Any, ...]]:
        """An upsert; with `new`, a plain insert, which a taken id makes fail (unique key)."""
        m = self.mark
        upsert = (
            ""
            if new
            else " ON CONFLICT (comparison_id) DO UPDATE "
            "SET created_at = excluded.created_at, data = excluded.data"
        )
        return (
            f"INSERT INTO comparisons (comparison_id, created_at, data) VALUES ({m}, {m}, {m})"
            + upsert,
            (
                comparison.comparison_id,
                to_micros(comparison.created_at),
                comparison_to_json(comparison),
            ),
        )

    def get(self, comparison_id: str) -> tuple[str, tuple[Any, ...]]:
        return f"SELECT data FROM comparisons WHERE comparison_id = {self.mark}", (comparison_id,)

    def list(self, limit: int, cursor: str | None) -> tuple[str, tuple[Any, ...]]:
        """One row more than `limit`, which tells whether there is a next page."""
        m = self.mark
        where = ""
        params: tuple[Any, ...] = ()
        if cursor is not None:
            where = f" WHERE (created_at, comparison_id) < ({m}, {m})"
            params = decode_cursor(cursor)
        return (
            f"SELECT comparison_id, data FROM comparisons{where} "
            f"ORDER BY created_at DESC, comparison_id DESC LIMIT {m}",
            (*params, limit + 1),
        )

    def delete(self, comparison_id: str) -> tuple[str, tuple[Any, ...]]:
        return (
            f"DELETE FROM comparisons WHERE comparison_id = {self.mark} RETURNING comparison_id",
            (comparison_id,),
        )

    @staticmethod
    def page(rows: Sequence[Sequence[Any]], limit: int) -> ComparisonPage:
        found = tuple(comparison_from_json(row[0], row[1]) for row in rows[:limit])
        cursor = None
        if len(rows) > limit:
            cursor = encode_cursor(found[-1].created_at, found[-1].comparison_id)
        return ComparisonPage(found, cursor)
