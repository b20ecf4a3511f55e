"""The trace roofline's page: which columns and figures exist, the print cut, cell text."""

from __future__ import annotations

from reporter.render.templates import PRINT_ROWS
from reporter.render.trace_roofline_page import trace_roofline_page
from reporter.report.roofline import MachinePeaks, RooflineModel, RooflineOp
from reporter.report.trace import TraceRoofline

MACHINE = MachinePeaks(
    device_name="NVIDIA A100",
    peak_flops=19.5e12,
    peak_bytes_per_s=1.555e12,
    call_floor_us=4.0,
    method="data sheet",
)
MODEL = RooflineModel(
    flops=10**9,
    op_time_ms=2.0,
    latency_ms=None,
    achieved_flops=5e11,
    speed_of_light_ms=0.25,
    headroom=8.0,
    outside_ops_ms=None,
    regime_ms={"memory": 0.2, "compute": 0.05},
)


def ops(n: int) -> list[RooflineOp]:
    return [
        RooflineOp(name=f"aten::mm{i}", calls=2, time_us=100.0 - i, bound_us=10.0, intensity=None)
        for i in range(n)
    ]


def test_without_a_machine_no_bound_columns_model_or_chart() -> None:
    rl = TraceRoofline(ops=ops(2), ops_total=2, model=MODEL, method="Kineto")
    page = trace_roofline_page(rl, 0, multi=False, for_print=False, chart_svg="<svg/>")
    assert not page.machine_columns
    assert all(o.bound is None for o in page.ops)
    assert page.model == () and page.regimes == () and page.chart_svg == ""
    assert page.heading == "Roofline"
    assert page.method == "Kineto."
    assert page.ops[0].intensity == "–"


def test_with_a_machine_the_model_in_microseconds_and_bound_cells() -> None:
    rl = TraceRoofline(machine=MACHINE, model=MODEL, ops=ops(1), ops_total=1, method="Kineto")
    page = trace_roofline_page(rl, 3, multi=True, for_print=False, chart_svg="<svg/>")
    assert page.heading == "Roofline · rank 3"
    assert dict(page.model)["Speed of light"] == "250.0 µs"
    assert dict(page.model)["Headroom (kernel time / speed of light)"] == "8.0×"
    assert page.regimes == (("Time memory-bound", "200.0 µs"), ("Time compute-bound", "50.0 µs"))
    assert page.chart_svg == "<svg/>"
    bound = page.ops[0].bound
    assert bound is not None and bound.time.text == "10.0 µs" and bound.time.v == "10.0"
    assert ", against the published peaks of NVIDIA A100: " in page.lead
    assert page.lead.endswith(", 1555 GB/s, one launch 4.00 µs.")
    assert page.method == "Kineto. Ceilings: data sheet."


def test_print_keeps_the_first_rows_and_the_kept_note_counts_the_analysis_cut() -> None:
    rl = TraceRoofline(ops=ops(PRINT_ROWS + 5), ops_total=PRINT_ROWS + 9)
    printed = trace_roofline_page(rl, 0, multi=False, for_print=True)
    assert len(printed.ops) == PRINT_ROWS and printed.table_class == "sortable fixed"
    screen = trace_roofline_page(rl, 0, multi=False, for_print=False)
    assert len(screen.ops) == PRINT_ROWS + 5 and screen.table_class == "sortable"
    assert (
        screen.ops_note == f"The {PRINT_ROWS + 5} op groups with the most time of {PRINT_ROWS + 9}."
    )
    whole = TraceRoofline(ops=ops(3), ops_total=3)
    assert trace_roofline_page(whole, 0, multi=False, for_print=False).ops_note == ""
