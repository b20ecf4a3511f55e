"""The fast building blocks of reporter.trace against plain reference versions: the same
results exactly (not approximately), on random inputs full of ties and touching ends."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pytest

from reporter.trace import intervals as iv
from reporter.trace.analyzers.names import NoCase
from reporter.trace.analyzers.syncs import Ranges
from reporter.trace.events import HostEvent, link_parents
from reporter.trace.gunzip import gunzip_bounded
from tests.conftest import TRACE_DATA

REPO = Path(__file__).resolve().parents[1]
TRACES = TRACE_DATA


def random_intervals(rng: random.Random, n: int) -> list[iv.Interval]:
    """Small integer-valued floats: many equal starts, equal ends and zero lengths."""
    out = []
    for _ in range(n):
        s = float(rng.randint(0, 40))
        out.append((s, s + rng.choice([0.0, 0.0, 1.0, 2.0, 3.5, 8.0])))
    return out


def reference_merge(intervals: list[iv.Interval]) -> list[iv.Interval]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def reference_concurrent(lists: list[list[iv.Interval]], at_least: int) -> float:
    """The sweep over (time, +1/-1) edges sorted as tuples."""
    edges = sorted((t, step) for m in lists for s, e in m for t, step in ((s, 1), (e, -1)))
    total, active, last = 0.0, 0, 0.0
    for t, step in edges:
        if active >= at_least:
            total += t - last
        active += step
        last = t
    return total


def test_merge_union_clip_and_concurrency_match_references() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a = random_intervals(rng, rng.randint(0, 12))
        b = random_intervals(rng, rng.randint(0, 12))
        assert iv.merge(a) == reference_merge(a)
        assert iv.merge(sorted(a), presorted=True) == reference_merge(a)
        ma, mb = iv.merge(a), iv.merge(b)
        assert iv.union(ma, mb) == reference_merge(a + b)
        lo, hi = sorted((rng.uniform(-5, 50), rng.uniform(-5, 50)))
        clipped = [(max(s, lo), min(e, hi)) for s, e in a if e > lo and s < hi]
        assert iv.clip(a, lo, hi) == clipped
        lists = [iv.merge(random_intervals(rng, rng.randint(0, 6))) for _ in range(4)]
        for k in (1, 2, 3):
            assert iv.concurrent_length(lists, k) == reference_concurrent(lists, k)


def test_sort_ties_equals_sorting_by_both_keys() -> None:
    rng = random.Random(3)
    for _ in range(500):
        items = [(rng.randint(0, 5), rng.randint(0, 3), k) for k in range(rng.randint(0, 30))]
        by_key = sorted(items, key=lambda t: t[0])
        iv.sort_ties(by_key, [t[0] for t in by_key], lambda t: t[1])
        assert by_key == sorted(items, key=lambda t: (t[0], t[1]))  # stable: then trace order


def reference_parents(host: list[HostEvent]) -> tuple[list[int], list[int]]:
    """Nesting as first written: per thread, sort by (start, -end), then a stack."""
    by_thread: dict[int, list[int]] = {}
    for i, h in enumerate(host):
        by_thread.setdefault(h.thread, []).append(i)
    parents = [-1] * len(host)
    order: list[int] = []
    for indices in by_thread.values():
        indices.sort(key=lambda i: (host[i].start, -host[i].end))
        stack: list[int] = []
        for i in indices:
            while stack and host[stack[-1]].end <= host[i].start:
                stack.pop()
            j = len(stack) - 1
            while j >= 0 and host[stack[j]].end < host[i].end - 0.5:
                j -= 1
            parents[i] = stack[j] if j >= 0 else -1
            stack.append(i)
        order.extend(indices)
    return parents, order


def test_link_parents_matches_the_reference() -> None:
    rng = random.Random(11)
    for _ in range(300):
        host = []
        thread_ids: dict[int, int] = {}
        for _ in range(rng.randint(0, 60)):
            tid = rng.choice([5, 9, 2])
            thread = thread_ids.setdefault(tid, len(thread_ids))  # by first appearance
            start = float(rng.randint(0, 30))
            host.append(HostEvent("cpu_op", "op", thread, start, start + rng.randint(0, 12)))
        parents, order = reference_parents(host)
        assert link_parents(host) == order
        assert [h.parent for h in host] == parents


def test_ranges_membership() -> None:
    rng = random.Random(5)
    for _ in range(500):
        ranges = random_intervals(rng, rng.randint(0, 8))
        ranges.sort()
        inside = Ranges(ranges)
        for t in range(-2, 52):
            assert (t in inside) == any(s <= t <= e for s, e in ranges)


def test_nocase_finds_what_ignorecase_finds() -> None:
    pattern = r"tensorop|xmma|[hsi]884|gemm|enumerate\(dataloader"
    slow = re.compile(pattern, re.IGNORECASE)
    fast = NoCase(pattern)
    names = ["sm80_XMMA_gemm", "S884gemm", "Enumerate(DataLoader)", "conv", "ſgemm", "K\u212aS884"]
    names += ["x" * 3000 + "TensorOp", "İxmma", ""]
    for name in names:
        assert fast.search(name) == bool(slow.search(name)), name
    with pytest.raises(ValueError):
        NoCase("DataLoader")


def test_gunzip_every_member_or_none() -> None:
    text = json.dumps({"traceEvents": [{"ph": "X"}] * 500}).encode()
    path = Path("t.json.gz")
    assert gunzip_bounded(gzip.compress(text), path) == text
    two = gzip.compress(text[:100]) + gzip.compress(text[100:])
    assert gunzip_bounded(two, path) == text  # several members, as gzip.decompress reads them
    assert gunzip_bounded(gzip.compress(text)[:-20], path) is None  # truncated
