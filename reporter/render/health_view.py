"""The health section's plots, as SVG strings for its template (drawn by reporter.render.charts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reporter.render.charts import histogram, lines, log_bars
from reporter.render.templates import PRINT_ROWS

MAX_LOG_CHARTS = 8


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


def class_rows(per_class: Sequence[float | None], *, for_print: bool = False) -> list[int]:
    """The classes the accuracy table lists: all, or in print with many classes the
    PRINT_ROWS // 2 least accurate (a class with no samples last), in class order."""
    if not (for_print and len(per_class) > PRINT_ROWS):
        return list(range(len(per_class)))
    ranked = sorted([acc if acc is not None else 2.0, i] for i, acc in enumerate(per_class))
    return sorted(i for _, i in ranked[: PRINT_ROWS // 2])
