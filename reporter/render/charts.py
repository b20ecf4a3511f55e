"""Inline SVG charts: small pure functions that return an ``<svg>`` string.

No script, no external font or stylesheet: the SVG draws the same in a browser, offline,
and in WeasyPrint. Every label and title is escaped here with ``html.escape`` (names are
user data: module, op and kernel names), so a template may insert the result with
``|safe``. Colours are checked against a strict pattern for the same reason.

    bar_chart([("aten::mm", 120.0), ("aten::add", 30.5, "#b54708")], unit=" µs")
    stacked_bar([("compute", 70.0), ("idle", 30.0)], title="GPU time")
    stacked_bars([("rank 0", [("host wait", 5.0), ("other", 1.0)]), ...])
    log_bars([("fc1", 1e-3), ("fc2", 2.5)], title="gradient norm")  # log10 axis
    lines([("adam", [(0, 2.3), (1, 1.9)])], title="loss")

Items are tuples ``(label, value)`` or ``(label, value, colour)``; a colour of None takes
the next one of ``PALETTE``. Values that are negative, NaN or None count as 0.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence

from markupsafe import escape

from reporter.units import count, finite, ms, us

PALETTE = (
    "#2f5d9b",  # blue
    "#e08a2e",  # orange
    "#3b8f5a",  # green
    "#b42318",  # red
    "#7a5ea8",  # purple
    "#8c6d46",  # brown
    "#c55a9a",  # pink
    "#6b7280",  # grey
    "#a3a13a",  # olive
    "#2a9bb0",  # teal
)
FONT = "-apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"
_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}")
CHAR_PX = 6.6  # average glyph width at 12 px, to size label columns without a font

Item = tuple  # (label, value) or (label, value, colour)
Formatter = Callable[[float], str]


def default_format(value: float) -> str:
    """1234.5 -> '1,234.5'; 0.1234 -> '0.123'."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def colour(value: str | None, index: int) -> str:
    """A safe fill colour: the given one if it is #hex or a plain name, else the palette's."""
    if value and _COLOUR.fullmatch(value):
        return value
    return PALETTE[index % len(PALETTE)]


def _value(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) and f > 0 else 0.0


def _unpack(item: Item, index: int) -> tuple[str, float, str]:
    label = str(item[0]) if len(item) > 0 else ""
    value = _value(item[1]) if len(item) > 1 else 0.0
    fill = colour(item[2] if len(item) > 2 else None, index)
    return label, value, fill


def _clip(label: str, max_chars: int) -> str:
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def svg_document(width: float, height: float, title: str, body: list[str]) -> str:
    label = esc(title) if title else "chart"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'style="max-width:100%;height:auto" '
        f'aria-label="{label}" font-family="{esc(FONT)}" font-size="12">'
        + (f"<title>{esc(title)}</title>" if title else "")
        + "".join(body)
        + "</svg>"
    )


def bar_chart(
    items: Sequence[Item],
    *,
    width: int = 640,
    bar_height: int = 18,
    gap: int = 6,
    unit: str = "",
    fmt: Formatter = default_format,
    title: str = "",
    max_label_chars: int = 48,
) -> str:
    """Horizontal bars, one per item, longest scaled to the available width.

    Each bar carries its value as text and its full label as a hover title. Returns ""
    when there is nothing to draw.
    """
    rows = [_unpack(item, 0) for item in items]  # one colour unless an item names its own
    if not rows:
        return ""
    labels = [_clip(label, max_label_chars) for label, _, _ in rows]
    label_w = min(width * 0.45, 8 + CHAR_PX * max(len(s) for s in labels))
    value_w = 8 + CHAR_PX * max(len(fmt(v) + unit) for _, v, _ in rows)
    bar_w = max(40.0, width - label_w - value_w - 8)
    top = 20 if title else 0
    height = top + len(rows) * (bar_height + gap) + gap
    largest = max(v for _, v, _ in rows) or 1.0
    body = []
    if title:
        body.append(f'<text x="0" y="14" font-weight="600">{esc(title)}</text>')
    for i, ((label, value, fill), shown) in enumerate(zip(rows, labels, strict=True)):
        y = top + gap + i * (bar_height + gap)
        w = bar_w * value / largest
        text_y = y + bar_height * 0.72
        body.append(
            _bar_row(label, shown, fmt(value) + unit, label_w, y, w, bar_height, text_y, fill)
        )
    return svg_document(width, height, title, body)


