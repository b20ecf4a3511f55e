"""The trace section's text, decided and formatted for its templates.

Which rows, columns and notes exist, and every cell's text (with the data-v sort value
where the HTML table sorts), are chosen here by small pure functions of the TraceSection;
templates/sections/trace.{html,md}.j2 only loop over the result. Text is plain: the
templates escape it, except the few HTML labels built as Markup (their only variable part,
a number, is escaped by Markup.format).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from reporter.render.cells import Num, num, time_cell
from reporter.render.roofline_view import intensity_text
from reporter.render.rows import most_kept_note, shown
from reporter.render.templates import PRINT_ROWS
from reporter.render.trace_roofline_page import (
    TraceRooflinePage,
    calls_text,
    peaks_text,
    trace_roofline_page,
)
from reporter.render.trace_view import TraceView
from reporter.report.trace import (
    GpuFigures,
    KernelRow,
    OverallFigures,
    RankFigures,
    RankSpread,
    StepFigures,
    TraceSection,
)
from reporter.units import exact, flops, nbytes, percent, us

MD_TOP_ROWS = 5  # kernels or CPU ops in the Markdown summary
MD_ROOFLINE_OPS = 10


@dataclass(frozen=True)
class KvRow:
    """A row of a two-column (label, value) table. An optional row is written inline, on
    the line of the row before it, as the page has always been laid out."""

    label: str
    value: str
    optional: bool = False

    @property
    def lead(self) -> str:
        return "" if self.optional else "    "

    @property
    def end(self) -> str:
        return "" if self.optional else "\n"


@dataclass(frozen=True)
class RankRow:
    rank: str  # "1*" when numbered by file order
    file: str
    steps: str
    step_time: Num
    compute: Num
    communication: Num
    idle: Num
    utilisation: str
    straggler: str  # "yes" or ""


@dataclass(frozen=True)
class KernelLine:
    name: str
    short_name: str
    count: str
    total: Num
    mean: Num
    share: Num
    launched_by: str
    kind: str  # "communication", "Tensor Core", "fp32 matmul/conv" or ""
    sm_cells: tuple[str, ...]  # blocks/SM, SM efficiency, occupancy; () when not shown


@dataclass(frozen=True)
class StepGpuCells:
    busy: str
    utilisation: str
    host_wait: str
    kernels: str
    syncs: str


@dataclass(frozen=True)
class StepRow:
    name: str
    duration: str
    window: str
    gpu: StepGpuCells | None  # None on a CPU-only rank: no GPU columns
    dataloader: str


@dataclass(frozen=True)
class RankPage:
    """One rank's tables."""

    rank: int
    roofline: TraceRooflinePage | None  # what trace_roofline.html.j2 shows
    summary: str  # "Rank N details" with several ranks (a <details> around them), else ""
    suffix: str  # " · rank N" after headings with several ranks, else ""
    steps_header_gpu: tuple[str, ...]
    steps: list[StepRow]
    steps_note: str
    launches: list[KvRow]
    copies: list[tuple[str, str, str, str, str]]  # direction, memory, count, bytes, time
    host_comm_caption: str
    host_collectives: list[tuple[str, str, str]]  # name, calls, time
    syncs: list[tuple[str, str, str, str, str, str]]  # kind, op, context, count, in steps, time
    syncs_note: str
    value_reads: str  # item()/nonzero calls holding no sync, "" when not shown
    on_rank: str  # " on rank N" with several ranks
    in_profile_note: str  # print: the profile section shows this CPU trace's tables
    cpu_ops_chart: list[str]  # the SVG, once, when the ops are charted
    cpu_ops: list[tuple[str, str, Num, Num, str]]  # name, calls, self, total, module
    cpu_modules: list[tuple[str, str, Num]]  # module, ops, self
    memory: list[tuple[str, str, str, str, str]]  # device, allocated, reserved, capacity, share


