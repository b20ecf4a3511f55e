"""The trace section's view model: which rows, columns and notes exist, and their text."""

from __future__ import annotations

from markupsafe import escape

from reporter.render.templates import PRINT_ROWS
from reporter.render.trace_page import kernel_kind, trace_page
from reporter.report.trace import (
    GpuFigures,
    IdleSplit,
    KernelRow,
    MemoryPeak,
    OpRow,
    OverallFigures,
    RankFigures,
    RankSpread,
    StepFigures,
    Straggler,
    StreamFigures,
    StreamRow,
    SyncFigures,
    TraceSection,
)


def labels(rows: list) -> list[str]:
    return [str(r.label) for r in rows]


def gpu_section(**overall: object) -> TraceSection:
    o = OverallFigures(has_gpu=True, window_us=10_000.0, idle=IdleSplit(), **overall)
    return TraceSection(files=["a.json"], ranks=[RankFigures(rank=0, gpu=GpuFigures())], overall=o)


def test_tb_profiler_window_row_only_when_the_windows_differ_by_over_a_thousandth() -> None:
    tb = "GPU utilisation, tb-profiler's window (12.00 ms)"
    differ = trace_page(gpu_section(tb_utilisation=0.4, tb_window_us=12_000.0))
    assert tb in labels(differ.headline) and tb in labels(differ.md_headline)
    row = next(r for r in differ.headline if str(r.label) == tb)
    assert row.value == "40.0%" and row.optional  # written inline, as the page always was
    assert escape(row.label) == row.label  # Markup: the template inserts it as it is
    for window in (10_000.0, 10_010.0):  # equal, or 0.1% apart: not shown
        same = trace_page(gpu_section(tb_utilisation=0.4, tb_window_us=window))
        assert not any("tb-profiler" in label for label in labels(same.headline))
    unknown = trace_page(gpu_section(tb_utilisation=None, tb_window_us=12_000.0))
    assert not any("tb-profiler" in label for label in labels(unknown.headline))


def test_headline_rows_of_a_gpu_and_a_cpu_trace() -> None:
    gpu = trace_page(gpu_section(step_count=3, step_time_us=2500.0, communication_us=0.0))
    assert labels(gpu.headline)[:4] == [
        "Traced window",
        "Steps (ProfilerStep)",
        "Step time (mean)",
        "GPU utilisation",
    ]
    assert "Communication (exposed)" not in labels(gpu.headline)
    assert gpu.headline[1].value == "3" and gpu.headline[2].value == "2.50 ms"
    assert [r.lead for r in gpu.headline[:3]] == ["    ", "    ", ""]  # optional: inline
    cpu = trace_page(
        TraceSection(
            ranks=[RankFigures(rank=0)],
            overall=OverallFigures(window_us=5.0, dataloader_share=0.25),
        )
    )
    assert labels(cpu.headline) == [
        "Traced window",
        "Steps (ProfilerStep)",
        "Data loading (wall clock / with the GPU idle)",
    ]
    assert cpu.headline[1].value == "none" and cpu.headline[2].value == "25.0% / –"
    assert cpu.gpu_charts is None and cpu.ranks[0].launches == []


def two_ranks(**spread: object) -> TraceSection:
    return TraceSection(
        files=["r0.json", "r1.json"],
        ranks=[
            RankFigures(rank=0, file="r0.json", step_time_us=None),
            RankFigures(rank=1, file="r1.json", rank_known=False, step_time_us=1200.0),
        ],
        spread=RankSpread(**spread),
    )


def test_straggler_flag_and_rank_rows() -> None:
    slow = Straggler(rank=1, metric="compute_per_step_us", excess=0.25)
    page = trace_page(two_ranks(stragglers=[slow], step_time_spread=0.3))
    assert [(r.rank, r.straggler) for r in page.rank_rows] == [("0", ""), ("1*", "yes")]
    assert page.rank_rows[0].step_time.text == "–" and page.rank_rows[0].step_time.v == "0"
    assert page.rank_rows[1].step_time.v == "1200.0"
    assert ("Stragglers", "rank 1 (+25.0% compute per step)") in [
        (r.label, r.value) for r in page.md_headline
    ]
    assert page.spread_note.startswith("Spread across ranks: step time 30.0% (max/min − 1).")
    assert page.spread_note.endswith("* rank numbered by file order (no distributedInfo).")
    assert page.all_ranks == " (all ranks)"
    assert [r.summary for r in page.ranks] == ["Rank 0 details", "Rank 1 details"]
    calm = trace_page(two_ranks())
    assert [r.straggler for r in calm.rank_rows] == ["", ""]
    assert "Stragglers" not in labels(calm.md_headline)
    one = trace_page(TraceSection(ranks=[RankFigures(rank=0)]))
    assert one.rank_rows == [] and one.ranks[0].summary == "" and one.ranks[0].suffix == ""


def test_kernel_kind_text() -> None:
    assert kernel_kind(KernelRow("n", "n", category="communication", tensor_core=True)) == (
        "communication"
    )
    assert kernel_kind(KernelRow("n", "n", tensor_core=True, matmul_or_conv=True)) == "Tensor Core"
    assert kernel_kind(KernelRow("n", "n", matmul_or_conv=True)) == "fp32 matmul/conv"
    assert kernel_kind(KernelRow("n", "n")) == ""


