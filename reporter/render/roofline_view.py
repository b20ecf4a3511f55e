"""Display-ready rows and the chart of the roofline section; its templates only loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.render import charts
from reporter.render import format as f
from reporter.render.rows import shown
from reporter.report.roofline import MachinePeaks, RooflineOp, RooflineSection

TOP_ROWS = 25
MD_OPS = 8


@dataclass
class RooflineView:
    chart_svg: str
    plot_note: str  # how many ops the chart shows, and why the others are not on it
    machine: list[tuple[str, str, str]]  # (what, value, how)
    model: list[tuple[str, str]]
    regimes: list[tuple[str, str, str]]  # (regime, time, share)
    ops: list[dict[str, str]] = field(default_factory=list)  # furthest below bound, by time lost
    modules: list[dict[str, str]] = field(default_factory=list)
    chains: list[dict[str, str]] = field(default_factory=list)
    md_ops: list[dict[str, str]] = field(default_factory=list)  # the first of ops
    compact: bool = False  # print: the op table's narrow layout (fewer columns)


def flop_rate(x: float | None) -> str:
    return "–" if x is None else f"{f.flops(x)}/s"


def byte_rate(x: float | None) -> str:
    return "–" if x is None else f"{x / 1e9:,.1f} GB/s"


def intensity_text(x: float | None) -> str:
    """FLOPs per byte, "–" when no bytes move."""
    return "–" if x is None else f"{x:.3g}"


def roofline_points(ops: list[RooflineOp], total_us: float) -> list[tuple]:
    """(label, FLOPs per byte, FLOP/s, share of the time, regime) of each op, for the chart."""
    total = total_us or 1.0
    return [
        (f"{o.name} {o.shapes}", o.intensity or 0.0, o.achieved_flops, o.time_us / total, o.bound)
        for o in ops
    ]


def roofline_svg(ops: list[RooflineOp], machine: MachinePeaks, total_us: float) -> str:
    """The roofline chart of these ops under the machine's ceilings (model run or trace)."""
    return charts.roofline_chart(
        roofline_points(ops, total_us),
        peak_flops=machine.peak_flops,
        peak_bytes_per_s=machine.peak_bytes_per_s,
    )


def roofline_view(section: RooflineSection, *, for_print: bool = False) -> RooflineView:
    """for_print: the PDF's page keeps the first PRINT_ROWS ops and modules."""
    total_us = sum(o.time_us for o in section.ops) or 1.0
    points = roofline_points(section.ops, total_us)
    chart = roofline_svg(section.ops, section.machine, total_us)
    plotted = sum(1 for _, x, y, _, _ in points if x > 0 and y > 0)
    ops = [_op_row(o, total_us) for o in _furthest_below(section.ops)]
    modules = _module_rows(section)
    return RooflineView(
        chart_svg=chart,
        plot_note=plot_note(plotted, len(points) - plotted),
        machine=_machine_rows(section),
        model=_model_rows(section),
        regimes=_regime_rows(section),
        ops=shown(ops, for_print),
        modules=shown(modules, for_print),
        chains=[
            {
                "module": ch.module or "(model)",
                "ops": " → ".join(ch.ops),
                "time": f.us(ch.time_us),
                "fused": f.us(ch.fused_bound_us),
            }
            for ch in section.chains[:10]
        ],
        md_ops=ops[:MD_OPS],
        compact=for_print,
    )


def plot_note(plotted: int, unplotted: int) -> str:
    """unplotted: ops with no FLOPs or no bytes (a log axis has no zero)."""
    text = f"{plotted} op groups plotted, sized by time"
    if unplotted:
        text += (
            f"; {unplotted} with no FLOPs or no bytes (data movement, views) are in the tables only"
        )
    return text + ". Blue compute-bound, orange memory-bound, red overhead-bound."