@dataclass(frozen=True)
class MdRoofline:
    """The first roofline in the Markdown summary."""

    head: str  # "Roofline[, rank N]: N calls of ops with FLOPs (…; time: …)"
    device: str  # the machine whose peaks bound the ops, "" without one
    peaks: str
    notes: list[str]
    header_tail: str  # the columns only a machine gives
    rule_tail: str
    ops: list[tuple[str, str, str, str, str, str, str]]  # name, shapes, calls, time, I, rate, tail
    every_rank_note: bool


@dataclass
class TracePage:
    files_text: str  # "N trace file(s)"
    sub_parts: list[str]  # ranks, device
    analysed: str
    notes: list[str]
    all_ranks: str  # " (all ranks)" with several ranks
    multi: bool
    headline: list[KvRow]
    gpu_charts: TraceView | None  # the GPU charts, when drawn and the trace has a GPU
    short_gap_us: str
    rank_rows: list[RankRow]  # with several ranks
    spread_note: str
    kernels_sm_header: tuple[str, ...]
    kernels: list[KernelLine]
    kernels_note: str
    ranks: list[RankPage]
    charts: TraceView | None
    md_sub_parts: list[str]  # Markdown escapes them
    md_headline: list[KvRow]
    md_kernels: list[tuple[str, str, str, str, str]]  # short name, calls, total, share, by
    md_cpu_ops: list[tuple[str, str, str, str]]  # name, calls, self, module
    md_roofline: list[MdRoofline] = field(default_factory=list)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def windows_differ(o: OverallFigures) -> bool:
    """tb-profiler's utilisation is shown beside ours when its window differs by >0.1%."""
    return o.tb_utilisation is not None and abs(o.tb_window_us - o.window_us) > 0.001 * o.window_us


def tb_label(o: OverallFigures) -> Markup:
    return Markup("GPU utilisation, tb-profiler's window ({})").format(us(o.tb_window_us))


def headline(o: OverallFigures) -> list[KvRow]:
    rows = [
        KvRow("Traced window", us(o.window_us)),
        KvRow("Steps (ProfilerStep)", str(o.step_count) if o.step_count else "none"),
    ]
    if o.step_time_us is not None:
        rows.append(KvRow("Step time (mean)", us(o.step_time_us), optional=True))
    if o.has_gpu:
        rows.append(KvRow("GPU utilisation", percent(o.utilisation)))
        if windows_differ(o):
            rows.append(KvRow(tb_label(o), percent(o.tb_utilisation), optional=True))
        idle_us = o.breakdown.idle_us if o.breakdown else None
        rows += [
            KvRow("GPU busy (kernel union)", us(o.gpu_busy_us)),
            KvRow("GPU idle", us(idle_us)),
            KvRow("Kernels", f"{exact(o.kernel_count)} · {us(o.kernel_sum_us)}"),
            KvRow("Tensor Core kernel share", percent(o.tensor_core_share)),
            KvRow("fp32 matmul/conv off Tensor Cores", percent(o.not_tensor_core_share)),
        ]
        if o.communication_us:
            value = f"{us(o.communication_us)} ({us(o.communication_exposed_us)})"
            rows.append(KvRow("Communication (exposed)", value, optional=True))
        rows += [
            KvRow("Blocking host-device syncs", str(o.blocking_syncs)),
            KvRow("Pageable copies", str(o.memcpy_pageable_count)),
        ]
    rows += _shared_tail(o, optional=True)
    return rows


def _shared_tail(o: OverallFigures, *, optional: bool) -> list[KvRow]:
    """Data loading and host-side collectives: rows for GPU and CPU traces alike."""
    rows = []
    if o.dataloader_share:
        value = f"{percent(o.dataloader_share)} / {percent(o.dataloader_exposed_share)}"
        rows.append(KvRow("Data loading (wall clock / with the GPU idle)", value, optional))
    if o.host_comm_us:
        value = f"{us(o.host_comm_us)} ({percent(o.host_comm_share)})"
        rows.append(KvRow("Host-side collectives (gloo)", value, optional))
    return rows


