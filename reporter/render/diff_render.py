"""ReportDiff -> text for the terminal, Markdown for a review comment, HTML, JSON."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from reporter.diff import MetricChange, ReportDiff, TimeChange
from reporter.render import format as fmt
from reporter.render.templates import environment, templates_dir
from reporter.render.view import budget_rows
from reporter.report import BudgetResult, to_data
from reporter.report.enums import BudgetStatus

DIFF_FORMATS = ("md", "html", "json")
MAX_MD_CHARS = 60_000  # GitHub's comment limit is 65,536

UNIT_FORMAT: dict[str, Callable[[Any], str]] = {
    "count": fmt.count,
    "flops": fmt.flops,
    "bytes": fmt.nbytes,
    "ms": fmt.ms,
    "per_s": lambda v: f"{fmt.count(v)}/s",
}


def format_value(unit: str, value: float | None) -> str:
    return "–" if value is None else UNIT_FORMAT.get(unit, fmt.count)(value)


def format_delta(change: MetricChange) -> str:
    """'+1.20 M (+10.3%)'; '0' when unchanged; '' when not compared."""
    if change.delta is None:
        return ""
    if change.delta == 0:
        return "0"
    sign = "+" if change.delta > 0 else "−"
    text = sign + format_value(change.unit, abs(change.delta))
    if change.relative is not None:
        text += f" ({'+' if change.relative > 0 else '−'}{abs(change.relative):.1%})"
    return text


def signed_percent(x: float) -> str:
    """+2.3%, −4.1%, +1219% (no decimals from 100% up)."""
    sign = "+" if x >= 0 else "−"
    return f"{sign}{abs(x):.1%}" if abs(x) < 1 else f"{sign}{abs(x):.0%}"


def interval_text(low: float | None, high: float | None, confidence: float | None) -> str:
    """'95% interval +3.1% … +9.8%'; '' when there is no interval."""
    if low is None or high is None or confidence is None:
        return ""
    return f"{confidence:.0%} interval {signed_percent(low)} … {signed_percent(high)}"


def metric_rows(diff: ReportDiff) -> list[dict[str, str]]:
    """Display-ready rows shared by every view."""
    rows = []
    for m in diff.metrics:
        interval = interval_text(m.change_low, m.change_high, m.confidence)
        if interval and m.threshold is not None:
            interval += f" (threshold ±{m.threshold:.0%})"
        rows.append(
            {
                "label": m.label,
                "base": format_value(m.unit, m.base),
                "head": format_value(m.unit, m.head),
                "change": format_delta(m),
                "verdict": m.verdict,
                "interval": interval,
                "note": m.note,
                "judged": judged_by(interval, m.note),
            }
        )
    return rows


def judged_by(interval: str, note: str) -> str:
    """The interval and the note, whichever there are, as one cell."""
    return "; ".join(x for x in (interval, note) if x)


def time_rows(diff: ReportDiff) -> list[dict[str, str]]:
    """Module and op times per profiled step."""
    return [_time_row(t, diff.confidence) for t in diff.times]


def _time_row(t: TimeChange, confidence: float) -> dict[str, str]:
    change = "new" if t.base_us is None else "gone" if t.head_us is None else ""
    if not change and t.relative is not None:
        change = signed_percent(t.relative)
    interval = interval_text(t.change_low, t.change_high, confidence)
    return {
        "kind": t.kind,
        "name": t.name,
        "type": t.type,
        "base": fmt.us(t.base_us),
        "head": fmt.us(t.head_us),
        "change": change,
        "verdict": t.verdict,
        "interval": interval,
        "note": t.note,
        "judged": judged_by(interval, t.note),
    }


def module_rows(diff: ReportDiff) -> list[dict[str, str]]:
    rows = []
    for c in diff.modules:
        unit = "flops" if c.metric == "flops" else "count"
        relative = "new" if c.base is None else "gone" if c.head is None else ""
        if not relative and c.relative is not None:
            relative = f"{'+' if c.relative > 0 else '−'}{abs(c.relative):.0%}"
        rows.append(
            {
                "name": c.name,
                "type": c.type,
                "metric": "FLOPs" if c.metric == "flops" else "parameters",
                "base": format_value(unit, c.base),
                "head": format_value(unit, c.head),
                "change": ("+" if c.delta > 0 else "−") + format_value(unit, abs(c.delta)),
                "relative": relative,
            }
        )
    return rows


# status -> (the HTML row's class, the Markdown line's mark)
BUDGET_MARKS = {"crossed": ("failed", ":x:"), "unmeasured": ("", ":grey_question:")}


def percents(diff: ReportDiff) -> dict[str, str]:
    """The thresholds and confidence as the notes write them, in percent."""
    return {
        "module_threshold": "%.0f" % (diff.module_threshold * 100),
        "confidence": "%.0f" % (diff.confidence * 100),
        "threshold": "%.0f" % (diff.threshold * 100),
        # two runs of the same code: the share of figures called worse (one tail)
        "false_alarm": "%.1f" % ((1 - diff.confidence) * 50),
    }


def template_context(diff: ReportDiff, budgets: list[BudgetResult]) -> dict[str, Any]:
    return {
        "diff": diff,
        "percent": percents(diff),
        "rows": metric_rows(diff),
        "modules": module_rows(diff),
        "times": time_rows(diff),
        "budgets": budget_rows(budgets, BUDGET_MARKS, ("", ":white_check_mark:")),
        "worse": [m.label for m in diff.worse],
        "crossed": [b for b in budgets if b.status == BudgetStatus.CROSSED],
    }


def render_diff_markdown(diff: ReportDiff, budgets: list[BudgetResult] | None = None) -> str:
    text = (
        environment("md").get_template("diff.md.j2").render(**template_context(diff, budgets or []))
    )
    if len(text) > MAX_MD_CHARS:
        text = text[: MAX_MD_CHARS - 200].rsplit("\n", 1)[0]
        text += "\n\n…cut to fit a review comment; the full diff is in diff.html.\n"
    return text


def render_diff_html(diff: ReportDiff, budgets: list[BudgetResult] | None = None) -> str:
    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    return (
        environment("html")
        .get_template("diff.html.j2")
        .render(**template_context(diff, budgets or []), css=css, nonce=secrets.token_urlsafe(16))
    )


def render_diff_json(diff: ReportDiff, budgets: list[BudgetResult] | None = None) -> str:
    data = {"diff": to_data(diff), "budgets": to_data(budgets or [])}
    data["diff"]["worse"] = [m.key for m in diff.worse]
    return json.dumps(data, indent=2) + "\n"


DIFF_RENDERERS: dict[str, Callable[[ReportDiff, list[BudgetResult]], str]] = {
    "md": render_diff_markdown,
    "html": render_diff_html,
    "json": render_diff_json,
}


def render_diff_text(diff: ReportDiff, budgets: list[BudgetResult] | None = None) -> str:
    """Plain columns for a terminal or a CI log."""
    lines = [f"perfreport diff: {diff.base_name} (base) → {diff.head_name} (head)", ""]
    header = {"label": "", "base": "base", "head": "head", "change": "change", "verdict": ""}
    rows = [header, *metric_rows(diff)]
    widths = {k: max(len(r[k]) for r in rows) for k in header}
    for r in rows:
        cells = [
            r["label"].ljust(widths["label"]),
            r["base"].rjust(widths["base"]),
            r["head"].rjust(widths["head"]),
            r["change"].ljust(widths["change"]),
            r["verdict"],
        ]
        extra = r.get("judged", "")
        lines.append("  ".join(cells).rstrip() + (f"  ({extra})" if extra else ""))
    if not diff.metrics:
        lines.append("no figure was measured in either report")
    if diff.detectable is not None:
        lines += ["", diff.detectable.text]
    for title, found in (("added", diff.findings_added), ("removed", diff.findings_removed)):
        if found:
            lines += ["", f"Findings {title}:"]
            lines += [f"  {f.severity:8} {f.title}" for f in found]
    if diff.modules:
        lines += ["", f"Modules that moved by {diff.module_threshold:.0%} or more:"]
        for m in module_rows(diff):
            lines.append(
                f"  {m['name']:30} {m['metric']:10} {m['base']:>12} → {m['head']:>12}"
                f"  {m['change']} {m['relative']}".rstrip()
            )
        if diff.modules_left_out:
            lines.append(f"  …and {diff.modules_left_out} more in diff.json")
    if diff.times:
        lines += ["", "Module and op times per profiled step:"]
        for t in time_rows(diff):
            extra = t["judged"]
            lines.append(
                f"  {t['kind']:6} {t['name'][:40]:40} {t['base']:>10} → {t['head']:>10}"
                f"  {t['change']:>7}  {t['verdict']}" + (f" ({extra})" if extra else "")
            )
        if diff.times_left_out:
            lines.append(f"  …and {diff.times_left_out} more in diff.json")
        lines += ["", diff.times_method]
    if budgets:
        lines.append("")
        lines += [f"budget {r.status}: {r.message}" for r in budgets]
    lines += [f"note: {n}" for n in diff.notes]
    return "\n".join(printable(line) for line in lines) + "\n"


def printable(text: str) -> str:
    """Module names and notes come from report.json: show control characters (terminal
    escape sequences) as escapes instead of sending them to the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
