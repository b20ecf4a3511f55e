"""Many ranks: how their step and compute times spread, which rank straggles, the totals.

In synchronous data-parallel training every rank waits for the slowest at each collective,
so step times come out nearly equal; the rank that holds the others up is the one with the
most compute per step (the others spend that difference waiting in communication). So a
straggler is looked for in compute per step, and in step time for traces without a GPU.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from reporter.report.trace import (
    Breakdown,
    IdleSplit,
    KernelRow,
    OverallFigures,
    RankFigures,
    RankSpread,
    Straggler,
)

STRAGGLER_THRESHOLD = 0.10  # 10% above the median of the other ranks


def find_stragglers(values: dict[int, float], threshold: float, metric: str) -> list[Straggler]:
    """Ranks whose value exceeds the median of the *other* ranks by more than ``threshold``.

    Comparing with the others (not the median of all) works for two ranks too.
    """
    out = []
    if len(values) < 2:
        return out
    for rank, value in values.items():
        others = [v for r, v in values.items() if r != rank]
        median = statistics.median(others)
        if median > 0 and value / median - 1 > threshold:
            out.append(
                Straggler(
                    rank=rank,
                    metric=metric,
                    value_us=value,
                    others_median_us=median,
                    excess=value / median - 1,
                )
            )
    out.sort(key=lambda s: -s.excess)
    return out


def _spread(values: Sequence[float]) -> float | None:
    lo = min(values)
    return max(values) / lo - 1 if lo > 0 else None


def rank_spread(ranks: Sequence[RankFigures], threshold: float = STRAGGLER_THRESHOLD) -> RankSpread:
    out = RankSpread(ranks=len(ranks), threshold=threshold)
    steps = {r.rank: r.step_time_us for r in ranks if r.step_time_us is not None}
    compute = {r.rank: r.compute_per_step_us for r in ranks if r.compute_per_step_us is not None}
    if steps:
        values = list(steps.values())
        out.step_time_min_us = min(values)
        out.step_time_max_us = max(values)
        out.step_time_median_us = statistics.median(values)
        out.step_time_spread = _spread(values)
    if compute:
        values = list(compute.values())
        out.compute_min_us = min(values)
        out.compute_max_us = max(values)
        out.compute_spread = _spread(values)
    basis = compute if len(compute) >= 2 else steps
    if basis:
        out.slowest_rank = max(basis, key=lambda r: basis[r])
        out.fastest_rank = min(basis, key=lambda r: basis[r])
    out.stragglers = find_stragglers(compute, threshold, "compute_per_step_us")
    flagged = {s.rank for s in out.stragglers}
    out.stragglers += [
        s for s in find_stragglers(steps, threshold, "step_time_us") if s.rank not in flagged
    ]
    return out


def merge_kernel_rows(ranks: Sequence[RankFigures], top: int = 15) -> list[KernelRow]:
    """The ranks' top kernels added up by name (shares of the ranks' summed kernel time)."""
    if len(ranks) == 1:
        return list(ranks[0].top_kernels)
    total = sum(r.gpu.kernel_sum_us for r in ranks if r.gpu is not None) or 1.0
    merged: dict[str, KernelRow] = {}
    best_launch: dict[str, float] = {}
    for r in ranks:
        for k in r.top_kernels:
            m = merged.get(k.name)
            if m is None:
                m = merged[k.name] = KernelRow(
                    name=k.name,
                    short_name=k.short_name,
                    category=k.category,
                    tensor_core=k.tensor_core,
                    matmul_or_conv=k.matmul_or_conv,
                )
            m.count += k.count
            m.total_us += k.total_us
            m.max_us = max(m.max_us, k.max_us)
            if k.launched_by and k.total_us > best_launch.get(k.name, -1.0):
                best_launch[k.name] = k.total_us
                m.launched_by = k.launched_by
    for m in merged.values():
        m.mean_us = m.total_us / m.count if m.count else 0.0
        m.share = m.total_us / total
        rows = [k for r in ranks for k in r.top_kernels if k.name == m.name]
        for attr in ("blocks_per_sm", "warps_per_sm", "sm_efficiency", "occupancy"):
            setattr(m, attr, _time_weighted(rows, attr))
    return sorted(merged.values(), key=lambda k: (-k.total_us, k.name))[:top]


def _time_weighted(rows: Sequence[KernelRow], attr: str) -> float | None:
    """The ranks' per-kernel means, weighted by each rank's time in that kernel."""
    pairs = [(getattr(k, attr), k.total_us) for k in rows if getattr(k, attr) is not None]
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight > 0 else None


def overall_figures(ranks: Sequence[RankFigures]) -> OverallFigures:
    """Sums over the ranks; utilisation is summed busy time over summed windows."""
    out = OverallFigures(ranks=len(ranks))
    gpus = [r.gpu for r in ranks if r.gpu is not None]
    out.has_gpu = bool(gpus)
    out.window_us = sum(r.window_us for r in ranks)
    out.step_count = max((r.step_count for r in ranks), default=0)
    step_times = [r.step_time_us for r in ranks if r.step_time_us is not None]
    out.step_time_us = sum(step_times) / len(step_times) if step_times else None
    out.blocking_syncs = sum(r.syncs.blocking_calls for r in ranks)
    dl = sum(r.dataloader_us for r in ranks)
    out.dataloader_share = dl / out.window_us if out.window_us else None
    exposed = sum(r.dataloader_exposed_us for r in ranks)
    out.dataloader_exposed_share = exposed / out.window_us if out.window_us else None
    out.host_comm_us = sum(r.host_comm_us for r in ranks)
    out.host_comm_share = out.host_comm_us / out.window_us if out.window_us else None
    if not gpus:
        return out
    gpu_window = sum(r.window_us for r in ranks if r.gpu is not None)
    out.gpu_busy_us = sum(g.busy_us for g in gpus)
    out.utilisation = out.gpu_busy_us / gpu_window if gpu_window else None
    out.kernel_count = sum(g.kernel_count for g in gpus)
    out.kernel_sum_us = sum(g.kernel_sum_us for g in gpus)
    out.breakdown = Breakdown(
        compute_us=sum(g.breakdown.compute_us for g in gpus),
        communication_us=sum(g.breakdown.communication_us for g in gpus),
        memcpy_us=sum(g.breakdown.memcpy_us for g in gpus),
        memset_us=sum(g.breakdown.memset_us for g in gpus),
        idle_us=sum(g.breakdown.idle_us for g in gpus),
    )
    out.idle = IdleSplit(
        host_wait_us=sum(g.idle.host_wait_us for g in gpus),
        short_gap_us=sum(g.idle.short_gap_us for g in gpus),
        other_us=sum(g.idle.other_us for g in gpus),
        gaps=sum(g.idle.gaps for g in gpus),
        short_gap_threshold_us=gpus[0].idle.short_gap_threshold_us,
    )
    kernel_time = out.kernel_sum_us or 1.0
    out.tensor_core_share = sum(g.tensor_cores.tensor_core_us for g in gpus) / kernel_time
    out.not_tensor_core_share = sum(g.tensor_cores.not_tensor_core_us for g in gpus) / kernel_time
    out.communication_us = sum(g.communication.total_us for g in gpus)
    out.communication_exposed_us = sum(g.communication.exposed_us for g in gpus)
    out.communication_share = out.communication_us / gpu_window if gpu_window else None
    out.memcpy_pageable_count = sum(g.memcpy.pageable_count for g in gpus)
    out.tb_window_us = sum(g.tb_window_us for g in gpus)
    if out.tb_window_us:
        busy = sum((g.tb_utilisation or 0.0) * g.tb_window_us for g in gpus)
        out.tb_utilisation = busy / out.tb_window_us
    return out
