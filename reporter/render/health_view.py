"""The health section for its templates: the plots as SVG strings (drawn by
reporter.render.charts) and the rows, figures and notes each table shows, chosen here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reporter.render.charts import histogram, lines, log_bars
from reporter.render.rows import largest_in_order
from reporter.render.templates import PRINT_ROWS
from reporter.report.health import (
    ActivationHealth,
    EvalAccuracy,
    HealthSection,
    LayerHealth,
    TrainingProbe,
)

MAX_LOG_CHARTS = 8
MD_LAYERS = 40  # layer rows in Markdown; the rest are counted
MD_ITEMS = 12  # activations and log curves named in Markdown
MAX_CLASS_TABLE = 100  # more classes than this: no per-class table
PRINT_CONFUSION = 12  # a larger confusion matrix is left out of print


def section_charts(health: Any, *, for_print: bool = False) -> dict[str, Any]:
    """Every plot of a HealthSection, as SVG strings (empty string: nothing to draw).
    Print draws the histograms of the largest layer only; histograms_left_out counts the rest."""
    charts: dict[str, Any] = {
        "grad_norms": "",
        "loss": "",
        "histograms": [],
        "histograms_left_out": 0,
        "logs": [],
    }
    probe = health.probe
    if probe is not None:
        charts["grad_norms"] = log_bars(
            [(layer.name or "(model)", layer.grad_norm_first) for layer in probe.layers],
            title="Gradient norm per layer at the first step (input side first)",
        )
        drawn = probe.histograms[:1] if for_print else probe.histograms
        charts["histograms"] = [
            (
                h.name or "(model)",
                histogram(h.weights.edges, h.weights.counts, title="weights") if h.weights else "",
                histogram(h.grads.edges, h.grads.counts, title="gradients") if h.grads else "",
            )
            for h in drawn
        ]
        charts["histograms_left_out"] = len(probe.histograms) - len(drawn)
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


def loss_text(loss: float | None, missing: str = "NaN/inf") -> str:
    """A loss to four significant figures; `missing` for one that is not finite (None)."""
    return missing if loss is None else f"{loss:.4g}"


def _most_dead(a: ActivationHealth) -> tuple[float, float]:
    # sigmoid and tanh sites have no zero figures: they rank after every ReLU-like one
    return (-1.0 if a.dead_fraction is None else a.dead_fraction), (
        -1.0 if a.zero_fraction is None else a.zero_fraction
    )


@dataclass
class ActivationNote:
    """One call site in the Markdown summary: its zeros (ReLU-like) or else its saturation."""

    name: str
    fraction: float | None
    what: str  # "zeros" or "saturated"


@dataclass
class ProbeView:
    first_loss: str
    last_loss: str
    # print: the PRINT_ROWS // 2 largest layers by parameters, in model order
    layers: list[LayerHealth] = field(default_factory=list)
    layers_left_out: int = 0
    # print: the PRINT_ROWS // 2 call sites with the most dead units, then zeros, in call order
    activations: list[ActivationHealth] = field(default_factory=list)
    activations_left_out: int = 0
    md_layers: list[LayerHealth] = field(default_factory=list)
    md_layers_left_out: int = 0
    md_activations: list[ActivationNote] = field(default_factory=list)


def probe_view(probe: TrainingProbe, *, for_print: bool = False) -> ProbeView:
    rows = PRINT_ROWS // 2 if for_print else None
    layers = largest_in_order(probe.layers, lambda layer: layer.params, rows)
    activations = largest_in_order(probe.activations, _most_dead, rows)
    return ProbeView(
        first_loss=loss_text(probe.losses[0] if probe.losses else None),
        last_loss=loss_text(probe.losses[-1] if probe.losses else None),
        layers=layers,
        layers_left_out=len(probe.layers) - len(layers),
        activations=activations,
        activations_left_out=len(probe.activations) - len(activations),
        md_layers=probe.layers[:MD_LAYERS],
        md_layers_left_out=max(0, len(probe.layers) - MD_LAYERS),
        md_activations=[
            ActivationNote(a.name, a.zero_fraction, "zeros")
            if a.zero_fraction is not None
            else ActivationNote(a.name, a.saturated_fraction, "saturated")
            for a in probe.activations[:MD_ITEMS]
        ],
    )


@dataclass
class AccuracyView:
    loss: str
    classes: list[int]  # the per-class table's rows; [] without one
    classes_left_out: int  # print: classes the table leaves out
    confusion: str  # "table", "note" (print: too large, named only) or "" (none)


def accuracy_view(accuracy: EvalAccuracy, *, for_print: bool = False) -> AccuracyView:
    per_class = accuracy.per_class
    has_table = bool(per_class) and len(per_class) <= MAX_CLASS_TABLE
    confusion = ""
    if has_table and accuracy.confusion:
        too_large = for_print and len(accuracy.confusion) > PRINT_CONFUSION
        confusion = "note" if too_large else "table"
    classes = class_rows(per_class, for_print=for_print) if has_table else []
    return AccuracyView(
        loss=loss_text(accuracy.loss, "–"),
        classes=classes,
        classes_left_out=len(per_class) - len(classes) if has_table else 0,
        confusion=confusion,
    )


@dataclass
class HealthView:
    probe: ProbeView | None
    accuracy: AccuracyView | None
    loss_alone: bool  # the comparison's loss chart stands alone (no probe section holds it)
    log_curves: list[tuple[str, int]]  # Markdown: "run/tag" and its points, the first few


def health_view(health: HealthSection, *, for_print: bool = False) -> HealthView:
    logs = health.logs
    return HealthView(
        probe=probe_view(health.probe, for_print=for_print) if health.probe else None,
        accuracy=accuracy_view(health.accuracy, for_print=for_print) if health.accuracy else None,
        loss_alone=bool(health.comparison) and not health.probe,
        log_curves=[(f"{c.run}/{c.tag}", c.points) for c in logs.curves[:MD_ITEMS]] if logs else [],
    )