def _bar_row(
    label: str,
    shown: str,
    text: str,
    x: float,
    y: float,
    w: float,
    height: float,
    text_y: float,
    fill: str,
) -> str:
    """One horizontal bar from ``x``: its (clipped) label before it, its value after it, the
    full label and value as a hover title."""
    return (
        f"<g><title>{esc(label)}: {esc(text)}</title>"
        f'<text x="{x - 6:.1f}" y="{text_y:.1f}" text-anchor="end">{esc(shown)}</text>'
        f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{height}" '
        f'fill="{fill}" rx="2"/>'
        f'<text x="{x + w + 4:.1f}" y="{text_y:.1f}">{esc(text)}</text></g>'
    )


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[Item]]],
    *,
    width: int = 640,
    bar_height: int = 20,
    gap: int = 8,
    unit: str = "",
    fmt: Formatter = default_format,
    title: str = "",
    scale: str = "row",
    legend: bool = True,
    max_label_chars: int = 24,
) -> str:
    """One horizontal bar per row, split into segments, with one shared legend.

    ``rows`` is ``[(row_label, [(segment_label, value[, colour]), ...]), ...]``; segments
    with the same label share a colour across rows. ``scale="row"`` fills each bar to the
    full width (shares); ``scale="max"`` scales every bar to the largest row total (so the
    rows' totals compare). Returns "" when every value is 0.
    """
    colours: dict[str, str] = {}
    parsed: list[tuple[str, list[tuple[str, float, str]]]] = []
    for row_label, segments in rows:
        segs = []
        for item in segments:
            label = str(item[0])
            if label not in colours:
                colours[label] = colour(item[2] if len(item) > 2 else None, len(colours))
            segs.append((label, _value(item[1]), colours[label]))
        parsed.append((str(row_label), segs))
    totals = [sum(v for _, v, _ in segs) for _, segs in parsed]
    if not parsed or not any(totals):
        return ""
    single = len(parsed) == 1 and not parsed[0][0]
    labels = [_clip(label, max_label_chars) for label, _ in parsed]
    label_w = 0.0 if single else min(width * 0.3, 8 + CHAR_PX * max(len(s) for s in labels))
    bar_w = max(40.0, width - label_w - (0 if scale == "row" else 80))
    largest = max(totals) or 1.0
    top = 20 if title else 0
    body = []
    if title:
        body.append(f'<text x="0" y="14" font-weight="600">{esc(title)}</text>')
    y = top + gap
    for (row_label, segs), shown, total in zip(parsed, labels, totals, strict=True):
        if not single:
            body.append(
                f'<text x="{label_w - 6:.1f}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">'
                f"<title>{esc(row_label)}</title>{esc(shown)}</text>"
            )
        full = bar_w if scale == "row" else bar_w * total / largest
        x = label_w
        for label, value, fill in segs:
            if value <= 0 or total <= 0:
                continue
            w = full * value / total
            share = value / total
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_height}" '
                f'fill="{fill}"><title>{esc(row_label + ": " if row_label else "")}'
                f"{esc(label)}: {esc(fmt(value) + unit)} ({share:.1%})</title></rect>"
            )
            x += w
        if scale != "row":
            body.append(
                f'<text x="{label_w + full + 4:.1f}" y="{y + bar_height * 0.7:.1f}">'
                f"{esc(fmt(total) + unit)}</text>"
            )
        y += bar_height + gap
    if legend:
        placed = _layout(_legend_entries(colours, parsed, totals, unit, fmt, single), width)
        for line, x, text, fill in placed:
            ly = y + line * 20
            body.append(
                f'<rect x="{x:.1f}" y="{ly + 3}" width="12" height="12" fill="{fill}" rx="2"/>'
                f'<text x="{x + 17:.1f}" y="{ly + 13}">{esc(text)}</text>'
            )
        y += 20 * (placed[-1][0] + 1 if placed else 0)
    return svg_document(width, y + gap, title, body)


