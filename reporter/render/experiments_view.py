"""The experiments section, decided and formatted for templates/sections/experiments.{html,md}.j2.

Each experiment's cells (speedup class, outputs verdict, note), the deployment table's
columns, and which rows the Markdown lists are chosen here; the templates only loop.
Text is plain: the templates escape it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.render.deployment_view import deployment_rows, shown_columns, speedup_text
from reporter.report.experiments import Experiment, ExperimentsSection
from reporter.units import ms, nbytes

DEPLOYMENT_FIGURES = 5  # latency, speedup, weights, output error, verdict


@dataclass(frozen=True)
class MeasuredCells:
    before: str
    after: str
    speedup_class: str  # "fits" when surely faster, "nofit" when surely slower, else ""
    speedup: str
    range: str
    outputs_differ: bool  # marked bad
    outputs: str  # after the "differ" mark when they differ
    note: str


@dataclass(frozen=True)
class ExperimentRow:
    title: str
    status: str
    measured: MeasuredCells | None  # None: skipped or failed
    reason: str


@dataclass(frozen=True)
class ExperimentsPage:
    deployment: list[dict[str, str]]  # render/deployment_view.py's rows
    top1: bool  # the deployment table's optional columns
    accuracy: bool
    unmeasured_span: int  # the columns an unmeasured deployment row's note spans
    rows: tuple[ExperimentRow, ...]
    md_rows: tuple[tuple[str, str, str, str, str], ...]  # title, before, after, speedup, outputs
    method: str


def speedup_class(e: Experiment) -> str:
    """Colour the speedup only when its whole quartile range is on one side of 1."""
    if e.clearly_faster:
        return "fits"
    if e.speedup_high is not None and e.speedup_high < 1.0:
        return "nofit"
    return ""


def outputs_text(e: Experiment) -> str:
    if e.outputs_match:
        return f"match (≤ {e.tolerance:.0e} rel.)"
    if e.outputs_match is None:
        return "not compared"
    return f"(max {e.max_abs_error:.2e})"


def measured_cells(e: Experiment) -> MeasuredCells:
    weights = (
        f"weights {nbytes(e.size_before_bytes)} → {nbytes(e.size_after_bytes)}"
        if e.size_before_bytes
        else ""
    )
    return MeasuredCells(
        before=ms(e.baseline_ms),
        after=ms(e.variant_ms),
        speedup_class=speedup_class(e),
        speedup=f"{e.speedup:.2f}×",
        range=f"{e.speedup_low:.2f}–{e.speedup_high:.2f}×",
        outputs_differ=e.outputs_match is False,
        outputs=outputs_text(e),
        note=weights + e.reason,
    )


def md_row(e: Experiment) -> tuple[str, str, str, str, str]:
    outputs = "match" if e.outputs_match else "differ"  # not compared reads as differ
    return (e.title, ms(e.baseline_ms), ms(e.variant_ms), speedup_text(e), outputs)


def experiments_page(x: ExperimentsSection) -> ExperimentsPage:
    deployment = deployment_rows(x)
    columns = shown_columns(deployment)
    return ExperimentsPage(
        deployment=deployment,
        top1=columns["top1"],
        accuracy=columns["accuracy"],
        unmeasured_span=DEPLOYMENT_FIGURES + columns["top1"] + columns["accuracy"],
        rows=tuple(
            ExperimentRow(
                e.title,
                e.status,
                measured_cells(e) if e.status == "measured" else None,
                e.reason,
            )
            for e in x.experiments
        ),
        md_rows=tuple(md_row(e) for e in x.experiments if e.status == "measured"),
        method=f"{x.method} Measuring time per side: {x.seconds_per_measurement} s.",
    )
