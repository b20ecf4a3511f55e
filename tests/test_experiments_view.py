"""The experiments section's page: speedup colour, outputs verdict, notes, Markdown rows."""

from __future__ import annotations

from reporter.render.experiments_view import experiments_page, outputs_text, speedup_class
from reporter.report.experiments import Experiment, ExperimentsSection


def measured(**kw: object) -> Experiment:
    base = dict(
        name="x",
        title="A fix",
        status="measured",
        baseline_ms=2.0,
        variant_ms=1.0,
        speedup=2.0,
        speedup_low=1.5,
        speedup_high=2.5,
        tolerance=1e-6,
        outputs_match=True,
    )
    return Experiment(**{**base, **kw})  # type: ignore[arg-type]


def test_speedup_is_coloured_only_when_its_range_is_on_one_side_of_one() -> None:
    assert speedup_class(measured()) == "fits"
    assert speedup_class(measured(speedup_low=0.5, speedup_high=0.9)) == "nofit"
    assert speedup_class(measured(speedup_low=0.9, speedup_high=1.1)) == ""


def test_outputs_verdict() -> None:
    assert outputs_text(measured()) == "match (≤ 1e-06 rel.)"
    assert outputs_text(measured(outputs_match=None)) == "not compared"
    differ = measured(outputs_match=False, max_abs_error=0.0123)
    assert outputs_text(differ) == "(max 1.23e-02)"
    page = experiments_page(ExperimentsSection(experiments=[differ]))
    cells = page.rows[0].measured
    assert cells is not None and cells.outputs_differ


def test_weights_note_and_unmeasured_rows() -> None:
    sized = measured(size_before_bytes=2048, size_after_bytes=1024, reason="")
    failed = Experiment(name="y", title="B", status="failed", reason="no CUDA")
    page = experiments_page(ExperimentsSection(experiments=[sized, failed]))
    cells = page.rows[0].measured
    assert cells is not None and cells.note.startswith("weights ") and " → " in cells.note
    assert page.rows[1].measured is None and page.rows[1].reason == "no CUDA"
    # Markdown lists the measured ones only, and reads "not compared" as differ.
    uncompared = measured(title="C", outputs_match=None)
    md = experiments_page(ExperimentsSection(experiments=[failed, uncompared])).md_rows
    assert md == (("C", "2.000 ms", "1.000 ms", "2.00× (1.50–2.50)", "differ"),)


def test_unmeasured_deployment_note_spans_the_shown_figures() -> None:
    deploy = measured(name="fp16", deployment=True, top1_agreement=0.99)
    skipped = Experiment(name="int8", title="int8", status="skipped", deployment=True)
    page = experiments_page(ExperimentsSection(experiments=[deploy, skipped]))
    assert page.top1 and not page.accuracy
    assert page.unmeasured_span == 6
