"""The summary section's layer table: each row's forward FLOPs and share, and which rows
print keeps; and the largest layers the Markdown lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.render.templates import PRINT_ROWS
from reporter.report import Report
from reporter.report.static import LayerRow

MD_LAYERS = 10  # the largest layers Markdown lists


@dataclass
class LayerTableRow:
    layer: LayerRow
    indent_em: float  # the name's indent: its depth in the module tree
    flops: int  # forward FLOPs; 0 where none were counted
    share: float | None  # of the forward total; None where there is nothing to divide


@dataclass
class SummaryView:
    rows: list[LayerTableRow] = field(default_factory=list)  # print: the costliest only
    left_out: int = 0  # rows print leaves out
    # print drops the Trainable column when nothing is frozen (the totals above say so)
    show_trainable: bool = True
    largest: list[LayerRow] = field(default_factory=list)  # leaf layers, most parameters first


def print_rows_kept(costs: list[tuple[int, int]], rows: int = PRINT_ROWS) -> list[int]:
    """The indices of the `rows` costliest (forward FLOPs, then parameters; the earlier row
    on a tie), when there are more than that; [] keeps every row."""
    if len(costs) <= rows:
        return []
    ranked = sorted(([f, p, -i] for i, (f, p) in enumerate(costs)), reverse=True)
    return [-c[2] for c in ranked[:rows]]


def summary_view(report: Report, *, for_print: bool = False) -> SummaryView:
    flops_by = {m.name: m.forward for m in report.flops.by_module} if report.flops else {}
    total = report.flops.forward_total if report.flops else 0
    layers = report.summary.layers if report.summary is not None else []
    # print: a 2,000-row table takes WeasyPrint ~10 s and nobody reads it on paper
    keep = (
        print_rows_kept([(flops_by.get(r.name, 0), r.params) for r in layers]) if for_print else []
    )
    rows = []
    for i, r in enumerate(layers):
        if keep and i not in keep:
            continue
        fl = flops_by.get(r.name) or 0
        share = fl / total if fl and total else None
        rows.append(LayerTableRow(r, 0.4 + r.depth * 0.9, fl, share))
    params = report.model.parameters
    leaves = [r for r in layers if r.is_leaf and r.params]
    return SummaryView(
        rows=rows,
        left_out=len(layers) - len(rows),
        show_trainable=not for_print or not params or bool(params.frozen),
        largest=sorted(leaves, key=lambda r: r.params, reverse=True)[:MD_LAYERS],
    )
