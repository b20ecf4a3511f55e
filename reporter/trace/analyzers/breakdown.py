"""GPU time breakdown: merged timelines per kind of op (compute > communication > memcpy
> memset > idle) and the idle gaps, classified by what ended them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reporter.report.trace import Breakdown, IdleSplit
from reporter.trace import intervals as iv
from reporter.trace.analyzers.window import Window
from reporter.trace.events import GPU_MEMCPY, KERNEL, GpuEvent, HostEvent
from reporter.trace.intervals import Timeline

SHORT_GAP_US = 10.0  # a GPU gap this short with work queued is launch latency, not waste


@dataclass
class Timelines:
    """Merged intervals of each kind of GPU op inside the window."""

    compute: Timeline  # non-collective kernels
    communication: Timeline  # collective kernels
    kernels: Timeline  # all kernels
    with_memcpy: Timeline  # kernels and copies
    active: Timeline  # every GPU op


def timelines(gpu_sorted: Sequence[GpuEvent], window: Window) -> Timelines:
    """The five merged timelines, clipped to the window.

    One pass splits the ops' clipped intervals into compute, communication, copies and
    memsets (each list stays in start order); each is merged once and the wider timelines
    are unions of narrower merged lists, so no op is looked at more than once in Python.
    """
    lo, hi = window.start, window.end
    compute: list[iv.Interval] = []
    comm: list[iv.Interval] = []
    copies: list[iv.Interval] = []
    others: list[iv.Interval] = []  # memsets
    kernel = KERNEL
    memcpy = GPU_MEMCPY
    for g in gpu_sorted:
        s, e = g.start, g.end
        if e <= lo or s >= hi:
            continue
        if s < lo:
            s = lo
        if e > hi:
            e = hi
        cat = g.cat
        if cat == kernel:
            (comm if g.collective else compute).append((s, e))
        elif cat == memcpy:
            copies.append((s, e))
        else:
            others.append((s, e))
    computed = iv.merge(compute, presorted=True)
    communication = iv.merge(comm, presorted=True)
    kernels = iv.union(computed, communication)
    with_memcpy = iv.union(kernels, iv.merge(copies, presorted=True))
    active = iv.union(with_memcpy, iv.merge(others, presorted=True))
    # A union with nothing to add returns its input itself: share that list's Timeline.
    made: dict[int, Timeline] = {}
    for merged in (computed, communication, kernels, with_memcpy, active):
        if id(merged) not in made:
            made[id(merged)] = Timeline(merged)
    return Timelines(
        made[id(computed)],
        made[id(communication)],
        made[id(kernels)],
        made[id(with_memcpy)],
        made[id(active)],
    )


def breakdown_in(t: Timelines, lo: float, hi: float) -> Breakdown:
    """Priority breakdown of [lo, hi]: compute > communication > memcpy > memset > idle."""
    k = t.compute.within(lo, hi)
    kc = t.kernels.within(lo, hi)
    kcm = t.with_memcpy.within(lo, hi)
    a = t.active.within(lo, hi)
    return Breakdown(
        compute_us=k,
        communication_us=kc - k,
        memcpy_us=kcm - kc,
        memset_us=a - kcm,
        idle_us=max(0.0, (hi - lo) - a),
    )


@dataclass
class GapTimelines:
    """The idle gaps, all and by kind, for per-step sums."""

    all: Timeline
    host_wait: Timeline
    short_gap: Timeline
    other: Timeline
    short_us: float

    def split(self, lo: float, hi: float) -> IdleSplit:
        return IdleSplit(
            host_wait_us=self.host_wait.within(lo, hi),
            short_gap_us=self.short_gap.within(lo, hi),
            other_us=self.other.within(lo, hi),
            gaps=self.all.count(lo, hi),
            short_gap_threshold_us=self.short_us,
        )


def idle_gaps(
    gpu_sorted: Sequence[GpuEvent], host: Sequence[HostEvent], window: Window, short_us: float
) -> GapTimelines:
    """Gaps with no GPU op running in the window, each classified by the op that ends it.

    host_wait: the next op's launch call began at or after the gap began (nothing queued);
    short_gap: it was queued and the gap is at most ``short_us``; other: queued but longer,
    or launch unknown. A gap at the window's end with no later op is host_wait.
    Each gap goes straight into its kind's list (no per-gap object, no filtering after).
    """
    lo, hi = window.start, window.end
    gaps: list[iv.Interval] = []
    host_wait: list[iv.Interval] = []
    short_gap: list[iv.Interval] = []
    other: list[iv.Interval] = []
    busy_until = lo
    for g in gpu_sorted:
        end = g.end
        if end <= busy_until:
            continue
        start = g.start
        if start > busy_until:
            gap_start = busy_until
            if gap_start >= hi:
                break
            gap = (gap_start, hi if hi < start else start)  # min(start, hi)
            gaps.append(gap)
            if g.launch < 0:
                other.append(gap)
            elif not host[g.launch].start < gap_start:  # launched once the GPU ran dry
                host_wait.append(gap)
            elif start - gap_start <= short_us:
                short_gap.append(gap)
            else:
                other.append(gap)
        if end > busy_until:  # max(busy_until, end)
            busy_until = end
        if busy_until >= hi:
            break
    if busy_until < hi:
        gaps.append((busy_until, hi))
        host_wait.append((busy_until, hi))
    return GapTimelines(
        Timeline(gaps), Timeline(host_wait), Timeline(short_gap), Timeline(other), short_us
    )


def all_kernels(gpu: Sequence[GpuEvent]) -> list[iv.Interval]:
    """The union of every kernel's interval (gpu sorted by start)."""
    return iv.merge(((g.start, g.end) for g in gpu if g.cat == KERNEL), presorted=True)
