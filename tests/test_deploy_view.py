"""The deployment readiness page: each check's outcome text and the compile graph count."""

from __future__ import annotations

from reporter.render.deploy_view import MD_BREAKS, check_row, deploy_page
from reporter.report.deploy import CheckResult, DeploySection, GraphBreak


def test_outcomes() -> None:
    ok = check_row("torch.export", "torch.export", CheckResult("ok", seconds=0.391))
    assert (ok.mark, ok.text, ok.md_lead, ok.seconds) == ("✓ works", "", "works", "0.39 s")
    skipped = check_row("ONNX export", "ONNX export", CheckResult("skipped", reason="no onnx"))
    assert (skipped.mark, skipped.text, skipped.seconds) == ("", "skipped: no onnx", "")
    failed = check_row("x", "x", CheckResult("failed", error="boom", location="m.py:3"))
    assert (failed.mark_class, failed.text, failed.location) == ("bad", ": boom", "m.py:3")
    assert (failed.md_lead, failed.detail) == ("**fails**: ", "boom")


def test_a_location_is_shown_only_for_a_failure() -> None:
    assert check_row("x", "x", CheckResult("skipped", location="m.py:3")).location == ""


def test_graph_count_only_when_compile_worked_and_markdown_lists_the_first_breaks() -> None:
    breaks = [GraphBreak(reason=f"r{i}") for i in range(MD_BREAKS + 2)]
    ok, failed = CheckResult("ok"), CheckResult("failed", error="e")
    page = deploy_page(DeploySection(ok, ok, ok, graph_count=3, graph_breaks=breaks))
    assert page.graphs == f"3 graph(s), {MD_BREAKS + 2} distinct break(s)"
    assert len(page.md_breaks) == MD_BREAKS
    assert [c.md_label for c in page.checks] == ["torch.export", "torch.compile", "ONNX export"]
    assert deploy_page(DeploySection(ok, failed, ok)).graphs == ""