def stacked_bar(
    segments: Sequence[Item],
    *,
    width: int = 640,
    bar_height: int = 24,
    unit: str = "",
    fmt: Formatter = default_format,
    title: str = "",
    legend: bool = True,
) -> str:
    """One full-width bar split into segments (shares), with a legend of values."""
    return stacked_bars(
        [("", segments)],
        width=width,
        bar_height=bar_height,
        unit=unit,
        fmt=fmt,
        title=title,
        legend=legend,
    )


def _legend_entries(
    colours: dict[str, str],
    parsed: list[tuple[str, list[tuple[str, float, str]]]],
    totals: list[float],
    unit: str,
    fmt: Formatter,
    single: bool,
) -> list[tuple[str, str]]:
    """(text, colour) per segment label that has time somewhere; one bar adds its values."""
    entries = []
    for label, fill in colours.items():
        value = sum(v for _, segs in parsed for name, v, _ in segs if name == label)
        if value <= 0:
            continue  # nothing of this kind anywhere: no legend entry
        if single:
            share = value / totals[0] if totals[0] else 0.0
            entries.append((f"{label} {fmt(value)}{unit} ({share:.1%})", fill))
        else:
            entries.append((label, fill))
    return entries


def _layout(entries: list[tuple[str, str]], width: int) -> list[tuple[int, float, str, str]]:
    """(line, x, text, colour) for legend entries wrapped to the width."""
    placed = []
    line, x = 0, 0.0
    for text, fill in entries:
        w = 18 + CHAR_PX * len(text) + 14
        if x > 0 and x + w > width:
            line, x = line + 1, 0.0
        placed.append((line, x, text, fill))
        x += w
    return placed


REGIME_COLOURS = {"compute": "#2f5d9b", "memory": "#e08a2e", "overhead": "#b42318"}


def roofline_chart(
    points: Sequence[tuple[str, float, float, float, str]],
    *,
    peak_flops: float,
    peak_bytes_per_s: float,
    width: int = 640,
    height: int = 360,
    title: str = "",
) -> str:
    """Log-log roofline: points (label, FLOPs per byte, FLOP/s, time share, regime), the
    memory ceiling (bandwidth × intensity) and the compute ceiling. A point's area grows
    with its share of the time. Points without a positive intensity or rate are left out
    (a log axis has no zero); returns "" when none remains."""
    pts = [
        (label, x, y, max(_value(share), 0.0), regime)
        for label, x, y, share, regime in points
        if _value(x) > 0 and _value(y) > 0
    ]
    if not pts or _value(peak_flops) <= 0 or _value(peak_bytes_per_s) <= 0:
        return ""
    ridge = peak_flops / peak_bytes_per_s
    x_lo = 10 ** math.floor(math.log10(min(min(p[1] for p in pts), ridge / 10)))
    x_hi = 10 ** math.ceil(math.log10(max(max(p[1] for p in pts), ridge * 10)))
    y_hi = 10 ** math.ceil(math.log10(peak_flops * 1.5))
    y_lo = 10 ** math.floor(math.log10(min(min(p[2] for p in pts), x_lo * peak_bytes_per_s)))
    left, right, top, bottom = 64, 16, 24 if title else 8, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + plot_w * math.log10(x / x_lo) / math.log10(x_hi / x_lo)

    def py(y: float) -> float:
        return top + plot_h * (1 - math.log10(y / y_lo) / math.log10(y_hi / y_lo))

    body = []
    if title:
        body.append(f'<text x="0" y="14" font-weight="600">{esc(title)}</text>')
    body.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#d0d5dd"/>'
    )
    for exp in range(round(math.log10(x_lo)), round(math.log10(x_hi)) + 1):
        x = px(10.0**exp)
        body.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#eaecf0"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="10">'
            f"{esc(_power(exp))}</text>"
        )
    for exp in range(round(math.log10(y_lo)), round(math.log10(y_hi)) + 1):
        y = py(10.0**exp)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eaecf0"/>'
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="10">'
            f"{esc(_power(exp))}</text>"
        )
    # The two ceilings: bandwidth × intensity up to the ridge, the peak after it.
    x0 = max(x_lo, y_lo / peak_bytes_per_s)
    body.append(
        f'<polyline fill="none" stroke="#101828" stroke-width="2" points="'
        f"{px(x0):.1f},{py(x0 * peak_bytes_per_s):.1f} {px(ridge):.1f},{py(peak_flops):.1f} "
        f'{px(x_hi):.1f},{py(peak_flops):.1f}"/>'
    )
    body.append(
        f'<text x="{px(x_hi) - 4:.1f}" y="{py(peak_flops) - 5:.1f}" text-anchor="end" '
        f'font-size="10">compute ceiling</text>'
    )
    body.append(
        f'<text x="{px(x0) + 4:.1f}" y="{py(x0 * peak_bytes_per_s) - 6:.1f}" font-size="10">'
        f"memory ceiling</text>"
    )
    for label, x, y, share, regime in sorted(pts, key=lambda p: -p[3]):
        r = 3 + 14 * math.sqrt(min(share, 1.0))
        fill = REGIME_COLOURS.get(regime, PALETTE[7])
        body.append(
            f"<g><title>{esc(label)} ({esc(regime)}): {y:.3g} FLOP/s at {x:.3g} FLOP/byte, "
            f"{share:.1%} of op time</title>"
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{r:.1f}" fill="{fill}" '
            f'fill-opacity="0.55" stroke="{fill}"/></g>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"arithmetic intensity (FLOPs per byte)</text>"
        f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">FLOP/s</text>'
    )
    return svg_document(width, height, title, body)


