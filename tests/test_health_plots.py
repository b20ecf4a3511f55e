"""The health plots: log scale, broken lines at NaN, escaped labels, and the PDF carries them."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reporter.render.charts import histogram, lines, log_bars
from reporter.report import ModelInfo, Report, StageStatus
from reporter.report.health import (
    HealthSection,
    Histogram,
    LayerHealth,
    LayerHistograms,
    TrainingProbe,
)


def rect_widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', svg)]


def test_log_bars_are_proportional_to_log10_and_escape_labels() -> None:
    svg = log_bars([("<a>", 1e-6), ("b&c", 1e-3), ("d", 1.0), ("nan", math.nan)], title="t<")
    widths = rect_widths(svg)
    # axis from 1e-6 to 1e0: bar lengths 0, 1/2 and 1 of the full width; NaN draws none
    assert widths[0] == pytest.approx(0.5) and widths[3] == pytest.approx(0.5)
    assert widths[1] == pytest.approx(widths[2] / 2, rel=0.01)
    assert "&lt;a&gt;" in svg and "b&amp;c" in svg and "t&lt;" in svg and "<a>" not in svg
    assert "NaN/inf" in svg


def test_lines_break_at_non_finite_points() -> None:
    svg = lines([("run <1>", [(0, 3.0), (1, 2.0), (2, None), (3, 1.5), (4, 1.0)])], title="x")
    assert svg.count("<polyline") == 2 and "run &lt;1&gt;" in svg
    assert lines([("empty", [(0, None)])], title="x") == ""


def test_histogram_bar_heights_follow_counts() -> None:
    svg = histogram([0, 1, 2, 3], [2, 4, 1], title="w")
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill', svg)]
    assert heights[0] / heights[1] == pytest.approx(0.5) and heights[2] / heights[1] == 0.25


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_plots_reach_the_pdf(tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    from reporter.render.pdf import render_pdf

    probe = TrainingProbe(
        optimizer="adam",
        lr=1e-3,
        steps=3,
        steps_run=3,
        loss_source="loss_fn",
        losses=[2.0, 1.5, 1.2],
        layers=[
            LayerHealth("fc1", "Linear", 10, 1.0, 0.5, 0.4, 0.45, 1e-3, 0.5),
            LayerHealth("fc2", "Linear", 10, 1.0, 0.05, 0.04, 0.045, 1e-3, 0.05),
        ],
        histograms=[LayerHistograms("fc1", 10, Histogram([0, 1, 2], [3, 7]), None)],
    )
    report = Report(
        model=ModelInfo("Net", "net.py"),
        stages={"health": StageStatus("ok")},
        health=HealthSection(probe=probe),
    )
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(report))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Gradient norm per layer" in text and "Probe loss per step" in text