def _module_rows(section: RooflineSection) -> list[dict[str, str]]:
    return [
        {
            "name": mod.name or "(model)",
            "type": mod.type,
            "flops": f.flops(mod.flops),
            "time": f.us(mod.time_us),
            "bound": f.us(mod.bound_us),
            "efficiency": f.percent(mod.efficiency),
            "regime": max(mod.regime_us, key=mod.regime_us.get) if mod.regime_us else "–",
        }
        for mod in sorted(section.modules, key=lambda r: -r.time_us)[:TOP_ROWS]
    ]


def _furthest_below(ops: list[RooflineOp]) -> list[RooflineOp]:
    """The ops that lose the most time against their roofline."""
    return sorted(ops, key=lambda o: o.bound_us - o.time_us)[:TOP_ROWS]


def _op_row(o: RooflineOp, total_us: float) -> dict[str, str]:
    return {
        "name": o.name,
        "shapes": o.shapes,
        "module": o.module or "(model)",
        "calls": str(o.calls),
        "time": f.us(o.time_us),
        "share": f.percent(o.time_us / total_us),
        "bound_time": f.us(o.bound_us),
        "lost": f.us(max(o.time_us - o.bound_us, 0.0)),
        "intensity": intensity_text(o.intensity),
        "achieved": flop_rate(o.achieved_flops) if o.flops else byte_rate(o.achieved_bytes_per_s),
        "efficiency": f.percent(o.efficiency),
        "bound": o.bound,
    }


def _machine_rows(section: RooflineSection) -> list[tuple[str, str, str]]:
    m = section.machine
    rows = [("Device", m.device_name, f"measured {m.measured_on}; {m.refresh}")]
    for dtype, peak in m.measured_flops.items():
        rows.append(
            (f"Matrix products, {dtype}", flop_rate(peak.value), f"measured: {peak.method}")
        )
    for dtype, peak in m.spec_flops.items():
        rows.append((f"Matrix products, {dtype}", flop_rate(peak.value), peak.method))
    if m.measured_bytes_per_s is not None:
        rows.append(
            (
                "Memory bandwidth",
                byte_rate(m.measured_bytes_per_s.value),
                f"measured: {m.measured_bytes_per_s.method}",
            )
        )
    if m.spec_bytes_per_s is not None:
        rows.append(
            ("Memory bandwidth", byte_rate(m.spec_bytes_per_s.value), m.spec_bytes_per_s.method)
        )
    rows.append(
        (
            "One op call",
            f"{m.call_floor_us:.2f} µs",
            "median of a one-element add, timed as the ops are",
        )
    )
    rows.append(
        (
            "Ridge point",
            f"{m.peak_flops / m.peak_bytes_per_s:.3g} FLOP/byte",
            f"{m.dtype} peak / bandwidth: ops below it are memory-bound",
        )
    )
    return rows


def _model_rows(section: RooflineSection) -> list[tuple[str, str]]:
    mod = section.model
    measured = "latency" if mod.latency_ms is not None else "op time"
    rows = [
        ("Forward FLOPs", f.flops(mod.flops)),
        ("Sum of op times", f.ms(mod.op_time_ms)),
        ("Latency (timing stage)", f.ms(mod.latency_ms)),
        (f"Achieved (FLOPs / {measured})", flop_rate(mod.achieved_flops)),
        ("Speed of light", f.ms(mod.speed_of_light_ms)),
        (
            f"Headroom ({measured} / speed of light)",
            "–" if mod.headroom is None else f"{mod.headroom:,.1f}×",
        ),
    ]
    if mod.outside_ops_ms is not None:
        rows.append(("Between ops (latency − op time)", f.ms(mod.outside_ops_ms)))
    if mod.mfu is not None:
        rows.append(("MFU (training step)", f.percent(mod.mfu)))
    return rows


def _regime_rows(section: RooflineSection) -> list[tuple[str, str, str]]:
    total = sum(section.model.regime_ms.values()) or 1.0
    return [(k, f.ms(v), f.percent(v / total)) for k, v in section.model.regime_ms.items()]
