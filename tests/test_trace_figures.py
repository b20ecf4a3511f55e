"""Trace figures on the real traces in tests/data/traces, checked against figures computed
here straight from the raw JSON events (plain loops, none of reporter.trace's code)."""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import Counter, defaultdict
from functools import cache

import pytest

from reporter.report import ModelInfo, Report, report_from_json, report_to_json
from reporter.report.trace import TraceSection
from reporter.trace import analyse_paths
from tests.conftest import TRACE_DATA

TRACES = TRACE_DATA
ALL = sorted(p.name for p in TRACES.glob("*.json.gz")) if TRACES.is_dir() else []
GPU_TRACES = [
    "a100_alexnet.json.gz",
    "a100_nccl_training.json.gz",
    "two_rank_rank0.json.gz",
    "two_rank_rank1.json.gz",
    "v100_training_rank0.json.gz",
]
EXPECTED_FILES = {
    *GPU_TRACES,
    "a100_cupti_counters.json.gz",
    "cpu_mlp_training.json.gz",
}


@cache
def section(name: str) -> TraceSection:
    return analyse_paths([TRACES / name])


@cache
def raw(name: str) -> tuple[list[dict], dict]:
    """The events with timestamps made relative to the first one: epoch-based ts near 1.7e15
    µs hold only 0.25 µs in a double, so ts + dur would round away the durations' ns."""
    data = json.loads(gzip.decompress((TRACES / name).read_bytes()))
    events = data["traceEvents"]
    base = math.floor(next(e["ts"] for e in events if "ts" in e))
    for e in events:
        if isinstance(e.get("ts"), (int, float)):
            e["ts"] -= base
    return events, data


# ----------------------------------------------------------------- independent figures


