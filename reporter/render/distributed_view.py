"""The distributed section for its templates: the chart as an SVG string (times in ms), and
each rank's row with its communication figures."""

from __future__ import annotations

from reporter.render import charts
from reporter.report.distributed import DistributedSection, RankComm, RankRun


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


def rank_rows(section: DistributedSection) -> list[tuple[RankRun, RankComm | None]]:
    """Each rank with its trace's figures (None: the rank wrote no trace that was read)."""
    comm = {}
    for c in reversed(section.comm):  # the first entry of a rank wins
        comm[c.rank] = c
    return [(r, comm.get(r.rank)) for r in section.ranks]