def straggler_text(spread: RankSpread | None) -> str:
    """ "rank 1 (+12.0% step time), …" for the Markdown headline, "" without stragglers."""
    if spread is None:
        return ""
    return ", ".join(
        f"rank {s.rank} (+{percent(s.excess)} {s.metric.replace('_us', '').replace('_', ' ')})"
        for s in spread.stragglers
    )


def md_headline(section: TraceSection) -> list[KvRow]:
    o = section.overall
    rows = [
        KvRow("Traced window", us(o.window_us)),
        KvRow("Steps", str(o.step_count) if o.step_count else "none"),
    ]
    if o.step_time_us is not None:
        rows.append(KvRow("Step time (mean)", us(o.step_time_us)))
    if o.has_gpu:
        rows.append(KvRow("GPU utilisation", percent(o.utilisation)))
        if windows_differ(o):
            label = f"GPU utilisation, tb-profiler's window ({us(o.tb_window_us)})"
            rows.append(KvRow(label, percent(o.tb_utilisation)))
        i = o.idle
        idle = [i.host_wait_us, i.short_gap_us, i.other_us] if i else [None] * 3
        rows += [
            KvRow("GPU idle: host wait / short gaps / other", " / ".join(us(x) for x in idle)),
            KvRow("Kernels", f"{exact(o.kernel_count)} ({us(o.kernel_sum_us)})"),
            KvRow("Tensor Core share of kernel time", percent(o.tensor_core_share)),
        ]
        if o.communication_us:
            value = f"{us(o.communication_us)} ({us(o.communication_exposed_us)})"
            rows.append(KvRow("Communication (exposed)", value))
        rows.append(KvRow("Blocking host-device syncs", str(o.blocking_syncs)))
    rows += _shared_tail(o, optional=False)
    stragglers = straggler_text(section.spread)
    if stragglers:
        rows.append(KvRow("Stragglers", stragglers))
    return rows


def straggler_ranks(spread: RankSpread | None) -> set[int]:
    return {s.rank for s in spread.stragglers} if spread else set()


def rank_rows(section: TraceSection) -> list[RankRow]:
    """The ranks table, shown only when there are several."""
    if len(section.ranks) < 2:
        return []
    stragglers = straggler_ranks(section.spread)
    return [
        RankRow(
            rank=f"{r.rank}{'' if r.rank_known else '*'}",
            file=r.file,
            steps=str(r.step_count),
            step_time=num(r.step_time_us),
            compute=num(r.compute_per_step_us),
            communication=num(r.communication_per_step_us),
            idle=num(r.idle_per_step_us),
            utilisation=percent(r.gpu.utilisation) if r.gpu else "–",
            straggler="yes" if r.rank in stragglers else "",
        )
        for r in section.ranks
    ]


def spread_note(section: TraceSection) -> str:
    sp = section.spread
    if sp is None or len(section.ranks) < 2:
        return ""
    text = f"Spread across ranks: step time {percent(sp.step_time_spread)}"
    if sp.compute_spread is not None:
        text += f", compute per step {percent(sp.compute_spread)}"
    text += (
        " (max/min − 1). A straggler exceeds the median of the other ranks by more than "
        f"{percent(sp.threshold)}."
    )
    if any(not r.rank_known for r in section.ranks):
        text += " * rank numbered by file order (no distributedInfo)."
    return text


def kernel_kind(k: KernelRow) -> str:
    if k.category == "communication":
        return "communication"
    if k.tensor_core:
        return "Tensor Core"
    return "fp32 matmul/conv" if k.matmul_or_conv else ""


def shows_sm_columns(kernels: list[KernelRow], for_print: bool) -> bool:
    """Blocks/SM, SM efficiency and occupancy: when a kernel has them, and not in print."""
    return not for_print and any(k.sm_efficiency is not None for k in kernels)