def _power(exp: int) -> str:
    return f"1e{exp}" if exp < -2 or exp > 3 else f"{10.0**exp:g}"


def stacked_area(
    times: Sequence[float],
    series: Sequence[tuple[str, Sequence[float], str | None]],
    *,
    marks: Sequence[tuple[str, float, float]] = (),
    peak: tuple[float, float] | None = None,
    width: int = 640,
    height: int = 260,
    unit_scale: float = 1.0,
    unit: str = "",
    x_unit: str = "ms",
    x_scale: float = 1.0,
    title: str = "",
) -> str:
    """Series stacked over time (a step function: each value holds until the next time),
    bands ``marks`` (label, start, end) shaded behind them, and the peak (time, value)
    marked. Values are divided by ``unit_scale`` for the axis labels."""
    if not times or not series:
        return ""
    n = len(times)
    rows = [
        (label, [_value(v) for v in values][:n], colour(fill, i))
        for i, (label, values, fill) in enumerate(series)
    ]
    tops = [sum(r[1][j] for r in rows) for j in range(n)]
    y_max = max(tops) or 1.0
    t0 = min(min(times), min((m[1] for m in marks), default=min(times)))
    t1 = max(max(times), max((m[2] for m in marks), default=0.0))
    span = (t1 - t0) or 1.0
    placed = _layout([(label, fill) for label, values, fill in rows if any(values)], width)
    legend = (placed[-1][0] + 1) if placed else 0
    # The bands' labels sit in a row above the plot, where the stacked areas cannot hide them.
    top = (24 if title else 8) + (14 if marks else 0)
    left, right, bottom = 70, 12, 36 + 18 * legend
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(t: float) -> float:
        return left + plot_w * (t - t0) / span

    def py(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    body = []
    if title:
        body.append(f'<text x="0" y="14" font-weight="600">{esc(title)}</text>')
    for i, (label, start, end) in enumerate(marks):
        shade = "#f2f4f7" if i % 2 == 0 else "#e4e7ec"
        # A label wider than its band starts at the band (a 10 px font is about 6 px a
        # letter) rather than spill over both edges, the plot's left one included.
        fits = px(end) - px(start) >= 6 * len(label) + 4
        x, anchor = ((px(start) + px(end)) / 2, "middle") if fits else (px(start) + 2, "start")
        body.append(
            f'<rect x="{px(start):.1f}" y="{top}" width="{max(px(end) - px(start), 0.5):.1f}" '
            f'height="{plot_h}" fill="{shade}"/>'
            f'<text x="{x:.1f}" y="{top - 4}" text-anchor="{anchor}" '
            f'font-size="10" fill="#475467">{esc(label)}</text>'
        )
    base = [0.0] * n
    for label, values, fill in rows:
        upper = [b + v for b, v in zip(base, values, strict=True)]
        if any(values):
            pts = _steps(times, upper, px, py) + list(reversed(_steps(times, base, px, py)))
            body.append(
                f'<polygon fill="{fill}" fill-opacity="0.8" stroke="none" '
                f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"><title>{esc(label)}</title></polygon>'
            )
        base = upper
    for k in range(5):
        v = y_max * k / 4
        body.append(
            f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + plot_w}" y2="{py(v):.1f}" stroke="#d0d5dd" stroke-width="0.5"/>'
            f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="10">'
            f"{esc(default_format(v / unit_scale) + unit)}</text>"
        )
    for k in range(5):
        t = t0 + span * k / 4
        anchor = "end" if k == 4 else "middle"  # the last ends at the plot's edge, not past it
        body.append(
            f'<text x="{px(t):.1f}" y="{top + plot_h + 14}" text-anchor="{anchor}" font-size="10">'
            f"{esc(default_format(t / x_scale))}</text>"
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 28}" text-anchor="middle">'
        f"time ({esc(x_unit)})</text>"
    )
    if peak is not None:
        x, y = px(peak[0]), py(peak[1])
        label = f"peak {default_format(peak[1] / unit_scale) + unit}"
        # Right of the peak's line where the label fits, else left of it: never over the
        # spike that makes the peak.
        right = x + 5 + 6 * len(label) <= left + plot_w
        tx, anchor = (x + 5, "start") if right else (x - 5, "end")
        body.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#b42318" stroke-dasharray="3,2"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#b42318"/>'
            f'<text x="{tx:.1f}" y="{max(y - 5, top + 12):.1f}" text-anchor="{anchor}" font-size="10" fill="#b42318">'
            f"{esc(label)}</text>"
        )
    for row, x, label, fill in placed:
        y = height - 18 * legend + 18 * row + 12
        body.append(
            f'<rect x="{x + 4:.1f}" y="{y - 9}" width="10" height="10" fill="{fill}"/>'
            f'<text x="{x + 18:.1f}" y="{y}" font-size="11">{esc(label)}</text>'
        )
    return svg_document(width, height, title, body)


