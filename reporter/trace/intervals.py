"""Interval arithmetic on (start, end) pairs in microseconds.

A "merged" list is sorted and disjoint: what ``merge`` returns. Union and intersection
lengths are what make overlapping kernels count once (summed durations would not).

A merged list is the union's connected components (touching intervals join), so it does
not depend on the order intervals were added in: ``union`` of two merged lists equals
``merge`` of all their intervals, exactly (no arithmetic touches the endpoints).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, compress
from operator import eq, itemgetter, sub
from typing import Any, TypeVar

Interval = tuple[float, float]
T = TypeVar("T")


def merge(intervals: Iterable[Interval], presorted: bool = False) -> list[Interval]:
    """Sorted, disjoint union of the intervals; touching intervals join.

    ``presorted``: the intervals already come sorted by start (skips the sort).
    """
    out: list[Interval] = []
    items = iter(intervals if presorted else sorted(intervals))
    first = next(items, None)
    if first is None:
        return out
    cur_s, cur_e = first
    for s, e in items:
        if s > cur_e:
            out.append((cur_s, cur_e))
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    out.append((cur_s, cur_e))
    return out


def union(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Union of two merged lists (one of them returned as is when the other is empty).

    ``sorted`` sees two sorted runs and merges them in one linear C-level pass.
    """
    if not b:
        return a
    if not a:
        return b
    return merge(sorted(a + b), presorted=True)


def length(merged: Iterable[Interval]) -> float:
    return sum(e - s for s, e in merged)


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    """The parts of the intervals inside [lo, hi]."""
    # Conditional expressions pick exactly what max(s, lo) and min(e, hi) pick, without
    # two builtin calls per interval.
    return [(lo if lo > s else s, hi if hi < e else e) for s, e in intervals if e > lo and s < hi]


def intersection_length(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Length of the overlap of two merged lists (two-pointer walk)."""
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if e > s:
            total += e - s
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The parts of merged list ``a`` outside merged list ``b`` (a merged list)."""
    out: list[Interval] = []
    j = 0
    for s, e in a:
        while j < len(b) and b[j][1] <= s:
            j += 1
        k = j
        cur = s
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def concurrent_length(lists: Sequence[Sequence[Interval]], at_least: int = 2) -> float:
    """Time during which at least ``at_least`` of the merged lists are active at once.

    A sweep over the edges in time order, an end before a start at the same time (touching
    intervals do not overlap). Starts and ends are sorted as two float lists (each list
    is a sorted run, so C merges them) and walked with two pointers: the same edges in the
    same order as sorting (time, +1/-1) pairs, several times faster.
    """
    starts = sorted(s for merged in lists for s, _ in merged)
    ends = sorted(e for merged in lists for _, e in merged)
    total = 0.0
    active = 0
    last = 0.0
    j = 0
    n = len(ends)
    for t in starts:
        # Every end up to this start (inclusive: ends first at equal times) comes first.
        while j < n and ends[j] <= t:
            end = ends[j]
            if active >= at_least:
                total += end - last
            active -= 1
            last = end
            j += 1
        if active >= at_least:
            total += t - last
        active += 1
        last = t
    for end in ends[j:]:
        if active >= at_least:
            total += end - last
        active -= 1
        last = end
    return total


def sort_ties(items: list[T], keys: Sequence[Any], tiebreak: Callable[[T], Any]) -> None:
    """Stable-sort by ``tiebreak`` each run of ``items`` whose ``keys`` are equal.

    ``items`` is already sorted by ``keys`` (``keys[k]`` belongs to ``items[k]``): the result
    is sorted by (key, tiebreak), ties in their present order, as two stable sorts (by
    tiebreak, then by key) would give, but the first of those is a full n log n sort while
    equal keys are rare. The equal neighbours are found without a Python-level loop.
    """
    ties = compress(range(len(keys) - 1), map(eq, keys[:-1], keys[1:]))
    run_start = run_end = -2
    # Positions k..m all tied with their next cover items[k..m + 1]; -2 ends the last run.
    for k in [*ties, -2]:
        if k != run_end:
            if run_start >= 0:
                items[run_start : run_end + 1] = sorted(
                    items[run_start : run_end + 1], key=tiebreak
                )
            run_start = k
        run_end = k + 1


class Timeline:
    """A merged list prepared for many "how much of it lies in [lo, hi]" questions.

    Prefix sums make each question two bisections, so per-step figures cost O(log n) per
    step instead of a walk over the step's intervals.
    """

    __slots__ = ("merged", "starts", "ends", "cumulative")

    def __init__(self, merged: list[Interval]) -> None:
        self.merged = merged
        self.starts = list(map(itemgetter(0), merged))
        self.ends = list(map(itemgetter(1), merged))
        self.cumulative = list(accumulate(map(sub, self.ends, self.starts), initial=0.0))

    @property
    def length(self) -> float:
        return self.cumulative[-1]

    def span(self, lo: float, hi: float) -> tuple[int, int]:
        """Index range of the intervals that overlap (lo, hi)."""
        return bisect_right(self.ends, lo), bisect_left(self.starts, hi)

    def count(self, lo: float, hi: float) -> int:
        i, j = self.span(lo, hi)
        return max(0, j - i)

    def within(self, lo: float, hi: float) -> float:
        i, j = self.span(lo, hi)
        if i >= j:
            return 0.0
        total = self.cumulative[j] - self.cumulative[i]
        if self.starts[i] < lo:
            total -= lo - self.starts[i]
        if self.ends[j - 1] > hi:
            total -= self.ends[j - 1] - hi
        return total
