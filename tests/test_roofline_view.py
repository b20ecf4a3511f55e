"""The roofline section's view: the plot note, and the rows print and Markdown keep."""

from __future__ import annotations

from reporter.render.roofline_view import MD_OPS, plot_note, roofline_view
from reporter.render.templates import PRINT_ROWS
from reporter.report.roofline import (
    MachinePeaks,
    RooflineModel,
    RooflineModule,
    RooflineOp,
    RooflineSection,
)


def section(n: int) -> RooflineSection:
    machine = MachinePeaks(
        device_name="cpu", peak_flops=1e11, peak_bytes_per_s=1e10, call_floor_us=2.0
    )
    model = RooflineModel(
        flops=10**6,
        op_time_ms=1.0,
        latency_ms=None,
        achieved_flops=1e9,
        speed_of_light_ms=0.1,
        headroom=10.0,
        outside_ops_ms=None,
    )
    ops = [
        RooflineOp(name=f"aten::op{i}", flops=1000, bytes=100, time_us=10.0 + i, intensity=10.0)
        for i in range(n)
    ]
    modules = [RooflineModule(name=f"m{i}", time_us=float(i)) for i in range(n)]
    return RooflineSection(machine=machine, model=model, ops=ops, modules=modules)


def test_plot_note_names_the_unplotted_only_when_there_are_some() -> None:
    assert plot_note(3, 0).startswith("3 op groups plotted, sized by time. Blue")
    assert "; 2 with no FLOPs or no bytes" in plot_note(3, 2)


def test_print_keeps_the_first_rows_markdown_its_own_few() -> None:
    n = PRINT_ROWS + 4
    screen = roofline_view(section(n))
    printed = roofline_view(section(n), for_print=True)
    assert len(screen.ops) == n and len(screen.modules) == n and not screen.compact
    assert len(printed.ops) == PRINT_ROWS and len(printed.modules) == PRINT_ROWS
    assert printed.compact
    assert printed.ops == screen.ops[:PRINT_ROWS]
    assert screen.md_ops == screen.ops[:MD_OPS]