def _steps(
    times: Sequence[float],
    values: Sequence[float],
    px: Callable[[float], float],
    py: Callable[[float], float],
) -> list[tuple[float, float]]:
    """A step line: each value holds until the next time."""
    pts = []
    for j, (t, v) in enumerate(zip(times, values, strict=True)):
        if j:
            pts.append((px(t), py(values[j - 1])))
        pts.append((px(t), py(v)))
    return pts


# ---------------------------------------------------------- log bars, lines, histograms
# Gradient norms span orders of magnitude and loss curves need lines (the health section).
MAX_BARS = 80

Point = tuple[float, float | None]  # (x, y); y None or non-finite breaks a line


def sci(value: float) -> str:
    return f"{value:.2e}" if value and (abs(value) >= 1e4 or abs(value) < 1e-2) else f"{value:.3g}"


def log_bars(items: Sequence[tuple[str, float | None]], *, title: str, width: int = 640) -> str:
    """Horizontal bars on a log10 axis; a zero, missing or non-finite value draws no bar."""
    rows = list(items)[:MAX_BARS]
    if not rows:
        return ""
    labels = [label if len(label) <= 40 else label[:39] + "…" for label, _ in rows]
    positive = [v for _, v in rows if finite(v) and v > 0]
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
        ok = finite(value) and value > 0
        w = bar_w * (math.log10(value) - lo) / (hi - lo) if ok else 0.0
        text = sci(value) if finite(value) else "NaN/inf" if value is not None else "–"
        fill = PALETTE[0] if ok else PALETTE[3]
        body.append(_bar_row(label, shown, text, label_w, y, w, bar_h, text_y, fill))
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

    good = [(x, ty(y)) for _, pts in series for x, y in pts if finite(y) and (not log_y or y > 0)]
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
            if not finite(y):
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
        if finite(y) and (not log_y or y > 0):
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


# ------------------------------------------------ the profile and timing sections' charts
# Their own look (system font, 11 px, #2e90fa) and Jinja's autoescape (markupsafe), kept so
# the HTML these sections always wrote is unchanged byte for byte.
_PLAIN_SVG = (
    '<svg class="chart" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
    'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">\n'
)
LEAN_MAX_DOTS = 60  # lean (print) line charts draw no dots beyond this many points


