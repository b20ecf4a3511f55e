"""The deployment table of the experiments section: one row per variant, display-ready."""

from __future__ import annotations

from reporter.profiling.stats import median_interval
from reporter.render import format as f
from reporter.report.experiments import ExperimentsSection


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
        row.update(
            latency=f.ms(e.variant_ms)
            + (f" ({f.ms(interval[0])}–{f.ms(interval[1])})" if interval else ""),
            speedup=f"{e.speedup:.2f}× ({e.speedup_low:.2f}–{e.speedup_high:.2f})",
            size=f"{f.nbytes(e.size_before_bytes)} → {f.nbytes(e.size_after_bytes)}"
            if e.size_after_bytes
            else "–",
            error="–"
            if e.max_rel_error is None
            else f"{e.max_rel_error:.2g} rel. (abs {e.max_abs_error:.2g})",
            top1="–" if e.top1_agreement is None else f.percent(e.top1_agreement),
            accuracy="–" if e.accuracy_delta is None else f"{e.accuracy_delta:+.2%}",
            note=e.reason,
        )
        rows.append(row)
    return rows
