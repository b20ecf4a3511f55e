"""The trace section's charts, as SVG strings its template inserts (times in ms)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.render import charts
from reporter.render.roofline_view import roofline_svg
from reporter.report.trace import Breakdown, IdleSplit, RankFigures, TraceSection

CPU_OP_BARS = 10  # ops charted per rank, by self time (the table lists them all)
IDLE_FILL = "#c9ced8"


@dataclass
class TraceView:
    gpu_time_svg: str = ""  # GPU time by kind: one bar, or one per rank
    idle_svg: str = ""  # why the GPU was idle, per rank
    cpu_ops_svgs: list[str] = field(default_factory=list)  # per rank, as in section.ranks
    roofline_svgs: list[str] = field(default_factory=list)  # per rank, "" without ceilings


def _ms(us: float) -> float:
    return us / 1000


def breakdown_items(b: Breakdown) -> list[tuple]:
    """Each instant once, in the breakdown's priority order, idle last and grey."""
    return [
        ("compute", _ms(b.compute_us)),
        ("communication", _ms(b.communication_us)),
        ("memcpy", _ms(b.memcpy_us)),
        ("memset", _ms(b.memset_us)),
        ("idle", _ms(b.idle_us), IDLE_FILL),
    ]


def idle_items(i: IdleSplit) -> list[tuple]:
    return [
        ("host wait", _ms(i.host_wait_us), "#b42318"),
        ("short gaps", _ms(i.short_gap_us), "#e08a2e"),
        ("other waits", _ms(i.other_us), "#6b7280"),
    ]


def cpu_ops_svg(rank: RankFigures) -> str:
    """The top ops by self time of a CPU-only rank ("" for a GPU rank: kernels say more)."""
    if rank.gpu:
        return ""
    items = [(op.name, _ms(op.self_us)) for op in rank.cpu_ops[:CPU_OP_BARS]]
    return charts.bar_chart(items, unit=" ms", title="Self time of the top ops")


def roofline_svg_of(rank: RankFigures) -> str:
    """A rank's ops on the published ceilings of its GPU ("" when it has none)."""
    rl = rank.roofline
    if rl is None or rl.machine is None or rl.model is None:
        return ""
    return roofline_svg(rl.ops, rl.machine, rl.time_us)


def trace_view(section: TraceSection) -> TraceView:
    view = TraceView(
        cpu_ops_svgs=[cpu_ops_svg(r) for r in section.ranks],
        roofline_svgs=[roofline_svg_of(r) for r in section.ranks],
    )
    overall = section.overall
    if not overall.has_gpu:
        return view
    gpus = [(f"rank {r.rank}", r.gpu) for r in section.ranks if r.gpu]
    if len(section.ranks) > 1:
        rows = [(name, breakdown_items(gpu.breakdown)) for name, gpu in gpus]
        view.gpu_time_svg = charts.stacked_bars(
            rows, unit=" ms", scale="max", title="GPU time by kind, per rank"
        )
    elif overall.breakdown is not None:
        view.gpu_time_svg = charts.stacked_bar(
            breakdown_items(overall.breakdown), unit=" ms", title="GPU time by kind"
        )
    view.idle_svg = charts.stacked_bars(
        [(name, idle_items(gpu.idle)) for name, gpu in gpus],
        unit=" ms",
        scale="max",
        title="Idle time per rank",
    )
    return view