def union_length(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for s, e in sorted(intervals):
        if s >= end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def clip(intervals: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if e > lo and s < hi]


def expected(name: str) -> dict:
    """The key figures, from the raw events, by the definitions in reporter/report/trace.py."""
    events, _ = raw(name)
    gpu_ops = [
        e
        for e in events
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    ]
    out: dict = {}
    if gpu_ops:
        device = Counter(e["args"]["device"] for e in gpu_ops).most_common(1)[0][0]
        gpu_ops = [e for e in gpu_ops if e["args"]["device"] == device]
    steps = sorted(
        (
            e
            for e in events
            if e.get("ph") == "X"
            and e.get("cat") == "user_annotation"
            and e.get("name", "").startswith("ProfilerStep#")
        ),
        key=lambda e: e["ts"],
    )
    launches = {
        e["args"]["correlation"]: e
        for e in events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
    }
    if steps:
        lo = steps[0]["ts"]
        last_end = max(s["ts"] + s["dur"] for s in steps)
        hi = last_end
        for e in gpu_ops:
            call = launches.get(e["args"].get("correlation"))
            launched = call["ts"] if call else e["ts"]
            if launched < last_end:
                hi = max(hi, e["ts"] + e["dur"])
    elif gpu_ops:
        lo = min(e["ts"] for e in gpu_ops)
        hi = max(e["ts"] + e["dur"] for e in gpu_ops)
    else:
        host = [
            e
            for e in events
            if e.get("ph") == "X"
            and e.get("cat")
            in ("cpu_op", "user_annotation", "python_function", "cuda_runtime", "cuda_driver")
        ]
        lo = min(e["ts"] for e in host)
        hi = max(e["ts"] + e["dur"] for e in host)
    out["window"] = hi - lo
    out["lo"], out["hi"] = lo, hi
    out["steps"] = len(steps)
    out["step_time"] = statistics.mean(s["dur"] for s in steps) if steps else None
    if not gpu_ops:
        return out
    kernels = [e for e in gpu_ops if e["cat"] == "kernel"]
    spans = [(e["ts"], e["ts"] + e["dur"]) for e in kernels]
    out["busy"] = union_length(clip(spans, lo, hi))
    active = union_length(clip([(e["ts"], e["ts"] + e["dur"]) for e in gpu_ops], lo, hi))
    out["idle"] = (hi - lo) - active
    in_window = [e for e in kernels if lo <= e["ts"] < hi]
    out["kernel_count"] = len(in_window)
    out["kernel_sum"] = sum(e["dur"] for e in in_window)
    by_name: dict[str, float] = defaultdict(float)
    for e in in_window:
        by_name[e["name"]] += e["dur"]
    out["top_kernel"] = max(by_name, key=lambda n: (by_name[n], n))
    comm = [(e["ts"], e["ts"] + e["dur"]) for e in kernels if "nccl" in e["name"].lower()]
    compute = [(e["ts"], e["ts"] + e["dur"]) for e in kernels if "nccl" not in e["name"].lower()]
    out["comm"] = union_length(clip(comm, lo, hi))
    out["compute"] = union_length(clip(compute, lo, hi))
    out["host_wait"] = host_wait(gpu_ops, launches, lo, hi)
    return out


def host_wait(gpu_ops: list[dict], launches: dict, lo: float, hi: float) -> float:
    """Idle gaps whose next op was launched only after the gap began (plus a final gap)."""
    ops = sorted(gpu_ops, key=lambda e: (e["ts"], e["ts"] + e["dur"]))
    total = 0.0
    busy_until = lo
    for e in ops:
        end = e["ts"] + e["dur"]
        if end <= busy_until:
            continue
        if e["ts"] > busy_until and busy_until < hi:
            call = launches.get(e["args"].get("correlation"))
            if call is not None and call["ts"] >= busy_until:
                total += min(e["ts"], hi) - busy_until
        busy_until = max(busy_until, end)
    if busy_until < hi:
        total += hi - busy_until
    return total


# ----------------------------------------------------------------------------- tests


def near(value: float) -> object:
    """Equal up to float rounding: timestamps near 1.7e15 µs are exact to 0.25 µs only."""
    return pytest.approx(value, rel=1e-9, abs=1.0)


def test_every_shared_trace_is_covered() -> None:
    assert set(ALL) == EXPECTED_FILES, "a trace was added to tests/data/traces: cover it here"


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_window_and_steps(name: str) -> None:
    exp = expected(name)
    rank = section(name).ranks[0]
    assert rank.window_us == near(exp["window"])
    assert rank.step_count == exp["steps"] == len(rank.steps)
    if exp["step_time"] is None:
        assert rank.step_time_us is None
        assert any("no ProfilerStep" in n for n in section(name).notes)
    else:
        assert rank.step_time_us == near(exp["step_time"])


@pytest.mark.parametrize("name", GPU_TRACES)
def test_gpu_figures_match_raw_events(name: str) -> None:
    exp = expected(name)
    g = section(name).ranks[0].gpu
    assert g is not None
    assert g.busy_us == near(exp["busy"])
    assert g.kernel_count == exp["kernel_count"]
    assert g.kernel_sum_us == near(exp["kernel_sum"])
    assert g.breakdown.idle_us == near(exp["idle"])
    assert g.utilisation == near(exp["busy"] / exp["window"])
    assert g.breakdown.compute_us == near(exp["compute"])
    assert g.communication.total_us == near(exp["comm"])
    assert section(name).top_kernels[0].name == exp["top_kernel"]
    assert g.idle.host_wait_us == near(exp["host_wait"])


@pytest.mark.parametrize("name", GPU_TRACES)
def test_parts_add_up(name: str) -> None:
    rank = section(name).ranks[0]
    g = rank.gpu
    b = g.breakdown
    parts = b.compute_us + b.communication_us + b.memcpy_us + b.memset_us + b.idle_us
    assert parts == near(rank.window_us)
    idle = g.idle
    assert idle.host_wait_us + idle.short_gap_us + idle.other_us == pytest.approx(
        b.idle_us, abs=1e-3
    )
    assert b.compute_us + b.communication_us == near(g.busy_us)
    if rank.steps:  # the steps partition the window
        assert sum(s.window_us for s in rank.steps) == near(rank.window_us)
        assert sum(s.gpu_busy_us for s in rank.steps) == near(g.busy_us)
        assert sum(s.kernels for s in rank.steps) == g.kernel_count
        host_wait = sum(s.idle.host_wait_us for s in rank.steps)
        assert host_wait == near(idle.host_wait_us)
    assert g.kernel_sum_us >= g.busy_us - 1e-6  # overlapping kernels count once in busy


def test_v100_specifics() -> None:
    rank = section("v100_training_rank0.json.gz").ranks[0]
    assert rank.device_name == "Tesla V100-SXM2-32GB"
    assert rank.compute_capability == "7.0"
    tc = rank.gpu.tensor_cores
    assert tc.available is True
    assert tc.share == 0.0  # fp32 cuDNN/cuBLAS kernels only
    assert tc.not_tensor_core_share > 0.5
    assert {k.launched_by for k in tc.top_not_tensor_core} <= {
        "aten::convolution_backward",
        "aten::cudnn_convolution",
        "aten::addmm",
        "aten::mm",
    }
    # The GPU ran a step behind the CPU: the window reaches past the last step's CPU end.
    last = rank.steps[-1]
    assert rank.window_us > last.start_us + last.duration_us
    assert any("past the step's end" in n for n in rank.notes)
    assert rank.gpu.launch.launch_delay_median_us > 10_000  # a deep launch queue


def test_alexnet_pageable_copies_and_syncs() -> None:
    rank = section("a100_alexnet.json.gz").ranks[0]
    events, _ = raw("a100_alexnet.json.gz")
    copies = [e for e in events if e.get("cat") == "gpu_memcpy"]
    pageable = [e for e in copies if "Pageable" in e["name"]]
    m = rank.gpu.memcpy
    assert m.count == len(copies)
    assert m.pageable_count == len(pageable)
    assert m.pageable_bytes == sum(e["args"]["bytes"] for e in pageable)
    assert [r.direction for r in m.rows] == ["HtoD"]
    exp = expected("a100_alexnet.json.gz")
    syncs = [  # blocking calls inside the window (first to last GPU op: no steps here)
        e
        for e in events
        if e.get("cat") == "cuda_runtime"
        and e["name"] in ("cudaDeviceSynchronize", "cudaStreamSynchronize")
        and exp["lo"] <= e["ts"] <= exp["hi"]
    ]
    assert rank.syncs.blocking_calls == len(syncs)
    assert rank.syncs.blocking_us == pytest.approx(sum(e["dur"] for e in syncs))
    stream_syncs = [s for s in rank.syncs.sites if s.kind == "cudaStreamSynchronize"]
    assert stream_syncs and stream_syncs[0].op == "aten::to"  # the .to(device) calls
    assert rank.syncs.gpu_sync_events["Stream Sync"] == 16
    top = rank.top_kernels[0]
    assert top.short_name == "ampere_sgemm_32x32_sliced1x4_tn" and top.launched_by == "aten::addmm"


def test_nccl_training_communication() -> None:
    rank = section("a100_nccl_training.json.gz").ranks[0]
    c = rank.gpu.communication
    assert c.kernels == 21
    assert {n.name for n in c.collectives} == {
        "ncclKernel_AllReduce_RING_LL_Sum_float",
        "ncclKernel_Broadcast_RING_LL_Sum_int8_t",
    }
    assert c.overlapped_us + c.exposed_us == pytest.approx(c.total_us)
    assert 0 < c.overlap_share < 1
    assert rank.world_size == 2 and rank.backend == "nccl"
    assert len(rank.gpu.streams.streams) == 2  # compute stream and NCCL stream
    assert rank.gpu.streams.concurrent_us > 0
    assert rank.syncs.per_step == pytest.approx(8.0)  # DDP's cudaEventSynchronize per step


def test_cupti_counter_trace_has_no_gpu_figures() -> None:
    s = section("a100_cupti_counters.json.gz")
    rank = s.ranks[0]
    assert rank.gpu is None and not s.overall.has_gpu
    assert any("no kernel" in n for n in s.notes)
    assert any("cuda_profiler_range" in n for n in s.notes)
    assert rank.cpu_ops  # the CPU side is still analysed


def test_cpu_only_trace() -> None:
    name = "cpu_mlp_training.json.gz"
    s = section(name)
    rank = s.ranks[0]
    assert rank.gpu is None and s.top_kernels == []
    assert any("no GPU activity" in n for n in s.notes)
    assert any("no distributedInfo" in n for n in s.notes)
    assert rank.syncs.sites == []  # item() on CPU tensors waits for no device
    events, _ = raw(name)
    ops = [e for e in events if e.get("cat") == "cpu_op"]
    # Self time: duration less that of the nearest cpu_ops inside (same thread).
    child = defaultdict(float)
    for op in ops:
        enclosing = [
            p
            for p in ops
            if p is not op
            and p["tid"] == op["tid"]
            and p["ts"] <= op["ts"]
            and op["ts"] + op["dur"] <= p["ts"] + p["dur"]
            and p["dur"] >= op["dur"]
        ]
        if enclosing:
            parent = min(enclosing, key=lambda p: p["dur"])
            child[id(parent)] += op["dur"]
    self_by_name: dict[str, float] = defaultdict(float)
    for op in ops:
        self_by_name[op["name"]] += op["dur"] - child[id(op)]
    top = max(self_by_name, key=lambda n: self_by_name[n])
    assert rank.cpu_ops[0].name == top == "aten::mm"
    assert rank.cpu_ops[0].self_us == near(self_by_name[top])
    assert rank.cpu_op_self_us == pytest.approx(sum(self_by_name.values()), rel=1e-9)
    # Modules come from the with_stack "nn.Module: X" frames.
    modules = {m.module for m in rank.cpu_modules}
    assert {"Sequential_0/Linear_0", "Sequential_0/ReLU_0", "Sequential_0/Linear_1"} <= modules
    addmm = next(o for o in rank.cpu_ops if o.name == "aten::addmm")
    assert addmm.module.startswith("Sequential_0/Linear_")
    # profile_memory=True: CPU allocation peak from the [memory] events.
    peak = max(e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]")
    assert [(m.device, m.peak_allocated_bytes) for m in rank.memory] == [("cpu", peak)]


def test_section_survives_json_round_trip() -> None:
    s = analyse_paths([TRACES / "two_rank_rank0.json.gz", TRACES / "two_rank_rank1.json.gz"])
    report = Report(model=ModelInfo(class_name="trace", source="traces"), kind="trace", trace=s)
    again = report_from_json(report_to_json(report))
    assert again.trace == s


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_msgspec_and_stdlib_paths_agree(name: str) -> None:
    """msgspec's decoding (reporter/trace/decode.py) and json.loads give one result."""
    fast = section(name)
    slow = analyse_paths([TRACES / name], fast=False)
    slow.analysis_seconds = fast.analysis_seconds
    assert slow == fast