def kernels(n: int, **fields: object) -> list[KernelRow]:
    return [KernelRow(f"k{i}", f"k{i}", total_us=float(n - i), **fields) for i in range(n)]


def test_sm_columns_when_a_kernel_has_them_and_not_in_print() -> None:
    rows = kernels(2)
    rows[1].sm_efficiency, rows[1].blocks_per_sm, rows[1].occupancy = 0.5, 1.234, 0.25
    section = TraceSection(top_kernels=rows)
    page = trace_page(section)
    assert page.kernels_sm_header == ("Blocks/SM", "SM eff.", "Occupancy")
    assert [k.sm_cells for k in page.kernels] == [("–", "–", "–"), ("1.23", "50.0%", "25.0%")]
    printed = trace_page(section, for_print=True)
    assert printed.kernels_sm_header == () and all(k.sm_cells == () for k in printed.kernels)
    assert trace_page(TraceSection(top_kernels=kernels(2))).kernels_sm_header == ()


def test_print_cuts_long_tables_and_says_so() -> None:
    many = PRINT_ROWS + 5
    rank = RankFigures(
        rank=0,
        steps=[StepFigures(name=f"ProfilerStep#{i}") for i in range(many)],
        syncs=SyncFigures(sites=[]),
    )
    section = TraceSection(ranks=[rank], top_kernels=kernels(many))
    html = trace_page(section)
    assert len(html.kernels) == many and html.kernels_note == ""
    assert len(html.ranks[0].steps) == many and html.ranks[0].steps_note == ""
    printed = trace_page(section, for_print=True)
    assert len(printed.kernels) == PRINT_ROWS
    assert printed.kernels_note == (
        f"The {PRINT_ROWS} kernels with the most time; all {many} are in report.html and "
        "report.json."
    )
    assert len(printed.ranks[0].steps) == PRINT_ROWS
    assert printed.ranks[0].steps_note == (
        f"The first {PRINT_ROWS} of {many} steps; all are in report.html and report.json."
    )
    exact = trace_page(TraceSection(top_kernels=kernels(PRINT_ROWS)), for_print=True)
    assert exact.kernels_note == ""  # nothing was cut
    assert [k[0] for k in trace_page(section).md_kernels] == [f"k{i}" for i in range(5)]


def test_step_columns_follow_the_rank_having_a_gpu() -> None:
    step = StepFigures(name="ProfilerStep#1", dataloader_us=500.0, dataloader_exposed_us=200.0)
    gpu = trace_page(TraceSection(ranks=[RankFigures(rank=0, gpu=GpuFigures(), steps=[step])]))
    row = gpu.ranks[0].steps[0]
    assert gpu.ranks[0].steps_header_gpu[0] == "GPU busy"
    assert row.gpu is not None and row.gpu.host_wait == "–"  # the step has no idle split
    assert row.dataloader == "500.0 µs (200.0 µs idle)"
    cpu = trace_page(TraceSection(ranks=[RankFigures(rank=0, steps=[step])]))
    assert cpu.ranks[0].steps_header_gpu == () and cpu.ranks[0].steps[0].gpu is None
    assert cpu.ranks[0].steps[0].dataloader == "500.0 µs"


def test_launch_rows_list_only_the_streams_with_a_queue() -> None:
    streams = StreamFigures(
        streams=[StreamRow(stream=7, queue_mean=3.25, queue_max=18), StreamRow(stream=9)]
    )
    page = trace_page(TraceSection(ranks=[RankFigures(rank=0, gpu=GpuFigures(streams=streams))]))
    queues = [(r.label, r.value) for r in page.ranks[0].launches if "Queue" in r.label]
    assert queues == [("Queue length, stream 7 (mean / max)", "3.2 / 18")]
    assert not any("tb-profiler" in label for label in labels(page.ranks[0].launches))


def test_print_leaves_a_cpu_trace_op_tables_to_the_profile_section() -> None:
    rank = RankFigures(
        rank=0, cpu_ops=[OpRow(name="aten::mm", self_us=5.0)], memory=[MemoryPeak(device="cpu")]
    )
    section = TraceSection(ranks=[rank])
    printed = trace_page(section, for_print=True, profile_shown=True).ranks[0]
    assert printed.in_profile_note.startswith("CPU op and module times and the memory peak")
    assert printed.cpu_ops == [] and printed.memory == []
    page = trace_page(section, profile_shown=True).ranks[0]
    assert page.in_profile_note == "" and page.cpu_ops[0][0] == "aten::mm"
    assert page.memory and page.cpu_ops_chart == []  # no charts given
    alone = trace_page(section, for_print=True).ranks[0]  # a trace report: no profile section
    assert alone.in_profile_note == "" and alone.memory


def test_value_reads_note_only_on_a_gpu_rank() -> None:
    syncs = SyncFigures(value_reads_without_sync=4)
    gpu = trace_page(TraceSection(ranks=[RankFigures(rank=0, gpu=GpuFigures(), syncs=syncs)]))
    assert gpu.ranks[0].value_reads == "4"
    cpu = trace_page(TraceSection(ranks=[RankFigures(rank=0, syncs=syncs)]))
    assert cpu.ranks[0].value_reads == ""
