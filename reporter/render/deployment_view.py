"""The deployment table of the experiments section: one row per variant, display-ready."""

from __future__ import annotations

from reporter.profiling.stats import median_interval
from reporter.render import format as f
from reporter.report.experiments import Experiment, ExperimentsSection


def shown_columns(rows: list[dict[str, str]]) -> dict[str, bool]:
    """Top-1 and accuracy columns only when some variant has the figure."""
    return {key: any(r.get(key, "–") != "–" for r in rows) for key in ("top1", "accuracy")}


def speedup_text(e: Experiment) -> str:
    """A measured speedup with its range on one line: "1.67× (1.50–1.80)"."""
    return f"{e.speedup:.2f}× ({e.speedup_low:.2f}–{e.speedup_high:.2f})"


def deployment_rows(section: ExperimentsSection) -> list[dict[str, str]]:
    rows = []
    for e in section.experiments:
        if not e.deployment:
            continue
        row = {
            "name": e.name,
            "title": e.title,
            "status": e.status,
            "verdict": e.verdict or e.status,
        }
        if e.status != "measured":
            row["note"] = e.reason
            rows.append(row)
            continue
        interval = median_interval(e.variant_samples_ms)
        spread = f"{f.ms(interval[0])}–{f.ms(interval[1])}" if interval else ""
        row.update(
            # Markdown shows each figure with its range on one line; HTML stacks them.
            latency=f.ms(e.variant_ms) + (f" ({spread})" if spread else ""),
            latency_median=f.ms(e.variant_ms),
            latency_interval=spread,
            speedup=speedup_text(e),
            speedup_median=f"{e.speedup:.2f}×",
            speedup_range=f"{e.speedup_low:.2f}–{e.speedup_high:.2f}",
            error_rel="–" if e.max_rel_error is None else f"{e.max_rel_error:.2g}",
            error_abs="" if e.max_abs_error is None else f"abs {e.max_abs_error:.2g}",
            size=f"{f.nbytes(e.size_before_bytes)} → {f.nbytes(e.size_after_bytes)}"
            if e.size_after_bytes
            else "–",
            error="–"
            if e.max_rel_error is None
            else f"{e.max_rel_error:.2g} rel. (abs {e.max_abs_error:.2g})",
            top1=f.percent(e.top1_agreement),
            accuracy="–" if e.accuracy_delta is None else f"{e.accuracy_delta:+.2%}",
            note=e.reason,
        )
        rows.append(row)
    return rows
