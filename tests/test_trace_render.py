"""Inline SVG charts and the trace section's HTML/Markdown partials."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import jinja2
import pytest

from reporter.render import charts
from reporter.render.templates import environment
from reporter.render.trace_page import trace_page
from reporter.render.trace_view import trace_view
from reporter.report import ModelInfo, Report
from reporter.trace import analyse_paths
from tests.conftest import TRACE_DATA

REPO = Path(__file__).resolve().parents[1]
TRACES = TRACE_DATA
EVIL = '<img src=x onerror="alert(1)">'
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML or it raises
    assert root.tag == f"{SVG}svg"
    return root


def test_bar_chart_escapes_labels_and_scales_bars() -> None:
    svg = charts.bar_chart([(EVIL, 100.0), ("aten::mm", 50.0, "#b54708")], unit=" ms", title=EVIL)
    assert "<img" not in svg and "&lt;img" in svg
    root = parse(svg)
    rects = root.findall(f".//{SVG}rect")
    widths = [float(r.get("width")) for r in rects]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert rects[1].get("fill") == "#b54708"
    assert "script" not in svg.lower()


def test_colours_are_checked() -> None:
    svg = charts.bar_chart([("a", 1.0, 'red" onload="alert(1)')])
    assert "onload" not in svg and charts.PALETTE[0] in svg


def test_empty_or_zero_input_draws_nothing() -> None:
    assert charts.bar_chart([]) == ""
    assert charts.stacked_bar([("a", 0.0), ("b", float("nan"))]) == ""
    assert charts.stacked_bars([]) == ""


def test_stacked_bar_shares_and_legend() -> None:
    svg = charts.stacked_bar([("compute", 75.0), ("idle", 25.0)], unit=" ms", width=400)
    root = parse(svg)
    bars = [r for r in root.findall(f".//{SVG}rect") if r.get("height") != "12"]
    assert [float(r.get("width")) for r in bars] == [300.0, 100.0]
    assert "compute 75.0 ms (75.0%)" in svg and "idle 25.0 ms (25.0%)" in svg


def test_stacked_bars_share_colours_across_rows() -> None:
    svg = charts.stacked_bars(
        [
            ("rank 0", [("host wait", 3.0), ("other", 1.0)]),
            (EVIL, [("other", 2.0), ("host wait", 2.0)]),
        ],
        scale="max",
    )
    assert "<img" not in svg
    root = parse(svg)
    fills = {
        r.findtext(f"{SVG}title").split(": ")[-2]: r.get("fill")
        for r in root.findall(f".//{SVG}rect")
        if r.find(f"{SVG}title") is not None
    }
    assert fills["host wait"] != fills["other"]


def env(kind: str, with_charts: bool = True) -> jinja2.Environment:
    """The report's own environment, optionally without the `charts` global."""
    base = environment(kind)
    if with_charts:
        return base
    bare = base.overlay()
    bare.globals = {k: v for k, v in base.globals.items() if k != "charts"}
    return bare


def render(report: Report, kind: str, with_charts: bool = True) -> str:
    template = env(kind, with_charts).get_template(f"sections/trace.{kind}.j2")
    drawn = trace_view(report.trace) if with_charts and kind == "html" else None
    return template.render(report=report, trace=trace_page(report.trace, charts=drawn))


@cache
def real_report(*names: str) -> Report:
    section = analyse_paths([TRACES / n for n in names])
    return Report(model=ModelInfo(class_name="t", source="t"), kind="trace", trace=section)


GROUPS = [
    ("a100_alexnet.json.gz",),
    ("a100_cupti_counters.json.gz",),
    ("a100_nccl_training.json.gz",),
    ("cpu_mlp_training.json.gz",),
    ("two_rank_rank0.json.gz", "two_rank_rank1.json.gz"),
    ("v100_training_rank0.json.gz",),
]


@pytest.mark.parametrize("names", GROUPS, ids=lambda g: g[0].split(".")[0])
def test_partials_render_for_every_shared_trace(names: tuple[str, ...]) -> None:
    rep = real_report(*names)
    html = render(rep, "html")
    assert html.strip().startswith('<section id="trace">') and html.rstrip().endswith("</section>")
    md = render(rep, "md")
    assert md.startswith("### Trace analysis")
    if rep.trace.overall.has_gpu:
        assert html.count("<svg") >= 2  # breakdown and idle charts
        assert "Top kernels" in html and "| Top kernel |" in md
    if len(names) > 1:
        assert "<h3>Ranks</h3>" in html and "Stragglers" in md
    assert render(rep, "html", with_charts=False).count("<svg") == 0  # works without charts


def test_kernel_and_op_names_are_escaped(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000
    events = [
        {"ph": "X", "cat": "cpu_op", "name": EVIL, "pid": 1, "tid": 1, "ts": base, "dur": 50},
        {
            "ph": "X",
            "cat": "cuda_runtime",
            "name": "cudaLaunchKernel",
            "pid": 1,
            "tid": 1,
            "ts": base + 1,
            "dur": 5,
            "args": {"correlation": 1},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": f"void {EVIL}_kernel<float>()",
            "pid": 0,
            "tid": 7,
            "ts": base + 10,
            "dur": 40,
            "args": {"device": 0, "stream": 7, "correlation": 1},
        },
    ]
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"traceEvents": events}))
    rep = Report(model=ModelInfo(class_name="t", source="t"), trace=analyse_paths([path]))
    html = render(rep, "html")
    assert "<img" not in html and "&lt;img" in html
    md = render(rep, "md")
    assert "\\<img" in md and not re.search(r"(?<!\\)<img", md)  # Markdown-escaped
