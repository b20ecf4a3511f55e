"""Rules that read the timing stage's counters: why the latency is what it is."""

from __future__ import annotations

import math
from collections.abc import Iterable

from reporter.profiling import contention
from reporter.profiling.allocator import env_lines
from reporter.report import Finding, Report
from reporter.report.timing_counters import AllocatorExperiment, AllocatorVariant
from reporter.rules.registry import evidence, rule
from reporter.units import percent


@rule(
    "cpu-oversubscribed",
    "Torch's threads competed for the CPUs while timing",
    reads=["timing"],
    thresholds={
        "timing.oversubscribed_cores": contention.OVERSUB_CORES,
        "timing.oversubscribed_spread": contention.OVERSUB_SPREAD,
        "timing.oversubscribed_cpu_share": contention.OVERSUB_CPU_SHARE,
    },
    doc="The threads of one parallel op wait for each other: when other processes hold "
    "the cores they need (or torch runs more threads than the process has CPUs), every op "
    "waits for the thread that is descheduled, and latency grows far beyond the share of "
    "CPU lost (the MNIST CNN: 3.5 ms idle, 100 ms with one of two cores busy). Flagged when "
    "torch's threads were short of at least `timing.oversubscribed_cores` cores (the "
    "process's CPUs less other processes' CPU time on them, from /proc/stat, or cgroup "
    "throttling) and it showed: the median at least `timing.oversubscribed_spread` times "
    "the fastest sample, or each thread on a CPU for at most "
    "`timing.oversubscribed_cpu_share` of the wall time (getrusage). The latency is then "
    "a figure of the machine's load, not of the model: pin the thread count to the free "
    "cores (`--threads N`) or measure on an idle machine.",
)
def oversubscribed(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    timing = report.timing
    if timing.counters is None:
        return []
    found = contention.oversubscription(
        timing.counters,
        timing.latency_ms,
        th["timing.oversubscribed_cores"],
        th["timing.oversubscribed_spread"],
        th["timing.oversubscribed_cpu_share"],
    )
    if found is None:
        return []
    c = timing.counters
    threads = fewer_threads(c.threads, c.cpus, c.others_cores)
    advice = "The latency reflects the machine's load. Measure on an idle machine"
    if threads is None:
        advice += "."
    else:
        advice += (
            f", or run as many threads as there were free cores ({threads} here) and pin "
            "that number in CI so runs compare."
        )
    return [
        Finding(
            rule="cpu-oversubscribed",
            severity="warning",
            title=f"Latency measured on oversubscribed CPUs: {c.threads} torch thread(s), "
            f"{found['cores_short']:.1f} core(s) short",
            evidence=evidence(
                median=f"{timing.latency_ms.median:.3f} ms",
                fastest_sample=f"{timing.latency_ms.min:.3f} ms",
                **found,
            ),
            recommendation=advice,
            snippet=f"perfreport model.py --threads {threads}   # torch.set_num_threads({threads})"
            if threads is not None
            else "",
        )
    ]


def fewer_threads(threads: int, cpus: int, others_cores: float | None) -> int | None:
    """The thread count that fits the free cores, when it is below the one used."""
    free = max(1, math.floor(cpus - (others_cores or 0.0)))
    return min(free, threads) if min(free, threads) < threads else None


@rule(
    "allocator-page-faults",
    "Page faults from the memory allocator cost a share of the latency",
    reads=["timing"],
    thresholds={
        "timing.faults_per_call": contention.FAULTS_PER_CALL,
        "timing.fault_system_share": contention.SYSTEM_SHARE,
        "timing.allocator_speedup": 1.05,
    },
    doc="glibc's malloc gives large freed blocks back to the kernel, so each forward can "
    "fault its activations back in page by page (kernel time, on every thread). Flagged "
    "when the timed calls took at least `timing.faults_per_call` minor page faults per "
    "forward with kernel CPU time (getrusage, all threads) of at least "
    "`timing.fault_system_share` of the wall time. The timing is then repeated in fresh model processes with "
    "glibc's thresholds fixed high (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, "
    "`MALLOC_TOP_PAD_`) and with jemalloc and tcmalloc preloaded where installed; a "
    "variant at least `timing.allocator_speedup` times faster is recommended with its "
    "environment lines (a warning), otherwise the measurement is reported as info.",
)
def allocator_page_faults(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    timing = report.timing
    c = timing.counters
    if c is None:
        return []
    reason = contention.page_fault_reason(
        c, th["timing.faults_per_call"], th["timing.fault_system_share"]
    )
    if not reason:
        return []
    experiment = timing.allocator_experiment
    facts = evidence(
        faults_per_forward=f"{c.minor_faults_per_call:,.0f}",
        kernel_cpu_time_per_wall_time=percent(c.system_per_wall),
        kernel_share_of_cpu_time=percent(c.system_share),
        allocator=timing.allocator or None,
        **(_experiment_evidence(experiment) if experiment is not None else {}),
    )
    best = _best_variant(experiment, th["timing.allocator_speedup"]) if experiment else None
    if best is None:
        measured = "no allocator variant was faster" if experiment else "not measured"
        return [
            Finding(
                rule="allocator-page-faults",
                severity="info",
                title=f"{c.minor_faults_per_call:,.0f} page faults per forward; "
                f"allocator experiment: {measured}",
                evidence=facts,
                recommendation="Page faults cost kernel time on every forward; reusing "
                "buffers (preallocated outputs, fewer temporaries) avoids them.",
            )
        ]
    return [
        Finding(
            rule="allocator-page-faults",
            severity="warning",
            title=f"Page faults cost latency: {best.name} ran {best.speedup:.2f}x faster "
            "in a fresh process",
            evidence=facts,
            recommendation=f"{reason}. Set these variables for the serving process (they "
            "keep freed memory in the process instead of returning it to the system, so its "
            "resident size can stay higher), and time it again:",
            snippet=env_lines(best.env),
        )
    ]


def _best_variant(experiment: AllocatorExperiment, min_speedup: float) -> AllocatorVariant | None:
    """The fastest variant, when it beat the baseline by at least ``min_speedup``."""
    timed = [v for v in experiment.variants if v.speedup is not None]
    best = max(timed, key=lambda v: v.speedup or 0.0, default=None)
    return best if best is not None and (best.speedup or 0.0) >= min_speedup else None


def _experiment_evidence(experiment: AllocatorExperiment) -> dict[str, str]:
    """One entry per process of the experiment: its median and speedup, or its error."""
    rows = {"fresh_process_baseline": _median(experiment.baseline)}
    for v in experiment.variants:
        text = _median(v)
        if v.speedup is not None:
            text += f", {v.speedup:.2f}x"
        rows[v.name] = text
    return rows


def _median(v: AllocatorVariant) -> str:
    if v.status != "ok" or v.median_ms is None:
        return f"failed: {v.error}"
    faults = (
        f", {v.minor_faults_per_call:,.0f} faults/forward"
        if v.minor_faults_per_call is not None
        else ""
    )
    noisy = f" (noisy: {v.noise_reason})" if v.noise_reason else ""
    return f"{v.median_ms:.3f} ms{faults}{noisy}"