def _truncate(text: str, length: int) -> str:
    """Jinja's truncate(length, killwords=True, end="…") with its default leeway of 5."""
    return text if len(text) <= length + 5 else text[: length - 1] + "…"


def _value_text(value: float, fmt: str) -> str:
    return us(value) if fmt == "us" else ms(value) if fmt == "ms" else count(value)


def hbar_chart(
    rows: Sequence[tuple[str, float]], fmt: str, width: int = 560, label_w: int = 190
) -> str:
    """Horizontal bars (label, value), the longest over the plot width; fmt ("us", "ms" or
    anything else for a count) formats the value written after each bar."""
    bar_h, gap = 16, 5
    vmax = max(value for _, value in rows) if rows else 0
    plot_w = width - label_w - 80
    out = [_PLAIN_SVG.format(w=width, h=len(rows) * (bar_h + gap) + gap)]
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = plot_w * value / vmax if vmax > 0 else 0
        out.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" fill="#344054">'
            f"{escape(_truncate(str(label), 30))}<title>{escape(label)}</title></text>\n"
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#2e90fa" rx="2"/>\n'
            f'<text x="{label_w + 4 + w:.1f}" y="{y + 12}" fill="#475467">'
            f"{escape(_value_text(value, fmt))}</text>\n"
        )
    out.append("</svg>\n")
    return "".join(out)


def line_chart(
    points: Sequence[tuple[object, float]],
    x_label: str,
    y_label: str,
    y_fmt: str,
    mark_x: object = None,
    width: int = 560,
    height: int = 240,
    lean: bool = False,
) -> str:
    """A line over evenly spaced x positions (label, y), y from 0; y_fmt "count" or "ms" for
    the axis. mark_x draws the knee at that label. lean (the PDF): no empty labels, and no
    dots past LEAN_MAX_DOTS points, so 1,000 samples draw one polyline, not 2,000 elements."""
    left, right, top, bottom = 84, 20, 14, 40
    pw, ph = width - left - right, height - top - bottom
    ymax = max(y for _, y in points) if points else 0
    n = len(points)
    step = pw / (n - 1) if n > 1 else 0
    out = [
        _PLAIN_SVG.format(w=width, h=height),
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#98a2b3"/>\n'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#98a2b3"/>\n',
    ]
    for frac in (0, 0.5, 1):
        yy = top + ph - ph * frac
        tick = "%.3g" % (ymax * frac) if y_fmt == "count" else _value_text(ymax * frac, "ms")
        out.append(
            f'<line x1="{left - 4}" y1="{yy}" x2="{left + pw}" y2="{yy}" stroke="#eaecf0"/>\n'
            f'<text x="{left - 6}" y="{yy + 4}" text-anchor="end" fill="#475467">'
            f"{escape(tick)}</text>\n"
        )
    coords = []
    for i, (x, y) in enumerate(points):
        px = left + (step * i if n > 1 else pw / 2)
        py = top + ph - (ph * y / ymax if ymax > 0 else 0)
        coords.append(f"{px:.1f},{py:.1f}")
        if not lean or x != "":
            out.append(
                f'<text x="{px:.1f}" y="{top + ph + 14}" text-anchor="middle" fill="#475467">'
                f"{escape(x)}</text>"
            )
        if mark_x is not None and x == mark_x:
            right_half = px > left + pw / 2
            out.append(
                f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + ph}" stroke="#f79009" '
                f'stroke-dasharray="4 3"/><text x="{px - 4 if right_half else px + 4:.1f}" '
                f'y="{top + 10}" text-anchor="{"end" if right_half else "start"}" '
                'fill="#b54708">knee</text>'
            )
        if not lean or n <= LEAN_MAX_DOTS:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="#2e90fa"/>')
    out.append(
        f'<polyline points="{" ".join(coords)}" fill="none" stroke="#2e90fa" stroke-width="2"/>\n'
        f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" fill="#344054">'
        f"{escape(x_label)}</text>\n"
        f'<text x="12" y="{top + ph / 2}" text-anchor="middle" fill="#344054" '
        f'transform="rotate(-90 12 {top + ph / 2})">{escape(y_label)}</text>\n'
        "</svg>\n"
    )
    return "".join(out)
