"""Launch-bound: a step of many tiny ops, whose fixed cost per op (Python, dispatch, a
kernel launch) outweighs their work.

One judgement (`is_launch_bound`) on one measure (`LaunchMeasure`), read from either source:

- the model's profile (rule launch-bound): ops per step and their mean self time;
- a trace (rule gpu-launch-bound, per rank): the kernels under the tiny-kernel time, those
  shorter than the launch call that started them, and how long launched kernels waited
  to start (a deep queue hides the launch cost).

A figure a source does not measure is None and is not judged. The advice differs by
source (a CPU profile, a GPU profile, a GPU trace) and is built here too. The rules are
registered in compute.py and gpu.py among the rules reading the same section: the
registry's order is the order of findings of equal severity in the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reporter.report import Finding, Report
from reporter.report.profile import ProfileSection
from reporter.report.trace import LaunchFigures, RankFigures
from reporter.rules.margin import noise
from reporter.rules.registry import evidence
from reporter.rules.trace_evidence import gpu_ranks, ms, pct, rank_key, rank_suffix


@dataclass(frozen=True)
class LaunchMeasure:
    """How small a step's ops are against their fixed cost."""

    ops: int  # ops per step (profile) or kernels (trace)
    mean_op_us: float | None = None  # mean self time of one op (profile)
    tiny_share: float | None = None  # share of ops under the tiny-op time (trace)
    outpaced_share: float | None = None  # share of ops shorter than their launch call (trace)
    queue_us: float | None = None  # median wait from launch to start (trace)


@dataclass(frozen=True)
class LaunchLimits:
    """The thresholds of one source; those of figures it does not measure stay unused."""

    min_ops: float
    tiny_op_us: float = 0.0
    margin: float = 0.0  # relative: the mean op time must be below tiny_op_us by this much
    tiny_share: float = 1.0
    outpaced_share: float = 1.0
    max_queue_us: float = float("inf")


def is_launch_bound(m: LaunchMeasure, limits: LaunchLimits) -> bool:
    """Enough ops, tiny against their fixed cost by any measured figure, and no queue of
    work ahead of them to hide that cost."""
    if not m.ops or m.ops < limits.min_ops:
        return False
    # Noise only lengthens ops: a mean below the threshold by the margin is one for sure.
    tiny = (
        (m.mean_op_us is not None and m.mean_op_us < limits.tiny_op_us * (1 - limits.margin))
        or (m.tiny_share is not None and m.tiny_share >= limits.tiny_share)
        or (m.outpaced_share is not None and m.outpaced_share >= limits.outpaced_share)
    )
    hidden = m.queue_us is not None and m.queue_us > limits.max_queue_us
    return tiny and not hidden


# ---------------------------------------------------------------- the model's profile
def profile_measure(profile: ProfileSection, th: dict[str, float]) -> LaunchMeasure:
    """Ops per step and their mean self time; no mean when the profiled steps disagree
    too much (or are too few) for a time to be judged (see margin.py)."""
    ops = profile.ops_by_name
    calls = sum(o.calls for o in ops)
    steady = noise(profile, th).enough_steps
    mean = sum(o.self_us for o in ops) / calls if calls and steady else None
    return LaunchMeasure(ops=calls, mean_op_us=mean)


def profile_limits(profile: ProfileSection, th: dict[str, float]) -> LaunchLimits:
    return LaunchLimits(
        min_ops=th["compute.tiny_op_calls"],
        tiny_op_us=th["compute.tiny_op_us"],
        margin=noise(profile, th).margin,
    )


def profile_findings(report: Report, th: dict[str, float]) -> list[Finding]:
    """Rule launch-bound: the profile's ops, unless the roofline stage judged each op
    against one call's measured cost (rule overhead-bound)."""
    if report.roofline is not None:
        return []
    profile = report.profile
    m = profile_measure(profile, th)
    if not is_launch_bound(m, profile_limits(profile, th)):
        return []
    gpu = profile.device.startswith("cuda")
    return [
        Finding(
            rule="launch-bound",
            severity="warning",
            title=f"{m.ops:,} ops per step averaging {m.mean_op_us:.1f} µs each: overhead-bound",
            evidence=evidence(ops_per_step=f"{m.ops:,}", mean_op_time=f"{m.mean_op_us:.1f} µs"),
            recommendation="Use a larger batch, torch.compile"
            + (", or CUDA graphs (torch.compile(mode='reduce-overhead'))." if gpu else "."),
            snippet=compile_snippet(gpu),
        )
    ]


