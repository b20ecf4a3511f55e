"""The timing stage: forward latency and throughput measured outside the profiler.

The model runs in ``eval()`` under ``inference_mode``, as in the profile stage's
inference steps. See reporter.profiling.measure for the method. The worker runs this
stage first, right after loading the model: what earlier stages allocate and free moves
glibc malloc's thresholds and with them the latency (docs/design.md), so timing first
gives the figure a user's own benchmark in a fresh process gets, whatever else runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from reporter.option_schema import default
from reporter.profiling.allocator import current_malloc
from reporter.profiling.contention import timing_noise
from reporter.profiling.counters import counters_between, usable_cpus
from reporter.profiling.measure import Measurement, measure
from reporter.profiling.options import positive
from reporter.profiling.stats import latency_stats
from reporter.profiling.sweep import SweepLimits, batch_size, run_sweep
from reporter.report.profile import BatchSweep, TimingSection
from reporter.report.timing_counters import TimingCounters
from reporter.stages.context import StageContext


def run(ctx: StageContext) -> TimingSection:
    subject = ctx.subject
    device = subject.device
    seconds = positive(
        ctx.options.stage_option("timing", "seconds", default("timing_seconds")), "--timing-seconds"
    )
    model = subject.model.eval()
    ctx.progress(f"measuring latency (about {seconds:g} s after warm-up)")
    with torch.inference_mode():
        m = measure(subject.call, device, budget_s=seconds)
    stats = latency_stats(m.samples_ms)
    batch = batch_size(subject.args, subject.kwargs)
    counters = window_counters(m)
    reason = timing_noise(stats, len(m.samples_ms), m.warmup_stable, counters)
    section = TimingSection(
        latency_ms=stats,
        throughput=batch / (stats.median / 1e3) if stats.median > 0 else 0.0,
        batch_size=batch,
        samples_ms=m.samples_ms,
        iterations_per_sample=m.number,
        warmup_iterations=m.warmup_calls,
        warmup_stable=m.warmup_stable,
        measure_seconds=m.seconds,
        noisy=bool(reason),
        noise_reason=reason,
        threads=torch.get_num_threads(),
        device=str(device),
        settings=device_settings(device),
        counters=counters,
        allocator=current_malloc(),
    )
    if m.cuda_event_ms:
        section.cuda_event_ms = latency_stats(m.cuda_event_ms)
    sync = (
        "torch.cuda.synchronize around each block, CUDA events inside it; "
        if device.type == "cuda"
        else ""
    )
    section.method = (
        f"Timed first in the model process, right after loading, before any other stage; "
        f"eval() + inference_mode, {section.threads} threads, {section.allocator}; "
        f"warm-up of {m.warmup_calls} call(s) "
        f"({'stable within 5%' if m.warmup_stable else 'not yet stable when its budget ran out'}),"
        f" then {len(m.samples_ms)} samples of {m.number} call(s) each (time.perf_counter, "
        f"{sync}median over samples, its 95% interval from order statistics), "
        f"{m.seconds:.2f} s of measuring"
        f"{' (stopped early: the median was known to ±1%)' if m.stopped_early else ''}. "
        f"Throughput = batch "
        f"{batch} (first dim of the first input) / median latency. Page faults, CPU time "
        f"and context switches: getrusage(RUSAGE_SELF) around the timed samples; other "
        f"processes' load: /proc/stat of this process's CPUs, less its own CPU time."
    )
    if ctx.options.stage_option("timing", "batch_sweep", False):
        # A large batch may get the process OOM-killed: the latency and the points done
        # so far reach the parent first.
        ctx.partial(section)
        section.sweep = run_sweep(
            model,
            subject.args,
            subject.kwargs,
            device,
            sweep_limits(ctx),
            ctx.progress,
            on_point=lambda sweep: ctx.partial(
                dataclasses.replace(section, sweep=_unfinished(sweep))
            ),
        )
    return section


def window_counters(m: Measurement) -> TimingCounters | None:
    """The counters of the timed samples (warm-up excluded), per call where it says so."""
    if m.start is None or m.end is None:
        return None
    calls = len(m.samples_ms) * m.number
    return counters_between(m.start, m.end, calls, torch.get_num_threads(), len(usable_cpus()))


def _unfinished(sweep: BatchSweep) -> BatchSweep:
    """The sweep as the report shows it if the process dies timing the next batch."""
    last = sweep.points[-1].batch
    reason = f"the model process ended while timing batch {last * 2} (see the timing stage)"
    return dataclasses.replace(sweep, stop_reason=reason, points=list(sweep.points))


def sweep_limits(ctx: StageContext) -> SweepLimits:
    limits = SweepLimits()
    opt = ctx.options.stage_option
    if opt("timing", "sweep_max_batch") is not None:
        limits.max_batch = int(opt("timing", "sweep_max_batch"))
    if opt("timing", "sweep_seconds") is not None:
        limits.seconds = positive(opt("timing", "sweep_seconds"), "--sweep-seconds")
    if opt("timing", "sweep_memory_bytes") is not None:
        limits.memory_bytes = int(opt("timing", "sweep_memory_bytes"))
    if opt("timing", "sweep_point_seconds") is not None:
        limits.point_seconds = positive(opt("timing", "sweep_point_seconds"), "sweep_point_seconds")
    return limits


def device_settings(device: torch.device) -> dict[str, Any]:
    """Settings that change GPU speed, kept beside the figures they affect."""
    settings: dict[str, Any] = {
        "autocast_cpu": torch.is_autocast_enabled("cpu"),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        settings.update(
            {
                "device_name": torch.cuda.get_device_name(device),
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "autocast_cuda": torch.is_autocast_enabled("cuda"),
            }
        )
    return settings