def kernel_line(k: KernelRow, sm_columns: bool) -> KernelLine:
    blocks = f"{k.blocks_per_sm:.2f}" if k.blocks_per_sm is not None else "–"
    return KernelLine(
        name=k.name,
        short_name=k.short_name,
        count=str(k.count),
        total=time_cell(k.total_us),
        mean=time_cell(k.mean_us),
        share=Num(percent(k.share), str(k.share)),
        launched_by=k.launched_by,
        kind=kernel_kind(k),
        sm_cells=(blocks, percent(k.sm_efficiency), percent(k.occupancy)) if sm_columns else (),
    )


def cut_note(rows: list, for_print: bool, what: str) -> str:
    """The note under a table print cut, "" when nothing was cut."""
    if not (for_print and len(rows) > PRINT_ROWS):
        return ""
    return f"The first {PRINT_ROWS} of {len(rows)} {what}; all are in report.html and report.json."


def step_row(s: StepFigures, gpu: bool) -> StepRow:
    dataloader = us(s.dataloader_us)
    if gpu and s.dataloader_us:
        dataloader += f" ({us(s.dataloader_exposed_us)} idle)"
    cells = StepGpuCells(
        busy=us(s.gpu_busy_us),
        utilisation=percent(s.utilisation),
        host_wait=us(s.idle.host_wait_us) if s.idle else "–",
        kernels=str(s.kernels),
        syncs=str(s.syncs),
    )
    return StepRow(s.name, us(s.duration_us), us(s.window_us), cells if gpu else None, dataloader)


STEP_GPU_HEADER = ("GPU busy", "Utilisation", "Idle: host wait", "Kernels", "Syncs")


def launch_rows(g: GpuFigures) -> list[KvRow]:
    la, st = g.launch, g.streams
    rows = [
        KvRow(
            f"Kernels shorter than {la.tiny_kernel_threshold_us} µs",
            f"{la.tiny_kernels} ({percent(la.tiny_share)})",
        ),
        KvRow(
            "Kernels shorter than their launch call",
            f"{la.shorter_than_launch} ({percent(la.shorter_than_launch_share)})",
        ),
        KvRow("Median kernel", us(la.median_kernel_us)),
        KvRow(
            "Launch → start delay (median / p90)",
            f"{us(la.launch_delay_median_us)} / {us(la.launch_delay_p90_us)}",
        ),
        KvRow("Time in CUDA runtime calls", us(la.runtime_us)),
        KvRow(
            f"Runtime calls over {la.slow_call_threshold_us} µs",
            f"{la.slow_calls} ({us(la.slow_call_us)})",
        ),
        KvRow(
            "Streams running at once",
            f"{us(st.concurrent_us)} ({percent(st.concurrent_share)} of active)",
        ),
    ]
    if g.communication.kernels:
        rows.append(
            KvRow(
                "Communication overlapped with compute",
                percent(g.communication.overlap_share),
                optional=True,
            )
        )
    if la.launch_to_start_median_us is not None:
        value = " / ".join(
            us(x)
            for x in (
                la.launch_to_start_median_us,
                la.launch_to_start_mean_us,
                la.launch_to_start_max_us,
            )
        )
        rows.append(KvRow("HTA launch delay (median / mean / max)", value, optional=True))
    rows += [
        KvRow(
            f"Queue length, stream {s.stream} (mean / max)",
            f"{s.queue_mean:.1f} / {s.queue_max}",
            optional=True,
        )
        for s in st.streams
        if s.queue_max is not None
    ]
    if g.sm_efficiency is not None:
        rows.append(
            KvRow("Est. SM efficiency (tb-profiler)", percent(g.sm_efficiency), optional=True)
        )
    if g.occupancy is not None:
        rows.append(
            KvRow("Est. achieved occupancy (tb-profiler)", percent(g.occupancy), optional=True)
        )
    if g.tb_utilisation is not None:
        label = Markup("Utilisation over tb-profiler's window ({})").format(us(g.tb_window_us))
        rows.append(KvRow(label, percent(g.tb_utilisation), optional=True))
    return rows


