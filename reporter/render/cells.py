"""Table cells shared by the page builders: a number's text with its sort value."""

from __future__ import annotations

from dataclasses import dataclass

from reporter.units import us


@dataclass(frozen=True)
class Num:
    """A number cell: its text and the value the sortable table sorts it by."""

    text: str
    v: str


def sort_value(x: float | None) -> str:
    """A data-v attribute: the number as Jinja printed it, 0 for none."""
    return str(x or 0)


def num(x: float | None) -> Num:
    """A time that may be missing ("–", sorted as 0)."""
    return Num(us(x), sort_value(x))


def time_cell(x: float) -> Num:
    return Num(us(x), str(x))
