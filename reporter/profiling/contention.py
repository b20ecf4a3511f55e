"""Decisions on the timing counters: oversubscribed CPUs, page faults worth an allocator
experiment, and when a measurement is too unsettled to trust. Pure functions of the
figures, so tests feed them constructed counters; the rules in reporter/rules/timing.py
call them with the configured thresholds, the timing stage with these defaults."""

from __future__ import annotations

from typing import Any

from reporter.profiling.stats import noise_reason
from reporter.report.profile import LatencyStats
from reporter.report.timing_counters import TimingCounters

# Oversubscribed: torch's threads were short of at least this many cores ...
OVERSUB_CORES = 0.5
# ... and it showed: the median is this many times the fastest sample, or each thread got
# at most this share of the wall time on a CPU (its parallel ops waited for the others).
OVERSUB_SPREAD = 1.5
OVERSUB_CPU_SHARE = 0.75
# Page faults worth an allocator experiment: this many per forward (256 KiB of pages
# touched for the first time), with kernel CPU time of at least this share of the wall
# time (a tenth of the latency, if one thread were faulting).
FAULTS_PER_CALL = 64
SYSTEM_SHARE = 0.10
FEW_SAMPLES = 5  # below this many samples an unsettled warm-up makes the figure a guess


def cores_short(c: TimingCounters) -> float:
    """How many of the cores torch's threads wanted were not free for them.

    Free cores are the process's CPUs less the CPU time other processes used on them
    (and steal); a cgroup quota that throttled the process takes its share of the threads.
    More threads than CPUs is a shortage on an idle machine too.
    """
    others = c.others_cores or 0.0
    free = c.cpus - others
    short = c.threads - free
    if c.throttled_share:
        short = max(short, c.threads * c.throttled_share)
    return max(0.0, short)


def oversubscription(
    c: TimingCounters,
    stats: LatencyStats,
    min_cores: float = OVERSUB_CORES,
    min_spread: float = OVERSUB_SPREAD,
    max_cpu_share: float = OVERSUB_CPU_SHARE,
) -> dict[str, Any] | None:
    """Evidence that the timed calls ran on oversubscribed CPUs, or None.

    Both a cause (cores short) and a symptom (a median far above the fastest sample, or
    threads that got too little CPU) are needed: load on the machine that left the
    figures alone is not reported, nor is a wide spread with the cores free.
    """
    short = cores_short(c)
    if short < min_cores:
        return None
    spread = stats.median / stats.min if stats.min > 0 else 0.0
    symptoms = []
    if spread >= min_spread:
        symptoms.append(f"median {spread:.1f}x the fastest sample")
    if c.cpu_per_thread <= max_cpu_share:
        symptoms.append(f"each thread ran {c.cpu_per_thread:.0%} of the wall time")
    if not symptoms:
        return None
    evidence: dict[str, Any] = {
        "torch_threads": c.threads,
        "cpus": c.cpus,
        "cores_short": round(short, 2),
        "symptoms": "; ".join(symptoms),
        "median_over_min": round(spread, 2),
        "cpu_per_thread": round(c.cpu_per_thread, 3),
        "involuntary_switches_per_s": round(c.involuntary_switches / c.wall_s, 1),
    }
    if c.others_cores is not None:
        evidence["other_processes_cores"] = round(c.others_cores, 2)
    if c.steal_share:
        evidence["steal_share"] = round(c.steal_share, 3)
    if c.throttled_share:
        evidence["cgroup_throttled_share"] = round(c.throttled_share, 3)
    if c.loadavg_1min is not None:
        evidence["loadavg_1min"] = c.loadavg_1min
    return evidence


def oversubscription_reason(evidence: dict[str, Any]) -> str:
    """One line for the noise reason: the cause, in the figures that show it."""
    threads, cpus = evidence["torch_threads"], evidence["cpus"]
    if "other_processes_cores" in evidence:
        cause = (
            f"other processes used {evidence['other_processes_cores']:.2f} of {cpus} CPU(s) "
            f"while torch ran {threads} thread(s)"
        )
    else:
        cause = f"torch ran {threads} thread(s) on {cpus} CPU(s)"
    return f"CPUs oversubscribed: {cause}; {evidence['symptoms']}"


def page_fault_reason(
    c: TimingCounters, min_faults: float = FAULTS_PER_CALL, min_share: float = SYSTEM_SHARE
) -> str:
    """Why page faults look like a real share of the latency; '' when they do not."""
    if c.minor_faults_per_call < min_faults or c.system_per_wall < min_share:
        return ""
    return (
        f"{c.minor_faults_per_call:,.0f} minor page faults per forward, and kernel CPU time "
        f"{c.system_per_wall:.0%} of the wall time while timing"
    )


def timing_noise(
    stats: LatencyStats,
    samples: int,
    warmup_stable: bool,
    counters: TimingCounters | None = None,
) -> str:
    """Why a latency figure should not be trusted to a few percent; '' when it can be."""
    spread = noise_reason(stats)
    reasons = [spread] if spread else []
    if not warmup_stable and samples < FEW_SAMPLES:
        reasons.append(
            f"only {samples} sample(s) and the warm-up never settled within 5%: the model "
            "may not have reached its steady state (raise --timing-seconds)"
        )
    over = oversubscription(counters, stats) if counters is not None else None
    if over:
        reasons.append(oversubscription_reason(over))
    return "; ".join(reasons)
