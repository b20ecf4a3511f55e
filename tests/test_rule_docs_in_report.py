"""Each finding's rule is explained inside the report itself (no docs/rules.md needed)."""

from __future__ import annotations

import html
from pathlib import Path

from conftest import SAMPLES
from helpers import report_for

from reporter.render.html import render_html
from reporter.render.markdown import render_markdown
from reporter.report import report_from_json, report_to_json
from reporter.rules import RULES


def test_findings_carry_and_render_their_rule_doc(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary")
    rules = {f.rule for f in report.findings}
    assert "dominant-layer" in rules  # fc1 holds most of the weights
    for f in report.findings:
        assert RULES[f.rule].doc in f.rule_doc
    page = render_html(report)
    md = render_markdown(report)
    assert "docs/rules.md" not in page
    for rule in rules:
        assert f'id="rule-{rule}"' in page and f'href="#rule-{rule}"' in page
        assert RULES[rule].doc in html.unescape(page)
        assert f"- `{rule}`: " in md
    assert "structure.dominant_layer_share = 0.5" in page.replace("\\_", "_")


def test_an_older_report_json_gets_the_docs_from_the_registry(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary")
    for f in report.findings:
        f.rule_doc = ""  # as written before findings carried their documentation
    again = report_from_json(report_to_json(report))
    page = html.unescape(render_html(again))
    for f in again.findings:
        assert f'id="rule-{f.rule}"' in page and RULES[f.rule].doc in page