def compile_snippet(gpu: bool) -> str:
    """torch.compile for a model whose fixed cost per op dominates: with CUDA graphs on a
    GPU (mode='reduce-overhead'), plain on the CPU."""
    return (
        "model = torch.compile(model, mode='reduce-overhead')"
        if gpu
        else "model = torch.compile(model)"
    )


# ---------------------------------------------------------------- a trace, rank by rank
def trace_measure(launch: LaunchFigures) -> LaunchMeasure | None:
    """One rank's kernels against the tiny-kernel time and their launch calls; None when
    no launch was linked to its kernel (no queue to judge)."""
    if launch.launch_delay_median_us is None:
        return None
    return LaunchMeasure(
        ops=launch.kernels,
        tiny_share=launch.tiny_share,
        outpaced_share=launch.shorter_than_launch_share,
        queue_us=launch.launch_delay_median_us,
    )


def trace_limits(th: dict[str, float]) -> LaunchLimits:
    return LaunchLimits(
        min_ops=th["gpu.min_kernels"],
        tiny_share=th["gpu.tiny_kernel_share"],
        outpaced_share=th["gpu.shorter_than_launch_share"],
        max_queue_us=th["gpu.launch_bound_max_queue_us"],
    )


def trace_findings(report: Report, th: dict[str, float]) -> Iterator[Finding]:
    """Rule gpu-launch-bound: one finding per rank that is launch-bound."""
    limits = trace_limits(th)
    for r in gpu_ranks(report.trace):
        m = trace_measure(r.gpu.launch)
        if m is not None and is_launch_bound(m, limits):
            yield _trace_finding(report.trace.ranks, r)


def _trace_finding(ranks: list[RankFigures], r: RankFigures) -> Finding:
    lf = r.gpu.launch
    tiny = sorted(
        (k for k in r.top_kernels if k.mean_us < lf.tiny_kernel_threshold_us),
        key=lambda k: -k.count,
    )
    return Finding(
        rule="gpu-launch-bound",
        severity="warning",
        title=(
            f"Launch-bound: {100 * lf.tiny_share:.0f}% of {lf.kernels} kernels run under "
            f"{lf.tiny_kernel_threshold_us:.0f} µs" + rank_suffix(ranks, r)
        ),
        evidence=evidence(
            rank=rank_key(ranks, r),
            kernels=lf.kernels,
            tiny_kernels=lf.tiny_kernels,
            tiny_share=pct(lf.tiny_share),
            shorter_than_launch_call=lf.shorter_than_launch,
            shorter_than_launch_share=pct(lf.shorter_than_launch_share),
            median_kernel_us=round(lf.median_kernel_us or 0.0, 2),
            median_launch_delay_us=round(lf.launch_delay_median_us, 2),
            launch_call_ms=ms(lf.launch_call_us),
            kernels_per_ms=round(lf.kernels_per_ms, 2),
            frequent_tiny_kernels=[
                f"{k.short_name} ×{k.count} (from {k.launched_by or 'unknown op'})"
                for k in tiny[:5]
            ]
            or None,
        ),
        recommendation=(
            "Each kernel costs a few microseconds of CPU launch time; when kernels are "
            "this short the GPU waits for launches. Fuse elementwise ops with "
            "torch.compile, capture the step in a CUDA graph, use fused optimizers "
            "(foreach/fused=True), or raise the batch size so each kernel does more."
        ),
        snippet=(
            'model = torch.compile(model, mode="reduce-overhead")\n'
            "opt = torch.optim.AdamW(model.parameters(), fused=True)"
        ),
    )
