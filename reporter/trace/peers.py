"""Figures defined the way the peer tools define them, so a user can compare directly.

- torch-tb-profiler (0.4.x): estimated SM efficiency and achieved occupancy from the
  fields Kineto writes on each kernel, and its GPU-utilisation window.
- Holistic Trace Analysis (HTA 0.5): queue length per stream and the launch-to-start
  delay of kernels.
- Host-side collectives (gloo), which tb-profiler counts as communication.

Small pure functions over the records of ``events.py``; analyse.py calls them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter, itemgetter, methodcaller

from reporter.report.trace import KernelRow, NameTime
from reporter.trace import intervals as iv
from reporter.trace.events import CPU_OP, USER_ANNOTATION, GpuEvent, TraceEvents

# HTA's runtime calls that enqueue an op on a stream (TraceSymbolTable's launch query).
QUEUE_LAUNCHES = frozenset(
    {
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cuLaunchKernel",
        "cudaMemcpyAsync",
        "cudaMemsetAsync",
        "hipLaunchKernel",
        "hipExtModuleLaunchKernel",
        "hipMemcpyAsync",
        "hipMemsetAsync",
        "hipMemcpyWithStream",
    }
)
# Collectives that run on the CPU: gloo (and MPI/UCC) record each one as a host range
# named "<backend>:<collective>"; NCCL's run as kernels and are counted there.
HOST_COLLECTIVE_PREFIXES = ("gloo:", "mpi:", "ucc:")


@dataclass
class SmFigures:
    """Duration-weighted means over the kernels that carry the field (None when none do)."""

    blocks_per_sm: float | None = None
    warps_per_sm: float | None = None
    sm_efficiency: float | None = None  # mean of min(blocks per SM, 1), a fraction
    occupancy: float | None = None  # est. achieved occupancy, a fraction
    weight_us: float = 0.0  # summed duration of the kernels that carry blocks per SM


def kernel_sm(kernels: Sequence[GpuEvent]) -> SmFigures:
    """tb-profiler's per-kernel figures: each call weighted by its duration.

    SM efficiency of one call is min(blocks per SM, 1) (tb-profiler's SM_Eff_K); calls
    without a field, or with a negative one, are left out of that field's mean.
    """
    sums = [0.0, 0.0, 0.0, 0.0]  # blocks, warps, efficiency, occupancy (weighted)
    weights = [0.0, 0.0, 0.0, 0.0]
    for g in kernels:
        sm = g.sm
        if sm is None:
            continue
        d = g.end - g.start
        blocks, warps, occupancy = sm
        if blocks is not None and blocks >= 0:
            sums[0] += blocks * d
            weights[0] += d
            sums[2] += min(blocks, 1.0) * d
            weights[2] += d
        if warps is not None and warps >= 0:
            sums[1] += warps * d
            weights[1] += d
        if occupancy is not None and occupancy >= 0:
            sums[3] += occupancy / 100.0 * d
            weights[3] += d
    means = [s / w if w > 0 else None for s, w in zip(sums, weights, strict=True)]
    return SmFigures(means[0], means[1], means[2], means[3], weights[0])


def add_sm_to_rows(rows: Sequence[KernelRow], kernels: Sequence[GpuEvent]) -> None:
    """Fill each row's SM figures from the calls of that kernel name."""
    wanted = {row.name for row in rows}
    by_name: dict[str, list[GpuEvent]] = defaultdict(list)
    for g in kernels:
        if g.sm is not None and g.name in wanted:
            by_name[g.name].append(g)
    for row in rows:
        calls = by_name.get(row.name)
        if calls:
            f = kernel_sm(calls)
            row.blocks_per_sm = f.blocks_per_sm
            row.warps_per_sm = f.warps_per_sm
            row.sm_efficiency = f.sm_efficiency
            row.occupancy = f.occupancy


def sm_efficiency(kernels: Sequence[GpuEvent], lo: float, hi: float) -> float | None:
    """tb-profiler's overall Est. SM Efficiency over [lo, hi]: at each instant the blocks
    per SM of every kernel running then, added up and capped at 1, integrated over time
    and divided by the window's length. None when no kernel carries blocks per SM."""
    edges: list[tuple[float, float]] = []
    for g in kernels:
        sm = g.sm
        if sm is None or sm[0] is None or sm[0] <= 0:
            continue
        s = lo if g.start < lo else g.start
        e = hi if g.end > hi else g.end
        if e > s:
            edges.append((s, sm[0]))
            edges.append((e, -sm[0]))
    if not edges or hi <= lo:
        return None
    edges.sort(key=itemgetter(0))
    total = 0.0
    level = 0.0
    last = edges[0][0]
    for t, delta in edges:
        if t > last and level > 1e-9:
            total += min(level, 1.0) * (t - last)
        last = t
        level += delta
    return total / (hi - lo)


def occupancy(kernels: Sequence[GpuEvent], lo: float, hi: float) -> float | None:
    """tb-profiler's overall achieved occupancy: the mean over kernels (clipped to
    [lo, hi]) weighted by duration, as a fraction. None when no kernel carries it."""
    total = weight = 0.0
    for g in kernels:
        sm = g.sm
        if sm is None or sm[2] is None or sm[2] < 0:
            continue
        s = lo if g.start < lo else g.start
        e = hi if g.end > hi else g.end
        if e > s:
            total += sm[2] / 100.0 * (e - s)
            weight += e - s
    return total / weight if weight > 0 else None


def queue_lengths(gpu: Sequence[GpuEvent], ev: TraceEvents) -> dict[int, tuple[float, int]]:
    """HTA's queue length per stream -> (mean, max) of its time series.

    The length goes up by one when a launch call (QUEUE_LAUNCHES) enqueues an op and down
    by one when that op starts on the GPU; ops without such a launch call are left out.
    Like HTA's summary, the mean is over the series' samples (one per change), not
    weighted by time, and it covers the whole trace. At an equal time the launch counts
    first.
    """
    host = ev.host
    changes: dict[int, list[tuple[float, int]]] = defaultdict(list)
    is_launch: dict[str, bool] = {}
    for g in gpu:
        i = g.launch
        if i < 0:
            continue
        call = host[i]
        hit = is_launch.get(call.name)
        if hit is None:
            hit = is_launch[call.name] = call.name in QUEUE_LAUNCHES
        if hit:
            changes[g.stream].append((call.start, 1))
            changes[g.stream].append((g.start, -1))
    out: dict[int, tuple[float, int]] = {}
    for stream, items in changes.items():
        items.sort(key=lambda c: (c[0], -c[1]))
        length = 0
        total = 0
        top = 0
        for _, delta in items:
            length += delta
            total += length
            if length > top:
                top = length
        out[stream] = (total / len(items), top)
    return out


def launch_to_start(gpu: Sequence[GpuEvent], ev: TraceEvents) -> list[float]:
    """HTA's launch delay, sorted: for every op enqueued by a launch call (QUEUE_LAUNCHES:
    kernels, async copies and memsets), its start less the end of that call, 0 when it
    started before the call returned. Over the whole trace, like queue_lengths."""
    host = ev.host
    out = []
    for g in gpu:
        if g.launch >= 0:
            call = host[g.launch]
            if call.name in QUEUE_LAUNCHES:
                delay = g.start - call.end
                out.append(delay if delay > 0 else 0.0)
    out.sort()
    return out


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def tb_window(ev: TraceEvents) -> tuple[float, float]:
    """tb-profiler's window for GPU utilisation: its steps' span, CPU-only time included.

    With ProfilerSteps: the first step's start to the last step's end. Without: the span
    of the host ops (cpu_op). tb-profiler 0.4.3 also stretches a step to the end of the
    GPU work launched in it, but only on traces whose runtime calls are in category
    "Runtime" (PyTorch 1.8-1.9); that is left out here. Returns (start, end) on the
    trace's time base.
    """
    if ev.steps:
        return (ev.steps[0].start, max(s.end for s in ev.steps))
    host = ev.host
    ops = [host[i] for i in ev.of(CPU_OP)]
    if not ops:
        return (0.0, 0.0)
    return (min(h.start for h in ops), max(h.end for h in ops))


def host_collectives(ev: TraceEvents, lo: float, hi: float) -> tuple[float, list[NameTime]]:
    """Host-side collectives (gloo) in [lo, hi]: the union of their ranges and, per name,
    calls and summed time (clipped to the window)."""
    host = ev.host
    ranges: list[iv.Interval] = []
    rows: dict[str, NameTime] = {}
    indices = ev.of(CPU_OP, USER_ANNOTATION)
    # The name test at C level first: it rules out nearly every event.
    names = map(attrgetter("name"), map(host.__getitem__, indices))
    for i in compress(indices, map(methodcaller("startswith", HOST_COLLECTIVE_PREFIXES), names)):
        h = host[i]
        s = lo if h.start < lo else h.start
        e = hi if h.end > hi else h.end
        if e < s or (e == s and not lo <= h.start <= hi):
            continue
        ranges.append((s, e))
        row = rows.get(h.name)
        if row is None:
            row = rows[h.name] = NameTime(h.name)
        row.count += 1
        row.total_us += e - s
    return iv.length(iv.merge(ranges)), sorted(rows.values(), key=lambda r: (-r.total_us, r.name))
