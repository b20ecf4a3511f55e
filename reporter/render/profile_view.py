"""The profile section for its templates: the bar charts as SVG strings, and the rows each
table shows (print keeps the costliest; Markdown the first few)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.render.charts import hbar_chart
from reporter.render.rows import largest_in_order
from reporter.render.templates import PRINT_ROWS
from reporter.report.profile import (
    KernelTime,
    ModuleTime,
    OpTime,
    ProfileSection,
    TimingSection,
)

MODULE_BARS = 12  # modules charted, most self time first (the table lists them all)


@dataclass
class ProfileView:
    categories_svg: str  # host self time by kind of op
    kernel_categories_svg: str  # GPU kernel time by kind ("" without kernels)
    modules_svg: str  # self time of the busiest modules below the model ("" in print)


def profile_view(p: ProfileSection, *, for_print: bool = False) -> ProfileView:
    modules = modules_by_self(p)
    return ProfileView(
        categories_svg=hbar_chart(list(p.categories_us.items()), "us"),
        kernel_categories_svg=hbar_chart(list(p.kernel_categories_us.items()), "us")
        if p.kernel_categories_us
        else "",
        # print: the module table's Self column carries the same figures
        modules_svg=""
        if for_print or not modules
        else hbar_chart([(m.name, m.self_us) for m in modules[:MODULE_BARS]], "us"),
    )


def modules_by_self(p: ProfileSection) -> list[ModuleTime]:
    """The modules below the model, most self time first (equal times in the trace's order)."""
    return sorted((m for m in p.modules if m.depth != 0), key=lambda m: m.self_us, reverse=True)


@dataclass
class ProfileRows:
    overhead: float | None  # profiled step / timed latency, once both stages ran
    host_peak: int | None  # the profiler's host peak, where the model ran on another device
    trace_dir: str  # for the tensorboard command line
    by_self: list[ModuleTime] = field(default_factory=list)  # modules below the model
    # the tables; print keeps the PRINT_ROWS // 2 with the most time (modules in model
    # order, each with its indent in pixels: its depth in the module tree)
    modules: list[tuple[ModuleTime, int]] = field(default_factory=list)
    modules_left_out: int = 0
    ops: list[OpTime] = field(default_factory=list)
    ops_left_out: int = 0
    kernels: list[KernelTime] = field(default_factory=list)
    kernels_left_out: int = 0


def profile_rows(
    p: ProfileSection, timing: TimingSection | None, *, for_print: bool = False
) -> ProfileRows:
    rows = PRINT_ROWS // 2 if for_print else None
    # print: the layer table lists modules too, so few rows are kept
    modules = largest_in_order(p.modules, lambda m: m.total_us, rows)
    ops = p.top_ops[:rows]
    kernels = p.kernels[:rows]
    return ProfileRows(
        overhead=timing.profiler_overhead if timing is not None else None,
        host_peak=p.cpu_peak_bytes if p.device != "cpu" else None,
        trace_dir=str(p.trace_files[0]).rsplit("/", 1)[0] if p.trace_files else "trace",
        by_self=modules_by_self(p),
        modules=[(m, 10 + 14 * m.depth) for m in modules],
        modules_left_out=len(p.modules) - len(modules),
        ops=ops,
        ops_left_out=len(p.top_ops) - len(ops),
        kernels=kernels,
        kernels_left_out=len(p.kernels) - len(kernels),
    )