def left_to_profile(r: RankFigures, for_print: bool, profile_shown: bool) -> bool:
    """Print, CPU-only trace of a full report: the profile section already shows its ops,
    modules and peak memory."""
    return for_print and profile_shown and not r.gpu


def in_profile_note(r: RankFigures, for_print: bool, profile_shown: bool) -> str:
    """The note standing in for the tables left to the profile section."""
    if not (left_to_profile(r, for_print, profile_shown) and (r.cpu_ops or r.memory)):
        return ""
    memory = " and the memory peak" if r.memory else ""
    return (
        f"CPU op and module times{memory} of this trace are in the profile section; "
        "every row is in report.html."
    )


def rank_page(
    r: RankFigures,
    index: int,
    *,
    multi: bool,
    for_print: bool,
    profile_shown: bool,
    charts: TraceView | None,
) -> RankPage:
    g = r.gpu
    note = in_profile_note(r, for_print, profile_shown)
    in_profile = left_to_profile(r, for_print, profile_shown)
    cpu_ops = [] if note else r.cpu_ops
    return RankPage(
        rank=r.rank,
        roofline=trace_roofline_page(
            r.roofline,
            r.rank,
            multi=multi,
            for_print=for_print,
            chart_svg=charts.roofline_svgs[index] if charts else "",
        )
        if r.roofline
        else None,
        summary=f"Rank {r.rank} details" if multi else "",
        suffix=f" · rank {r.rank}" if multi else "",
        steps_header_gpu=STEP_GPU_HEADER if g else (),
        steps=[step_row(s, g is not None) for s in shown(r.steps, for_print)],
        steps_note=cut_note(r.steps, for_print, "steps"),
        launches=launch_rows(g) if g else [],
        copies=[
            (
                c.direction,
                f"{c.source} → {c.destination}",
                str(c.count),
                nbytes(c.bytes),
                us(c.total_us),
            )
            for c in (g.memcpy.rows if g else [])
        ],
        host_comm_caption=f"{us(r.host_comm_us)} ({percent(r.host_comm_share)} of the window)",
        host_collectives=[(c.name, str(c.count), us(c.total_us)) for c in r.host_collectives],
        syncs=[
            (s.kind, s.op, s.context, str(s.count), str(s.in_steps), us(s.total_us))
            for s in shown(r.syncs.sites, for_print)
        ],
        syncs_note=cut_note(r.syncs.sites, for_print, "call sites"),
        value_reads=str(r.syncs.value_reads_without_sync)
        if g and r.syncs.value_reads_without_sync
        else "",
        on_rank=f" on rank {r.rank}" if multi else "",
        in_profile_note=note,
        cpu_ops_chart=[charts.cpu_ops_svgs[index]] if charts and not g else [],
        cpu_ops=[
            (
                op.name,
                str(op.count),
                time_cell(op.self_us),
                time_cell(op.total_us),
                op.module,
            )
            for op in shown(cpu_ops, for_print)
        ],
        cpu_modules=[
            (m.module, str(m.ops), time_cell(m.self_us)) for m in shown(r.cpu_modules, for_print)
        ],
        memory=[]
        if in_profile
        else [
            (
                m.device,
                nbytes(m.peak_allocated_bytes),
                nbytes(m.peak_reserved_bytes),
                nbytes(m.capacity_bytes),
                percent(m.share),
            )
            for m in r.memory
        ],
    )


