"""Interval arithmetic on (start, end) pairs in microseconds.

A "merged" list is sorted and disjoint: what ``merge`` returns. Union and intersection
lengths are what make overlapping kernels count once (summed durations would not).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import sub

Interval = tuple[float, float]


def merge(intervals: Iterable[Interval], presorted: bool = False) -> list[Interval]:
    """Sorted, disjoint union of the intervals; touching intervals join.

    ``presorted``: the intervals already come sorted by start (skips the sort).
    """
    out: list[Interval] = []
    cur_s = cur_e = 0.0
    started = False
    for s, e in intervals if presorted else sorted(intervals):
        if not started:
            cur_s, cur_e, started = s, e, True
        elif s > cur_e:
            out.append((cur_s, cur_e))
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if started:
        out.append((cur_s, cur_e))
    return out


def length(merged: Iterable[Interval]) -> float:
    return sum(e - s for s, e in merged)


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    """The parts of the intervals inside [lo, hi]."""
    return [(max(s, lo), min(e, hi)) for s, e in intervals if e > lo and s < hi]


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


def concurrent_length(lists: Sequence[Sequence[Interval]], at_least: int = 2) -> float:
    """Time during which at least ``at_least`` of the merged lists are active at once."""
    edges: list[tuple[float, int]] = []
    for merged in lists:
        for s, e in merged:
            edges.append((s, 1))
            edges.append((e, -1))
    edges.sort()  # at equal times the -1 comes first: touching intervals do not overlap
    total = 0.0
    active = 0
    last = 0.0
    for t, step in edges:
        if active >= at_least:
            total += t - last
        active += step
        last = t
    return total


class Timeline:
    """A merged list prepared for many "how much of it lies in [lo, hi]" questions.

    Prefix sums make each question two bisections, so per-step figures cost O(log n) per
    step instead of a walk over the step's intervals.
    """

    __slots__ = ("merged", "starts", "ends", "cumulative")

    def __init__(self, merged: list[Interval]) -> None:
        self.merged = merged
        self.starts, self.ends = (
            (list(c) for c in zip(*merged, strict=True)) if merged else ([], [])
        )
        self.cumulative = [0.0, *accumulate(map(sub, self.ends, self.starts))]

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
