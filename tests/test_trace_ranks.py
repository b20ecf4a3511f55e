"""Many ranks: the two-rank pair in tests/data/traces, straggler logic, cross-rank notes."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import statistics
from functools import cache
from pathlib import Path

import pytest

from reporter.report.trace import TraceSection
from reporter.trace import analyse_paths
from reporter.trace.ranks import find_stragglers
from tests.conftest import TRACE_DATA

TRACES = TRACE_DATA
PAIR = [TRACES / "two_rank_rank0.json.gz", TRACES / "two_rank_rank1.json.gz"]


@cache
def pair() -> TraceSection:
    return analyse_paths(PAIR)


def raw_events(path: Path) -> tuple[list[dict], dict]:
    data = json.loads(gzip.decompress(path.read_bytes()))
    events = data["traceEvents"]
    base = math.floor(next(e["ts"] for e in events if "ts" in e))
    for e in events:
        if isinstance(e.get("ts"), (int, float)):
            e["ts"] -= base
    return events, data


def union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(spans):
        if s >= end:
            total, end = total + e - s, e
        elif e > end:
            total, end = total + e - end, e
    return total


def independent_rank_figures(path: Path) -> dict:
    """Rank, step time and compute per step straight from the raw events."""
    events, data = raw_events(path)
    steps = [e for e in events if e.get("name", "").startswith("ProfilerStep#")]
    launches = {e["args"]["correlation"]: e for e in events if e.get("cat") == "cuda_runtime"}
    lo = min(s["ts"] for s in steps)
    last_end = max(s["ts"] + s["dur"] for s in steps)
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    hi = max(
        [last_end]
        + [e["ts"] + e["dur"] for e in gpu if launches[e["args"]["correlation"]]["ts"] < last_end]
    )
    compute = [
        (max(e["ts"], lo), min(e["ts"] + e["dur"], hi))
        for e in gpu
        if e["cat"] == "kernel"
        and "nccl" not in e["name"]
        and e["ts"] + e["dur"] > lo
        and e["ts"] < hi
    ]
    return {
        "rank": data["distributedInfo"]["rank"],
        "step_time": statistics.mean(s["dur"] for s in steps),
        "compute_per_step": union_length(compute) / len(steps),
    }


def test_per_rank_figures_match_raw_events() -> None:
    section = pair()
    assert [r.rank for r in section.ranks] == [0, 1]
    for path, rank in zip(PAIR, section.ranks, strict=True):
        exp = independent_rank_figures(path)
        assert rank.rank == exp["rank"] and rank.rank_known
        assert rank.step_count == 2
        assert rank.step_time_us == pytest.approx(exp["step_time"], abs=1.0)
        assert rank.compute_per_step_us == pytest.approx(exp["compute_per_step"], abs=1.0)
        assert rank.world_size == 128 and rank.backend == "nccl"
        assert rank.device_name == ""  # no deviceProperties in these traces


def test_straggler_is_the_rank_that_computes_longer() -> None:
    spread = pair().spread
    assert spread is not None and spread.ranks == 2
    compute = {r.rank: r.compute_per_step_us for r in pair().ranks}
    assert compute[1] / compute[0] - 1 > 0.1  # rank 1 computes ~29% longer per step
    assert [s.rank for s in spread.stragglers] == [1]
    s = spread.stragglers[0]
    assert s.metric == "compute_per_step_us"
    assert s.excess == pytest.approx(compute[1] / compute[0] - 1)
    assert spread.slowest_rank == 1 and spread.fastest_rank == 0
    steps = [r.step_time_us for r in pair().ranks]
    assert spread.step_time_spread == pytest.approx(max(steps) / min(steps) - 1)
    # The step times are close (synchronous training): the difference hides in waiting.
    assert spread.step_time_spread < 0.05


def test_pair_overall_and_merged_kernels() -> None:
    section = pair()
    o = section.overall
    assert o.ranks == 2 and o.has_gpu
    assert o.window_us == pytest.approx(sum(r.window_us for r in section.ranks))
    assert o.gpu_busy_us == pytest.approx(sum(r.gpu.busy_us for r in section.ranks))
    nccl = section.top_kernels[0]
    assert nccl.short_name == "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t"
    assert nccl.count == 20 and nccl.category == "communication"
    assert any("2 of 128 ranks" in n for n in section.notes)
    assert any(n.startswith("rank 1: no deviceProperties") for n in section.notes)


def test_folder_of_rank_files_gives_the_per_rank_view(tmp_path: Path) -> None:
    for p in PAIR:
        shutil.copy(p, tmp_path / p.name)
    section = analyse_paths([tmp_path])
    assert [r.rank for r in section.ranks] == [0, 1]
    assert [s.rank for s in section.spread.stragglers] == [1]


def test_two_files_with_the_same_rank_are_flagged(tmp_path: Path) -> None:
    copy = tmp_path / "again.json.gz"
    shutil.copy(PAIR[0], copy)
    section = analyse_paths([PAIR[0], copy])
    assert any("several files claim rank 0" in n for n in section.notes)


def test_find_stragglers_compares_with_the_other_ranks() -> None:
    assert [s.rank for s in find_stragglers({0: 100, 1: 101, 2: 130}, 0.1, "m")] == [2]
    assert find_stragglers({0: 100, 1: 105}, 0.1, "m") == []
    assert [s.rank for s in find_stragglers({0: 100, 1: 150}, 0.1, "m")] == [1]
    assert find_stragglers({0: 100}, 0.1, "m") == []
    s = find_stragglers({0: 100, 1: 100, 2: 100, 3: 200}, 0.5, "m")[0]
    assert (s.rank, s.others_median_us, s.excess) == (3, 100, pytest.approx(1.0))
