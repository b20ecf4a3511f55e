"""The summary section's layer table: forward FLOPs per row, and which rows print keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.render.templates import PRINT_ROWS
from reporter.report import Report


@dataclass
class SummaryView:
    flops_by: dict[str, int] = field(default_factory=dict)  # module name -> forward FLOPs
    keep: list[int] = field(default_factory=list)  # print: row indices shown; empty: all


def print_rows_kept(costs: list[tuple[int, int]], rows: int = PRINT_ROWS) -> list[int]:
    """The indices of the `rows` costliest (forward FLOPs, then parameters; the earlier row
    on a tie), when there are more than that; [] keeps every row."""
    if len(costs) <= rows:
        return []
    ranked = sorted(([f, p, -i] for i, (f, p) in enumerate(costs)), reverse=True)
    return [-c[2] for c in ranked[:rows]]


def summary_view(report: Report, *, for_print: bool = False) -> SummaryView:
    flops_by = {m.name: m.forward for m in report.flops.by_module} if report.flops else {}
    layers = report.summary.layers if report.summary is not None else []
    # print: a 2,000-row table takes WeasyPrint ~10 s and nobody reads it on paper
    keep = (
        print_rows_kept([(flops_by.get(r.name, 0), r.params) for r in layers]) if for_print else []
    )
    return SummaryView(flops_by=flops_by, keep=keep)
