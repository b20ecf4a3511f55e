"""The distributed section's chart, as an SVG string its template inserts (times in ms)."""

from __future__ import annotations

from reporter.render import charts
from reporter.report.distributed import DistributedSection


def rank_time_svg(section: DistributedSection) -> str:
    """Host-side compute and communication per step, one bar per rank that has a step time
    ("" when none has)."""
    rows = [
        (
            f"rank {c.rank}",
            [
                ("compute", c.compute_per_step_us / 1000),
                ("communication", c.communication_per_step_us / 1000),
            ],
        )
        for c in section.comm
        if c.compute_per_step_us is not None
    ]
    return charts.stacked_bars(
        rows, unit=" ms", scale="max", title="Time per step, per rank (host side)"
    )
