"""Rules on the `distributed` section: a straggling rank, gradients not all-reduced, a failed rank.

The trace section's straggler rule reads GPU compute; on CPU (gloo) traces the host-side
figures of this section say which rank computes longest while the others wait for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.rules.registry import evidence, rule
from reporter.rules.trace_evidence import ms, ms_by_rank
from reporter.trace.ranks import find_stragglers

_VERB = {"timeout": "timed out", "failed": "failed"}


@rule(
    "rank-straggler",
    "One rank computes noticeably longer per step than the others (host-side view)",
    reads=("distributed",),
    thresholds={"distributed.straggler_excess": 0.25},
    doc="In synchronous data-parallel training every rank waits for the slowest at each "
    "all-reduce, so step times come out equal and the slow rank hides in the others' "
    "communication time. Compute per step (step time less the time inside collectives) shows "
    "which rank holds the others up. The default threshold (25%) is wider than the GPU rule's: "
    "host-side step times on a shared CPU vary more from step to step.",
)
def rank_straggler(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    section = report.distributed
    compute = {c.rank: c.compute_per_step_us for c in section.comm if c.compute_per_step_us}
    if len(compute) < 2:
        return
    limit = th["distributed.straggler_excess"]
    comm = {c.rank: c.communication_per_step_us for c in section.comm}
    for s in find_stragglers(compute, limit, "compute_per_step_us"):
        yield Finding(
            rule="rank-straggler",
            severity="warning",
            title=(
                f"Rank {s.rank} is a straggler: {100 * s.excess:.0f}% more compute per step "
                "than the other ranks, which wait for it in communication"
            ),
            evidence=evidence(
                rank=s.rank,
                compute_per_step_ms=ms(s.value_us),
                others_median_ms=ms(s.others_median_us),
                threshold=f"{100 * limit:.0f}%",
                communication_per_step_ms=ms_by_rank(comm),
            ),
            recommendation=(
                "Find why this rank does more work per step: uneven data shards or sequence "
                "lengths, extra work on one rank (logging, checkpointing, evaluation), a slower "
                "or busier machine, or fewer CPU threads on that rank."
            ),
            snippet=(
                "# time each rank's own work, outside the collectives\n"
                "t0 = time.perf_counter(); loss = model(batch).sum()\n"
                "print(dist.get_rank(), time.perf_counter() - t0)"
            ),
            target=f"rank {s.rank}",
        )


@rule(
    "grads-not-allreduced",
    "The ranks' gradients were not averaged by the data-parallel wrapper",
    reads=("distributed",),
    doc="After backward, DDP (and FSDP) must leave every rank with the mean of the ranks' "
    "gradients. perfreport recomputes that mean by hand and compares; a mismatch means the "
    "ranks train different models.",
)
def grads_not_allreduced(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    grads = report.distributed.grads
    if grads is None or grads.allreduced:
        return
    yield Finding(
        rule="grads-not-allreduced",
        severity="critical",
        title="Gradients differ from the mean of the ranks' local gradients after backward",
        evidence=evidence(
            max_relative_difference=grads.max_rel_diff,
            reduced_grad_norms=grads.reduced_norms,
            local_grad_norms=grads.local_norms,
        ),
        recommendation="Check that backward runs through the wrapped model and that no "
        "parameter is excluded from synchronisation (no_sync, find_unused_parameters).",
    )


@rule(
    "rank-failed",
    "A rank of the multi-process run crashed, failed or hung",
    reads=("distributed",),
    doc="A failed rank stops the whole job: the others block in their next collective until "
    "torchrun or the timeout ends them. The report keeps what the other ranks measured.",
)
def rank_failed(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    section = report.distributed
    if section.status == "ok":
        return
    yield Finding(
        rule="rank-failed",
        severity="critical",
        title=f"The multi-process run {_VERB.get(section.status, section.status)}: "
        f"{section.failure}",
        evidence=evidence(
            failed_ranks=section.failed_ranks or None,
            states={f"rank {r.rank}": f"{r.state} at step {r.step}" for r in section.ranks},
        ),
        recommendation="Read the failed rank's error and the torchrun output in the report; "
        "rerun with fewer processes to see whether the failure depends on the world size.",
        target=", ".join(f"rank {r}" for r in section.failed_ranks) or None,
    )
