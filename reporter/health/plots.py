"""Inline SVG plots for the health section: log-scale bars, line charts, histograms.

reporter.render.charts draws linear bars only; gradient norms span orders of magnitude and
loss curves need lines, so these live here. No torch import: rendering a report.json must
not need it. Every label is escaped with charts.esc (names are user data), and the frame, font
and palette are the charts module's, so templates insert the result with ``|safe``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reporter.render.charts import CHAR_PX, PALETTE, esc, svg_document

MAX_BARS = 80
MAX_LOG_CHARTS = 8

Point = tuple[float, float | None]


def sci(value: float) -> str:
    return f"{value:.2e}" if value and (abs(value) >= 1e4 or abs(value) < 1e-2) else f"{value:.3g}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def log_bars(items: Sequence[tuple[str, float | None]], *, title: str, width: int = 640) -> str:
    """Horizontal bars on a log10 axis; a zero, missing or non-finite value draws no bar."""
    rows = list(items)[:MAX_BARS]
    if not rows:
        return ""
    labels = [label if len(label) <= 40 else label[:39] + "…" for label, _ in rows]
    positive = [v for _, v in rows if _finite(v) and v > 0]
    lo = math.floor(math.log10(min(positive))) if positive else 0
    hi = math.ceil(math.log10(max(positive))) if positive else 1
    hi = max(hi, lo + 1)
    label_w = min(width * 0.4, 16 + CHAR_PX * max(len(s) for s in labels))
    bar_w = width - label_w - 80
    bar_h, gap, top = 14, 4, 34
    height = top + len(rows) * (bar_h + gap) + 8
    body = [f'<text x="0" y="14" font-weight="600">{esc(title)}</text>']
    for decade in range(lo, hi + 1):  # one gridline per power of ten
        x = label_w + bar_w * (decade - lo) / (hi - lo)
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 4}" stroke="#dfe3ea"/>'
            f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" fill="#5b6475" '
            f'font-size="10">1e{decade}</text>'
        )
    for i, ((label, value), shown) in enumerate(zip(rows, labels, strict=True)):
        y = top + i * (bar_h + gap)
        text_y = y + bar_h * 0.8
        ok = _finite(value) and value > 0
        w = bar_w * (math.log10(value) - lo) / (hi - lo) if ok else 0.0
        text = sci(value) if _finite(value) else "NaN/inf" if value is not None else "–"
        body.append(
            f"<g><title>{esc(label)}: {esc(text)}</title>"
            f'<text x="{label_w - 6:.1f}" y="{text_y:.1f}" text-anchor="end">{esc(shown)}</text>'
            f'<rect x="{label_w:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_h}" '
            f'fill="{PALETTE[0] if ok else PALETTE[3]}" rx="2"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{text_y:.1f}">{esc(text)}</text></g>'
        )
    return svg_document(width, height, title, body)


def lines(
    series: Sequence[tuple[str, Sequence[Point]]],
    *,
    title: str,
    x_label: str = "step",
    log_y: bool = False,
    width: int = 640,
    height: int = 260,
) -> str:
    """One polyline per series; a None/non-finite point breaks the line (red mark on the axis)."""
    series = [(name, list(pts)) for name, pts in series if pts]
    if not series:
        return ""

    def ty(v: float) -> float:
        return math.log10(v) if log_y else v

    good = [(x, ty(y)) for _, pts in series for x, y in pts if _finite(y) and (not log_y or y > 0)]
    if not good:
        return ""
    xs, ys = [p[0] for p in good], [p[1] for p in good]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    left, right, top, bottom = 64, 16, 26, 40
    legend_h = 16 * len(series)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + plot_w * (x - x0) / (x1 - x0)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y0) / (y1 - y0))

    body = [
        f'<text x="0" y="14" font-weight="600">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#dfe3ea"/>',
    ]
    # enough significant digits that five ticks over a narrow range read differently
    digits = 3 + max(0, math.ceil(math.log10(max(abs(y0), abs(y1)) / (y1 - y0) + 1e-12)))
    for k in range(5):  # y ticks
        v = y0 + (y1 - y0) * k / 4
        shown = sci(10**v) if log_y else f"{v:.{min(digits, 8)}g}"
        body.append(
            f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#5b6475">{esc(shown)}</text>'
            f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + plot_w}" y2="{py(v):.1f}" '
            'stroke="#f0f2f5"/>'
        )
    for k in range(5):  # x ticks
        x = x0 + (x1 - x0) * k / 4
        body.append(
            f'<text x="{px(x):.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'font-size="10" fill="#5b6475">{esc(f"{x:.4g}")}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle" '
        f'fill="#5b6475">{esc(x_label)}{" · log scale" if log_y else ""}</text>'
    )
    for i, (name, pts) in enumerate(series):
        stroke = PALETTE[i % len(PALETTE)]
        for run in _segments(pts, log_y):
            coords = " ".join(f"{px(x):.1f},{py(ty(y)):.1f}" for x, y in run)
            if len(run) == 1:
                x, y = run[0]
                body.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(ty(y)):.1f}" r="2" fill="{stroke}"/>'
                )
            else:
                body.append(
                    f'<polyline points="{coords}" fill="none" stroke="{stroke}" '
                    'stroke-width="1.6"/>'
                )
        for x, y in pts:
            if not _finite(y):
                body.append(
                    f'<text x="{px(x):.1f}" y="{top + plot_h - 2}" text-anchor="middle" '
                    f'fill="{PALETTE[3]}" font-size="11"><title>{esc(name)}: NaN/inf at '
                    f"{esc(x)}</title>×</text>"
                )
    legend = [
        f'<rect x="{left + 8}" y="{height + 4 + 16 * i}" width="10" height="10" '
        f'fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="{left + 24}" y="{height + 13 + 16 * i}">{esc(name)}</text>'
        for i, (name, _) in enumerate(series)
    ]
    return svg_document(width, height + legend_h + 4, title, body + legend)


def _segments(pts: list[Point], log_y: bool) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in pts:
        if _finite(y) and (not log_y or y > 0):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def histogram(
    edges: Sequence[float], counts: Sequence[int], *, title: str, width: int = 300
) -> str:
    """Vertical bars, one per bin; the x axis shows the first and last edge."""
    if not counts or len(edges) != len(counts) + 1:
        return ""
    height, top, bottom = 150, 22, 22
    plot_h = height - top - bottom
    bar_w = width / len(counts)
    largest = max(counts) or 1
    body = [f'<text x="0" y="14" font-weight="600" font-size="11">{esc(title)}</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / largest
        body.append(
            f'<rect x="{i * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{esc(sci(edges[i]))} to '
            f"{esc(sci(edges[i + 1]))}: {c}</title></rect>"
        )
    body.append(
        f'<text x="0" y="{height - 6}" font-size="10" fill="#5b6475">{esc(sci(edges[0]))}</text>'
        f'<text x="{width}" y="{height - 6}" font-size="10" fill="#5b6475" '
        f'text-anchor="end">{esc(sci(edges[-1]))}</text>'
    )
    return svg_document(width, height, title, body)


# ---------------------------------------------------------------- the section's plots
def section_charts(health: Any) -> dict[str, Any]:
    """Every plot of a HealthSection, as SVG strings (empty string: nothing to draw)."""
    charts: dict[str, Any] = {"grad_norms": "", "loss": "", "histograms": [], "logs": []}
    probe = health.probe
    if probe is not None:
        charts["grad_norms"] = log_bars(
            [(layer.name or "(model)", layer.grad_norm_first) for layer in probe.layers],
            title="Gradient norm per layer at the first step (input side first)",
        )
        charts["histograms"] = [
            (
                h.name or "(model)",
                histogram(h.weights.edges, h.weights.counts, title="weights") if h.weights else "",
                histogram(h.grads.edges, h.grads.counts, title="gradients") if h.grads else "",
            )
            for h in probe.histograms
        ]
    comparison = health.comparison
    if comparison is not None and comparison.runs:
        charts["loss"] = lines(
            [(f"{r.name} (lr {r.lr:g})", list(enumerate(r.losses))) for r in comparison.runs],
            title=f"Loss over {comparison.steps} steps, same initial weights",
        )
    elif probe is not None and probe.losses:
        charts["loss"] = lines(
            [(f"{probe.optimizer} (lr {probe.lr:g})", list(enumerate(probe.losses)))],
            title="Probe loss per step",
        )
    if health.logs is not None:
        charts["logs"] = log_charts(health.logs.curves)
    return charts


def curve_kind(tag: str) -> str:
    low = tag.lower()
    if "loss" in low:
        return "loss"
    if "acc" in low:
        return "accuracy"
    if "lr" in low.replace("/", " ").split() or "learning" in low or low.endswith("lr"):
        return "learning rate"
    return tag


def log_charts(curves: Sequence[Any]) -> list[str]:
    """One chart per kind of curve (loss, accuracy, learning rate, other tags)."""
    groups: dict[str, list[Any]] = {}
    for c in curves:
        groups.setdefault(curve_kind(c.tag), []).append(c)
    out = []
    for kind, group in list(groups.items())[:MAX_LOG_CHARTS]:
        series = [
            (
                f"{c.run}/{c.tag}" if c.run != "." else c.tag,
                list(zip(c.steps, c.values, strict=False)),
            )
            for c in group
        ]
        out.append(lines(series, title=f"Logged {kind}"))
    return out
