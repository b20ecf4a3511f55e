"""One rank's trace roofline, decided and formatted for templates/trace_roofline.html.j2.

Whether the machine's columns and the model's figures exist, the print cut and every
cell's text are chosen here; the template only loops. Text is plain (the template
escapes it) except the chart, SVG drawn by trace_view.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.render.cells import Num, time_cell
from reporter.render.roofline_view import intensity_text
from reporter.render.rows import shown
from reporter.report.roofline import MachinePeaks, RooflineModel, RooflineOp
from reporter.report.trace import TraceRoofline
from reporter.units import exact, flops, percent, us


@dataclass(frozen=True)
class BoundCells:
    """The columns only a machine's ceilings give."""

    time: Num
    efficiency: str
    bound: str


@dataclass(frozen=True)
class TraceRooflineRow:
    name: str
    shapes: str
    calls: str
    time: Num
    intensity: str
    achieved: Num
    bound: BoundCells | None  # None without a machine


@dataclass(frozen=True)
class TraceRooflinePage:
    heading: str  # "Roofline", with " · rank N" when there are several ranks
    lead: str  # what was placed, and against which peaks
    model: tuple[tuple[str, str], ...]  # (label, value); () without a machine and model
    regimes: tuple[tuple[str, str], ...]  # ("Time memory-bound", time), … with the model
    chart_svg: str  # pre-escaped SVG; "" when not drawn (Markdown, no ceilings)
    table_class: str
    machine_columns: bool  # roofline time, efficiency and bound: with a machine only
    ops: tuple[TraceRooflineRow, ...]
    ops_note: str  # "" unless the analysis kept only the ops with the most time
    notes: tuple[str, ...]
    method: str


def peaks_text(mp: MachinePeaks) -> str:
    """ "312.00 TFLOP/s float16, 2039 GB/s": the ceilings, as the Markdown summary shows them."""
    return f"{flops(mp.peak_flops)}/s {mp.dtype}, {mp.peak_bytes_per_s / 1e9:.0f} GB/s"


def calls_text(rl: TraceRoofline) -> str:
    """ "120 calls of ops with FLOPs (…, …; time: …)": what the roofline placed."""
    return (
        f"{exact(rl.calls)} calls of ops with FLOPs ({flops(rl.flops)}, {us(rl.time_us)}; "
        f"time: {rl.time_source})"
    )


def lead_text(rl: TraceRoofline) -> str:
    text = calls_text(rl)
    mp = rl.machine
    if mp:
        text += (
            f", against the published peaks of {mp.device_name}: {peaks_text(mp)}, "
            f"one launch {mp.call_floor_us:.2f} µs"
        )
    return text + "."


def model_rows(m: RooflineModel) -> tuple[tuple[str, str], ...]:
    """The figures of every op together; the model stores milliseconds, the page shows µs."""
    headroom = "–" if m.headroom is None else f"{m.headroom:.1f}×"
    return (
        ("Achieved (FLOPs / kernel time)", f"{flops(m.achieved_flops)}/s"),
        ("Speed of light", us(m.speed_of_light_ms * 1000)),
        ("Headroom (kernel time / speed of light)", headroom),
    )


def regime_rows(m: RooflineModel) -> tuple[tuple[str, str], ...]:
    return tuple((f"Time {regime}-bound", us(ms * 1000)) for regime, ms in m.regime_ms.items())


def op_row(o: RooflineOp, machine: bool) -> TraceRooflineRow:
    bound = BoundCells(time_cell(o.bound_us), percent(o.efficiency), o.bound) if machine else None
    return TraceRooflineRow(
        name=o.name,
        shapes=o.shapes,
        calls=str(o.calls),
        time=time_cell(o.time_us),
        intensity=intensity_text(o.intensity),
        achieved=Num(f"{flops(o.achieved_flops)}/s", str(o.achieved_flops)),
        bound=bound,
    )


def kept_note(rl: TraceRoofline) -> str:
    """The analysis keeps the op groups with the most time; say so when it dropped some."""
    if rl.ops_total <= len(rl.ops):
        return ""
    return f"The {len(rl.ops)} op groups with the most time of {rl.ops_total}."


def trace_roofline_page(
    rl: TraceRoofline, rank: int, *, multi: bool, for_print: bool, chart_svg: str = ""
) -> TraceRooflinePage:
    """chart_svg: the rank's roofline drawn by trace_view (HTML), shown beside the model."""
    mp = rl.machine
    model = rl.model if mp else None  # the model's figures mean nothing without ceilings
    method = rl.method + (f". Ceilings: {mp.method}" if mp else "") + "."
    return TraceRooflinePage(
        heading="Roofline" + (f" · rank {rank}" if multi else ""),
        lead=lead_text(rl),
        model=model_rows(model) if model else (),
        regimes=regime_rows(model) if model else (),
        chart_svg=chart_svg if model else "",
        table_class="sortable fixed" if for_print else "sortable",
        machine_columns=mp is not None,
        ops=tuple(op_row(o, mp is not None) for o in shown(rl.ops, for_print)),
        ops_note=kept_note(rl),
        notes=tuple(rl.notes),
        method=method,
    )
