"""Host-side communication per rank, from the ranks' trace files.

A CPU (gloo) trace has no communication kernels: gloo records each collective as a range
(``gloo:all_reduce``, ``gloo:broadcast``, ...) on its worker threads, lasting from the call
until every rank has contributed. So the time a rank spends waiting for a slower one shows
up there. Communication per step is the union of those ranges inside the ProfilerSteps;
compute per step is the rest of the step. In synchronous data parallelism step times come
out equal on every rank, and the straggler is the rank with the most compute per step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reporter.report.distributed import CollectiveTime, RankComm
from reporter.trace import intervals as iv
from reporter.trace.events import STEP_PREFIX
from reporter.trace.load import load_trace

# Ranges named after a collective: gloo's "gloo:all_reduce", NCCL's host ranges
# ("nccl:all_reduce"), and the c10d ops. The c10d ops return at once for async work, the
# backend ranges last until the collective completes: both are unioned, so none counts twice.
COLLECTIVE = re.compile(r"^(gloo|nccl|mpi|ucc):|^c10d::|^record_param_comms$")


def is_collective_range(name: str) -> bool:
    return bool(COLLECTIVE.search(name))


def rank_comm(path: Path, fallback_rank: int) -> RankComm:
    """One trace file's steps and collective ranges (the rank from distributedInfo)."""
    events, meta = load_trace(path)
    info = meta.get("distributedInfo") or {}
    rank = int(info.get("rank", fallback_rank))
    return comm_figures(events, rank, str(path))


def comm_figures(events: Sequence[Any], rank: int, source: str = "") -> RankComm:
    steps: list[iv.Interval] = []
    ranges: list[tuple[str, float, float]] = []
    for e in events:
        if not isinstance(e, dict) or e.get("ph") != "X":
            continue
        name = str(e.get("name", ""))
        start = float(e.get("ts", 0.0))
        end = start + float(e.get("dur", 0.0))
        if name.startswith(STEP_PREFIX):
            steps.append((start, end))
        elif is_collective_range(name):
            ranges.append((name, start, end))
    out = RankComm(rank=rank, file=source, steps=len(steps))
    if not steps:
        return out
    steps = iv.merge(steps)
    step_total = iv.length(steps)
    out.step_time_us = step_total / len(steps)
    inside: list[iv.Interval] = []
    by_name: dict[str, CollectiveTime] = {}
    for name, start, end in ranges:
        parts = [p for s in steps for p in iv.clip([(start, end)], s[0], s[1])]
        if not parts:
            continue
        row = by_name.setdefault(name, CollectiveTime(name))
        row.count += 1
        row.total_us += iv.length(parts)
        inside.extend(parts)
    comm = iv.length(iv.merge(inside))
    out.communication_per_step_us = comm / len(steps)
    out.compute_per_step_us = (step_total - comm) / len(steps)
    out.communication_share = comm / step_total if step_total else None
    out.collectives = sorted(by_name.values(), key=lambda c: (-c.total_us, c.name))
    return out


def ranks_comm(files: Sequence[Path]) -> list[RankComm]:
    return sorted((rank_comm(f, i) for i, f in enumerate(files)), key=lambda r: r.rank)
