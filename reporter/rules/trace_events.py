"""Rules on the trace files themselves (not on what the model did): unusable events."""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.rules.registry import evidence, rule
from reporter.rules.trace_evidence import rank_key, rank_suffix


@rule(
    "trace-bad-events",
    "Trace events left out for unusable timestamps or durations",
    reads=("trace",),
    doc="Events whose timestamp is NaN, infinite or not a number, or whose duration is "
    "negative, cannot be placed in time: they are left out of every figure. A trace where "
    "they are most of the timed events is refused instead (exit 2). Usually the file was "
    "edited or written by another tool.",
)
def bad_events(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    ranks = report.trace.ranks
    for r in ranks:
        if not r.bad_events:
            continue
        yield Finding(
            rule="trace-bad-events",
            severity="warning",
            title=f"{r.bad_events} trace events left out: unusable timestamps or durations"
            + rank_suffix(ranks, r),
            evidence=evidence(
                rank=rank_key(ranks, r),
                events=r.bad_events,
                of_events=r.events,
                names=[f"{n.name} ×{n.count}" for n in r.bad_event_names],
                file=r.file,
            ),
            recommendation=(
                "Check how the trace was written or edited: Kineto writes numeric "
                "microsecond timestamps and non-negative durations. The figures leave "
                "these events out."
            ),
            target=r.bad_event_names[0].name if r.bad_event_names else None,
        )
