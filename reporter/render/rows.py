"""Choosing the rows a long table keeps (in print, or in a review comment)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reporter.render.templates import PRINT_ROWS

T = TypeVar("T")


def shown(rows: Sequence[T], for_print: bool, limit: int = PRINT_ROWS) -> list[T]:
    """Print keeps the first `limit` rows; HTML and JSON keep all."""
    return list(rows[:limit] if for_print else rows)


def most_kept_note(rows: Sequence[Any], for_print: bool, what: str, limit: int = PRINT_ROWS) -> str:
    """The note under a table of rows ranked by `what` ("kernels with the most time") that
    print cut to its first `limit`; "" when nothing was cut."""
    if not (for_print and len(rows) > limit):
        return ""
    return f"The {limit} {what}; all {len(rows)} are in report.html and report.json."


def largest_in_order(items: Sequence[T], key: Callable[[T], Any], rows: int | None) -> list[T]:
    """The `rows` items with the largest key (the earlier one on a tie), in their own order;
    every item when there are no more than `rows`, or `rows` is None."""
    if rows is None or len(items) <= rows:
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: key(items[i]), reverse=True)
    kept = set(ranked[:rows])
    return [item for i, item in enumerate(items) if i in kept]
