"""`perfreport diff`: real pairs of reports (one model at two widths) and timing noise."""

from __future__ import annotations

import atexit
import copy
import json
import shutil
import tempfile
import textwrap
from functools import cache
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.diff import diff_reports
from reporter.profiling.stats import latency_stats
from reporter.render.diff_render import (
    render_diff_html,
    render_diff_markdown,
    render_diff_text,
)
from reporter.report import Finding, Report, load_report
from reporter.report.profile import TimingSection

MODEL = """
import torch
from torch import nn

WIDTH = {width}

def build_model():
    return nn.Sequential(nn.Linear(64, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))

def example_inputs():
    return torch.randn(4, 64)
"""
BATCH, NARROW, WIDE = 4, 32, 128


def params(width: int) -> int:
    return 64 * width + width + width * 10 + 10


def flops(width: int) -> int:
    # FlopCounterMode counts a multiply-add as 2 FLOPs; bias adds are not counted.
    return 2 * BATCH * (64 * width + width * 10)


@cache
def width_pair() -> tuple[Path, Path]:
    """report.json of the model at WIDTH 32 (base) and 128 (head), from real runs."""
    root = Path(tempfile.mkdtemp(prefix="perfreport-diff-test-"))
    atexit.register(shutil.rmtree, root, True)  # shared by several tests, removed at exit
    paths = []
    for name, width in (("narrow", NARROW), ("wide", WIDE)):
        source = root / f"{name}.py"
        source.write_text(textwrap.dedent(MODEL.format(width=width)))
        out = root / name
        assert main([str(source), "-o", str(out), "--only", "summary,flops,memory"]) == 0
        paths.append(out / "report.json")
    return paths[0], paths[1]


def pair() -> tuple[Report, Report]:
    base, head = width_pair()
    return load_report(base), load_report(head)


def metric(diff, key):  # type: ignore[no-untyped-def]
    return next(m for m in diff.metrics if m.key == key)


def test_two_widths_counts_and_verdicts() -> None:
    base, head = pair()
    diff = diff_reports(base, head)
    p = metric(diff, "params")
    assert (p.base, p.head) == (params(NARROW), params(WIDE))
    assert p.delta == params(WIDE) - params(NARROW)
    assert p.relative == pytest.approx(p.delta / params(NARROW))
    assert p.verdict == "worse"
    f = metric(diff, "flops")
    assert (f.base, f.head, f.verdict) == (flops(NARROW), flops(WIDE), "worse")
    assert metric(diff, "memory").verdict == "worse"
    assert {m.key for m in diff.metrics} == {"params", "flops", "memory", "training_memory"}
    assert diff.worse and not diff.notes


def test_two_widths_module_changes() -> None:
    diff = diff_reports(*pair())
    changes = {(c.name, c.metric): c for c in diff.modules}
    first = changes[("0", "flops")]
    assert (first.base, first.head) == (2 * BATCH * 64 * NARROW, 2 * BATCH * 64 * WIDE)
    assert first.relative == pytest.approx(WIDE / NARROW - 1)
    assert changes[("0", "params")].delta == 65 * (WIDE - NARROW)
    assert changes[("2", "params")].delta == 10 * (WIDE - NARROW)
    assert not any(c.name == "1" for c in diff.modules)  # ReLU: no FLOPs, no parameters
    # largest share of the model first
    assert diff.modules[0].name == "0"


def test_same_report_is_unchanged() -> None:
    base, _ = pair()
    diff = diff_reports(base, copy.deepcopy(base))
    assert {m.verdict for m in diff.metrics} == {"unchanged"}
    assert not diff.modules and not diff.findings_added and not diff.findings_removed


def test_findings_added_and_removed() -> None:
    base, head = pair()
    kept = Finding("dominant-layer", "warning", "0 takes 88% of FLOPs", target="0")
    moved = Finding("dominant-layer", "warning", "0 takes 91% of FLOPs", target="0")
    base.findings = [kept, Finding("tiny-batch", "info", "batch 4 is small")]
    head.findings = [moved, Finding("no-fusion", "critical", "nothing fused", target="")]
    diff = diff_reports(base, head)
    # the same rule on the same module is the same finding, although its numbers moved
    assert [f.rule for f in diff.findings_added] == ["no-fusion"]
    assert [f.rule for f in diff.findings_removed] == ["tiny-batch"]


def test_timing_in_one_run_only_is_shown_not_judged() -> None:
    base, head = pair()
    head.timing = TimingSection(
        latency_ms=latency_stats([5.0] * 6), throughput=800.0, batch_size=4, samples_ms=[5.0] * 6
    )
    change = metric(diff_reports(base, head), "latency_ms")
    assert change.base is None and change.head == 5.0
    assert change.verdict == "not compared" and change.note == "not measured in base"


def test_views_escape_module_names_and_fit_a_comment() -> None:
    base, head = pair()
    for row in head.summary.layers:
        if row.name == "0":
            row.name = "<script>alert(1)</script>|x"
    diff = diff_reports(base, head)
    html = render_diff_html(diff)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    md = render_diff_markdown(diff)
    assert len(md) < 60_000
    assert "| Parameters | 2.41 k | 9.61 k |" in md
    assert "<script>alert(1)</script>\\|x" in md  # inside a code span, the pipe escaped
    text = render_diff_text(diff)
    assert "Forward FLOPs" in text and "+300.0%" in text  # 4x the FLOPs


def test_cli_diff_writes_views_and_fails_on_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = width_pair()
    assert main(["diff", str(base), str(head), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Parameters" in out and "worse" in out
    data = json.loads((tmp_path / "diff.json").read_text())
    assert data["diff"]["worse"] == ["params", "flops", "memory", "training_memory"]
    assert (tmp_path / "diff.md").stat().st_size < 60_000
    assert "<!DOCTYPE html>" in (tmp_path / "diff.html").read_text()
    assert main(["diff", str(base), str(head), "--fail-on-regression"]) == 1
    assert main(["diff", str(head), str(head), "--fail-on-regression"]) == 0
    # smaller is better: the reverse diff is all improvement
    assert main(["diff", str(head), str(base), "--fail-on-regression"]) == 0


def test_cli_diff_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = width_pair()
    assert main(["diff", str(base), str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err
    assert main(["diff", str(base), str(base), "-o", str(tmp_path), "--format", "pdf"]) == 2
    assert "--format: unknown pdf" in capsys.readouterr().err
