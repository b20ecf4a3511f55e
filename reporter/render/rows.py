"""Choosing the rows a long table keeps (in print, or in a review comment)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reporter.render.templates import PRINT_ROWS

T = TypeVar("T")


def shown(rows: Sequence[T], for_print: bool) -> list[T]:
    """Print keeps the first PRINT_ROWS rows; HTML and JSON keep all."""
    return list(rows[:PRINT_ROWS] if for_print else rows)


def largest_in_order(items: Sequence[T], key: Callable[[T], Any], rows: int | None) -> list[T]:
    """The `rows` items with the largest key (the earlier one on a tie), in their own order;
    every item when there are no more than `rows`, or `rows` is None."""
    if rows is None or len(items) <= rows:
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: key(items[i]), reverse=True)
    kept = set(ranked[:rows])
    return [item for i, item in enumerate(items) if i in kept]
