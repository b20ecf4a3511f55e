"""Kernels: the top kernels by time with the op that launched them, Tensor Core use, and
tb-profiler's per-kernel SM efficiency and achieved occupancy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from reporter.report.trace import KernelRow, TensorCoreFigures
from reporter.trace.analyzers.names import (
    is_matmul_or_conv_kernel,
    is_tensor_core_kernel,
    short_kernel_name,
)
from reporter.trace.events import CPU_OP, USER_ANNOTATION, GpuEvent, TraceEvents

TOP_KERNELS = 15


def launching_ops(ev: TraceEvents, gpu: Sequence[GpuEvent]) -> dict[int, str]:
    """Launch call index -> the innermost cpu_op around it (else the innermost annotation)."""
    host = ev.host
    out: dict[int, str] = {}
    for g in gpu:
        i = g.launch
        if i < 0 or i in out:
            continue
        annotation = ""
        p = host[i].parent
        while p >= 0:
            h = host[p]
            if h.cat == CPU_OP:
                break
            if h.cat == USER_ANNOTATION and not annotation:
                annotation = h.name
            p = h.parent
        out[i] = host[p].name if p >= 0 else annotation
    return out


def kernel_rows(kernels: Sequence[GpuEvent], launched_by: dict[int, str]) -> list[KernelRow]:
    """Kernels grouped by name, most time first, with the op that launched them most."""
    # One pass: per name its durations (in trace order, so every sum below adds the same
    # numbers in the same order as summing per kernel) and the time per launching op.
    durations: list[float] = []
    groups: dict[str, tuple[list[float], dict[str, float], bool]] = {}
    for g in kernels:
        d = g.end - g.start
        durations.append(d)
        group = groups.get(g.name)
        if group is None:
            group = groups[g.name] = ([], {}, g.collective)
        group[0].append(d)
        op = launched_by.get(g.launch)
        if op:
            by_op = group[1]
            by_op[op] = by_op.get(op, 0.0) + d
    total = sum(durations) or 1.0
    rows = []
    for name, (durs, by_op, collective) in groups.items():
        t = sum(durs)
        rows.append(
            KernelRow(
                name=name,
                short_name=short_kernel_name(name),
                count=len(durs),
                total_us=t,
                mean_us=t / len(durs),
                max_us=max(durs),
                share=t / total,
                # The first op with the most time, as Counter.most_common(1) picks it.
                launched_by=max(by_op, key=by_op.__getitem__) if by_op else "",
                category="communication" if collective else "compute",
                tensor_core=is_tensor_core_kernel(name),
                matmul_or_conv=is_matmul_or_conv_kernel(name),
            )
        )
    rows.sort(key=lambda r: (-r.total_us, r.name))
    return rows


def tensor_core_figures(rows: Sequence[KernelRow], capable: bool | None) -> TensorCoreFigures:
    total = sum(r.total_us for r in rows) or 1.0
    tc = sum(r.total_us for r in rows if r.tensor_core)
    mm = sum(r.total_us for r in rows if r.matmul_or_conv)
    not_tc = [r for r in rows if r.matmul_or_conv and not r.tensor_core]
    not_tc_us = sum(r.total_us for r in not_tc)
    if capable is None and tc > 0:
        capable = True  # Tensor Core kernels ran, so the device has them
    return TensorCoreFigures(
        available=capable,
        tensor_core_us=tc,
        share=tc / total,
        matmul_conv_us=mm,
        not_tensor_core_us=not_tc_us,
        not_tensor_core_share=not_tc_us / total,
        top_not_tensor_core=list(not_tc[:5]),
    )


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