def md_roofline(section: TraceSection) -> list[MdRoofline]:
    """The first rank with a roofline, in the Markdown summary (every rank's is in HTML)."""
    first = next((r for r in section.ranks if r.roofline), None)
    if first is None or first.roofline is None:
        return []
    rl, mp = first.roofline, first.roofline.machine
    multi = len(section.ranks) > 1
    where = f", rank {first.rank}" if multi else ""
    head = f"Roofline{where}: {calls_text(rl)}"
    peaks = peaks_text(mp) if mp else ""
    ops = [
        (
            o.name,
            o.shapes,
            str(o.calls),
            us(o.time_us),
            intensity_text(o.intensity),
            f"{flops(o.achieved_flops)}/s",
            f" {us(o.bound_us)} | {o.bound} |" if mp else "",
        )
        for o in rl.ops[:MD_ROOFLINE_OPS]
    ]
    return [
        MdRoofline(
            head=head,
            device=mp.device_name if mp else "",
            peaks=peaks,
            notes=rl.notes,
            header_tail=" Roofline time | Bound |" if mp else "",
            rule_tail=" ---: | --- |" if mp else "",
            ops=ops,
            every_rank_note=multi,
        )
    ]


def sub_parts(section: TraceSection) -> list[str]:
    """What follows the file count under the heading: ranks, then the first rank's GPU."""
    parts = [f"{len(section.ranks)} ranks"] if len(section.ranks) > 1 else []
    first = section.ranks[0] if section.ranks else None
    if first and first.device_name:
        cc = first.compute_capability
        parts.append(first.device_name + (f" (compute capability {cc})" if cc else ""))
    return parts


def md_sub_parts(section: TraceSection) -> list[str]:
    """The Markdown heading's: ranks, then the first rank's GPU (no compute capability)."""
    parts = [f"{len(section.ranks)} ranks"] if len(section.ranks) > 1 else []
    first = section.ranks[0] if section.ranks else None
    return parts + ([first.device_name] if first and first.device_name else [])


def trace_page(
    section: TraceSection,
    *,
    for_print: bool = False,
    profile_shown: bool = False,
    charts: TraceView | None = None,
) -> TracePage:
    """profile_shown: the report has a profile section (print then leaves a CPU-only
    trace's op tables to it); charts: the SVG drawn by trace_view, HTML only."""
    o = section.overall
    multi = len(section.ranks) > 1
    sm_columns = shows_sm_columns(section.top_kernels, for_print)
    first = section.ranks[0] if section.ranks else None
    return TracePage(
        files_text=plural(len(section.files), "trace file"),
        sub_parts=[f"· {p}" for p in sub_parts(section)],
        analysed=f"{section.analysis_seconds:.2f}",
        notes=section.notes,
        all_ranks=" (all ranks)" if multi else "",
        multi=multi,
        headline=headline(o),
        gpu_charts=charts if o.has_gpu else None,
        short_gap_us=str(o.idle.short_gap_threshold_us) if o.idle else "",
        rank_rows=rank_rows(section),
        spread_note=spread_note(section),
        kernels_sm_header=("Blocks/SM", "SM eff.", "Occupancy") if sm_columns else (),
        kernels=[kernel_line(k, sm_columns) for k in shown(section.top_kernels, for_print)],
        kernels_note=most_kept_note(section.top_kernels, for_print, "kernels with the most time"),
        ranks=[
            rank_page(
                r, i, multi=multi, for_print=for_print, profile_shown=profile_shown, charts=charts
            )
            for i, r in enumerate(section.ranks)
        ],
        charts=charts,
        md_sub_parts=md_sub_parts(section),
        md_headline=md_headline(section),
        md_kernels=[
            (k.short_name, str(k.count), us(k.total_us), percent(k.share), k.launched_by)
            for k in section.top_kernels[:MD_TOP_ROWS]
        ],
        md_cpu_ops=[]
        if section.top_kernels or not first
        else [
            (op.name, str(op.count), us(op.self_us), op.module)
            for op in first.cpu_ops[:MD_TOP_ROWS]
        ],
        md_roofline=md_roofline(section),
    )
