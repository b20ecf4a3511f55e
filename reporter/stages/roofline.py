"""The roofline stage: each op's work, bytes and time against the machine's ceilings.

Runs the forward a few times under the op timer (reporter.roofline.timer) in eval() under
no_grad, and takes each call's median time over those
runs. The model figures use the timing stage's latency when it ran.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import replace

import torch

from reporter.report.roofline import MachinePeaks, RooflineSection
from reporter.roofline.analysis import (
    OpCall,
    group_ops,
    memory_chains,
    mfu,
    model_figures,
    module_totals,
)
from reporter.roofline.peaks import machine_peaks
from reporter.roofline.timer import timed_forward
from reporter.stages.context import StageContext

MAX_FORWARDS = 5
BUDGET_S = 0.3  # after the first timed forward; at least 2 are taken
MAX_OPS = 200  # op groups kept in the report, by time


def run(ctx: StageContext) -> RooflineSection:
    subject = ctx.subject
    device = subject.device
    model = subject.model.eval()
    # no_grad, not inference_mode: under inference_mode a dispatch mode sees composite ops
    # (aten::linear, aten::conv2d) before they decompose, and FLOP formulas are written
    # for the ops they decompose into (pytorch#126268).
    with torch.no_grad():
        if "profile" not in ctx.sections and "timing" not in ctx.sections:
            subject.call()  # warm-up: first-call allocation and kernel selection
        runs = _timed_runs(model, subject.call, device)
    calls = median_calls(runs)
    peaks = machine_peaks(device, _float_dtypes(model))
    notes = raise_to_observed(peaks, calls)
    timing = ctx.sections.get("timing")
    latency = timing.latency_ms.median if timing is not None else None
    figures = model_figures(calls, peaks, latency)
    ops = group_ops(calls, peaks)
    types = {name: type(m).__name__ for name, m in model.named_modules()}
    section = RooflineSection(
        machine=peaks,
        model=figures,
        ops=ops[:MAX_OPS],
        modules=module_totals(calls, peaks, types),
        chains=memory_chains(calls, peaks)[:20],
        forwards=len(runs),
        ops_total=len(ops),
        notes=notes,
    )
    _add_mfu(ctx, section)
    if len(runs) > 1 and any(len(r) != len(runs[0]) for r in runs):
        section.notes.append(
            "the forwards ran different op sequences (data-dependent code): figures are the "
            "first forward's"
        )
    section.method = _method(section, latency is not None, device)
    return section


def _timed_runs(model: torch.nn.Module, call, device: torch.device) -> list[list[OpCall]]:
    runs = [timed_forward(model, call, device)]
    deadline = time.perf_counter() + BUDGET_S
    while len(runs) < MAX_FORWARDS and (len(runs) < 2 or time.perf_counter() < deadline):
        runs.append(timed_forward(model, call, device))
    return runs


def raise_to_observed(peaks: MachinePeaks, calls: list[OpCall]) -> list[str]:
    """A ceiling is what the machine can do: an op that ran faster than the measured peak
    (measured while the machine was busier, say) shows the peak was low, so it is raised
    to that op's rate and the report says so. Bandwidth is left alone: an op whose tensors
    stay in cache beats the memory ceiling legitimately (its efficiency is capped at 100%)."""
    fastest = max(
        (c.flops / (c.time_us / 1e6) for c in calls if c.flops and c.time_us > 0), default=0.0
    )
    if fastest <= peaks.peak_flops:
        return []
    note = (
        f"an op reached {fastest / 1e9:,.1f} GFLOP/s, above the measured peak of "
        f"{peaks.peak_flops / 1e9:,.1f}: the compute ceiling is raised to it "
        f"(the peak was measured while the machine was busier; "
        f"{peaks.refresh.split(' perfreport')[0]} measures it again)"
    )
    peaks.peak_flops = fastest
    return [note]


def median_calls(runs: list[list[OpCall]]) -> list[OpCall]:
    """Each call's median time over the runs that ran the same op sequence as the first."""
    first = runs[0]
    same = [r for r in runs if [c.name for c in r] == [c.name for c in first]]
    return [
        replace(c, time_us=statistics.median(r[i].time_us for r in same))
        for i, c in enumerate(first)
    ]


def _float_dtypes(model: torch.nn.Module) -> list[torch.dtype]:
    """The model's floating dtypes, most common parameter dtype first."""
    counts = Counter(p.dtype for p in model.parameters() if p.is_floating_point())
    dtypes = [d for d, _ in counts.most_common()] or [torch.float32]
    return [
        d for d in dtypes if d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    ] or [torch.float32]


def _add_mfu(ctx: StageContext, section: RooflineSection) -> None:
    """With --train: training-step FLOPs / profiled step time / peak."""
    flops = ctx.sections.get("flops")
    profile = ctx.sections.get("profile")
    if flops is None or profile is None or profile.mode != "train" or not flops.backward_total:
        return
    step_flops = flops.forward_total + flops.backward_total
    step_ms = profile.step_us_median / 1000
    section.model.mfu = mfu(step_flops, step_ms, section.machine.peak_flops)
    section.model.mfu_method = (
        f"(forward + backward FLOPs {step_flops:,}) / profiled training step "
        f"({step_ms:.3f} ms, optimizer included, profiler overhead included: a lower bound) "
        f"/ peak {section.machine.peak_flops:.3g} FLOP/s"
    )


def _method(section: RooflineSection, timed: bool, device: torch.device) -> str:
    m = section.machine
    clock = (
        "CUDA events around each op" if device.type == "cuda" else "the wall time of each op call"
    )
    latency = (
        "achieved FLOP/s and headroom use the timing stage's median latency, so time between "
        "ops (Python, hooks, the allocator) counts as overhead"
        if timed
        else "the timing stage did not run: achieved FLOP/s and headroom use the ops' time"
    )
    return (
        f"{section.forwards} forwards in eval() + no_grad under a dispatch mode that "
        f"times each op ({clock}; median per call over the forwards), counts its FLOPs "
        f"(FlopCounterMode's formulas and perfreport's) and its bytes (input + output "
        f"tensors: a lower bound on what it moves). Ceilings: {m.dtype} matrix products "
        f"{m.peak_flops / 1e9:,.1f} GFLOP/s and copies {m.peak_bytes_per_s / 1e9:,.1f} GB/s "
        f"({m.method}; measured {m.measured_on}, cached in {m.cache_file}; refresh with "
        f"{m.refresh}). An op's roofline time is max(FLOPs / peak, bytes / bandwidth); its "
        f"regime is the largest of that compute time, that memory time and one call's "
        f"measured cost ({m.call_floor_us:.2f} µs): overhead-bound ops get faster only by "
        f"fewer calls. Speed of light = the sum of the ops' roofline times; {latency}."
    )
