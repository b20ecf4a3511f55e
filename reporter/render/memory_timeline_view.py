"""Display-ready rows and the chart of a training step's memory timeline."""

from __future__ import annotations

from dataclasses import dataclass

from reporter.render import charts
from reporter.render import format as f
from reporter.render.rows import shown
from reporter.report.memory_timeline import MemoryTimeline

# The memory profiler's categories in the order they stack, with fixed colours.
COLOURS = {
    "parameter": "#2f5d9b",
    "optimizer_state": "#a3a13a",
    "gradient": "#7a5ea8",
    "input": "#6b7280",
    "activation": "#e08a2e",
    "autograd_detail": "#c55a9a",
    "temporary": "#b42318",
    "unknown": "#98a2b3",
}


@dataclass
class TimelineView:
    chart_svg: str
    peak: str  # one sentence
    at_peak: list[tuple[str, str, str]]  # (category, bytes, share)
    by_module: list[tuple[str, str]]
    largest: list[dict[str, str]]
    checks: list[dict[str, str]]


def label(category: str) -> str:
    return category.replace("_", " ")


def timeline_view(t: MemoryTimeline, *, for_print: bool = False) -> TimelineView:
    """for_print: the module table keeps its first PRINT_ROWS rows."""
    series = [
        (label(c), [s[i] for s in t.samples], COLOURS.get(c)) for i, c in enumerate(t.categories)
    ]
    chart = charts.stacked_area(
        t.times_us,
        series,
        marks=[(p.name, p.start_us, p.end_us) for p in t.phases],
        peak=(t.peak_time_us, t.peak_bytes),
        unit_scale=2**20,
        unit=" MiB",
        x_scale=1000,
    )
    total = t.peak_bytes or 1
    return TimelineView(
        chart_svg=chart,
        peak=f"Peak {f.nbytes(t.peak_bytes)} at {f.us(t.peak_time_us)}"
        + (f", in {t.peak_phase}" if t.peak_phase else ""),
        at_peak=[
            (label(c), f.nbytes(b), f.percent(b / total))
            for c, b in sorted(t.at_peak_by_category.items(), key=lambda kv: -kv[1])
        ],
        by_module=shown([(m, f.nbytes(b)) for m, b in t.activations_by_module.items()], for_print),
        largest=[
            {
                "what": x.op or "–",
                "module": x.module or "–",
                "category": label(x.category),
                "shape": " ".join(p for p in (x.shape, x.dtype) if p) or "–",
                "bytes": f.nbytes(x.bytes),
            }
            for x in t.largest_at_peak
        ],
        checks=[
            {
                "what": c.what,
                "timeline": f.nbytes(c.timeline_bytes),
                "expected": f.nbytes(c.expected_bytes),
                "agrees": "yes" if c.agrees else "no",
                "note": c.note,
            }
            for c in t.checks
        ],
    )
