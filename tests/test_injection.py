"""Untrusted text (module names, messages, an edited report.json) reaches no view as
markup, command or broken syntax: HTML, SVG, Markdown, terminal, profiler trace, graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cdp import chromium_path, open_page
from conftest import SAMPLES

from reporter.render.markdown import render_markdown
from reporter.report import Finding, ModelInfo, Report
from reporter.sanitize import UnsafeSvg, safe_svg, shortened, terminal_text

EVIL_SVG_PARTS = [
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/meta"/>',
    '<a xlink:href="javascript:alert(1)"><text x="1" y="1">js link</text></a>',
    '<a href="http://127.0.0.1:9/away"><text x="1" y="9">away</text></a>',
    "<script>alert(2)</script>",
    '<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="http://127.0.0.1:9/f"/></foreignObject>',
    '<image href="http://127.0.0.1:9/img.png" width="9" height="9"/>',
    '<polygon points="0,0 1,1" onclick="alert(3)" fill="url(http://127.0.0.1:9/fill)"/>',
]


@pytest.fixture(scope="module")
def graph_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reporter.cli import main

    out = tmp_path_factory.mktemp("graph") / "out"
    assert main([str(SAMPLES / "mlp.py"), "-o", str(out), "--only", "summary,graph"]) == 0
    return out / "report.json"


def _edited(report_json: Path, tmp: Path) -> Path:
    data = json.loads(report_json.read_text())
    svg = data["graph"]["svg"]
    data["graph"]["svg"] = svg.replace("</svg>", "".join(EVIL_SVG_PARTS) + "</svg>")
    edited = tmp / "edited" / "report.json"
    edited.parent.mkdir()
    edited.write_text(json.dumps(data))
    return edited


def test_render_keeps_graphviz_svg_and_drops_everything_else(cli, graph_report, tmp_path):
    edited = _edited(graph_report, tmp_path)
    assert cli("render", edited).code == 0
    html = (edited.parent / "report.html").read_text()
    graph = html[html.index('<div class="graph-box">') :]
    graph = graph[: graph.index("</svg>")]
    for word in ("refresh", "javascript:", "127.0.0.1", "<script", "foreignObject", "onclick"):
        assert word not in graph, word
    assert "<image" not in graph and "js link" in graph  # the text stays, the link goes
    assert graph.count("<polygon") > 5 and "<text" in graph  # the drawing itself is kept


@pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")
def test_chromium_follows_nothing_from_an_edited_graph(cli, graph_report, tmp_path) -> None:
    edited = _edited(graph_report, tmp_path)
    assert cli("render", edited).code == 0
    page = edited.parent / "report.html"
    log = open_page(page.as_uri(), "document.location.href")
    assert log.evaluated == page.as_uri()
    assert log.dialogs == []
    assert [u for u in log.requests if u != page.as_uri()] == [], log.requests


def test_svg_that_is_not_plain_graphviz_output_is_refused() -> None:
    for svg in (
        '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g>',
        '<html xmlns="http://www.w3.org/1999/xhtml"><meta http-equiv="refresh"/></html>',
    ):
        with pytest.raises(UnsafeSvg):
            safe_svg(svg)


def test_svg_links_keep_only_a_fragment_and_never_a_target() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<a xlink:href="#node1" target="_blank"><text>in page</text></a>'
        '<a xlink:href="https://evil.example" target="_top"><text>away</text></a></svg>'
    )
    out = safe_svg(svg)
    assert out.count("target") == 0
    assert out.count('xlink:href="#node1"') == 1 and "evil.example" not in out
    assert "in page" in out and "away" in out


CARRIAGE = "fc\r\r![x](https://evil.example/x.png)\r\r[click](https://evil.example)"


def _report_with(name: str, **finding: object) -> Report:
    report = Report(model=ModelInfo(class_name=name, source=f"{name}.py"))
    fields = {"rule": "r", "severity": "warning", "title": f"`{name}` is slow", "evidence": {}}
    report.findings = [Finding(**{**fields, **finding})]  # type: ignore[arg-type]
    return report


def test_markdown_has_no_line_break_or_control_character_from_user_text() -> None:
    md = render_markdown(_report_with(CARRIAGE))
    assert "\r" not in md and "\x0b" not in md
    for line in md.splitlines():  # nothing the name carries starts a line of its own
        assert not line.lstrip().startswith(("![", "[click"))
    # The image and the link appear only inside code spans or escaped
    assert "![x](https" not in re.sub(r"(`+)(?:(?!\1).)+\1", "", md)


def test_markdown_escapes_severity_and_evidence_keys() -> None:
    md = render_markdown(
        _report_with(
            "m",
            severity="![s](https://evil.example/s.png)",
            evidence={"[k](https://evil.example/k)": "v", "<img src=x>": 1},
        )
    )
    assert "![s](" not in md and "[k](" not in md
    assert "\\[k\\](https://evil.example/k)" in md and "\\<img src=x\\>" in md


def test_terminal_gets_no_control_characters(cli, tmp_path, model_file) -> None:
    source = """
    import torch
    from torch import nn

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("bad \\x1b]0;pwned\\x07 title \\x1b[2J cleared \\x9b31m")

    def build_model():
        m = nn.Sequential()
        m.add_module("esc\\x1b[2Jname\\rcr", nn.Linear(8, 8))
        m.add_module("boom", Boom())
        return m

    def example_inputs():
        return torch.randn(2, 8)
    """
    result = cli(model_file(source), "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 2
    assert "bad" in result.err and "pwned" in result.err  # said, but inert
    for ch in ("\x1b", "\x07", "\r", "\x9b"):
        assert ch not in result.err + result.out


def test_terminal_text_keeps_newlines_and_tabs() -> None:
    assert terminal_text("a\x1b[2Jb\n\tc\r\x00\u202e") == "a[2Jb\n\tc"


NAMES_MODEL = """
import torch
from torch import nn

def build_model():
    m = nn.Sequential()
    m.add_module('q"uote\\\\back\\x00nul\\x1besc', nn.Linear(8, 8))
    m.add_module("plain", nn.Linear(8, 4))
    return m

def example_inputs():
    return torch.randn(2, 8)
"""


def test_names_that_break_the_trace_and_the_graph(cli, tmp_path, model_file) -> None:
    """torch writes a range name unescaped, dot fails on NUL: the names used there are
    made safe, and the report keeps the real name."""
    out = tmp_path / "out"
    only = "summary,graph,profile,trace"
    result = cli(model_file(NAMES_MODEL), "-o", out, "--only", only, "--profile-steps", "0,1,1")
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text())
    for stage in only.split(","):
        assert data["stages"][stage]["status"] == "ok", data["stages"][stage]
    real = 'q"uote\\back\x00nul\x1besc'
    assert real in [m["name"] for m in data["profile"]["modules"]]
    assert any(real in n["modules"] for n in data["graph"]["nodes"])


def test_long_strings_are_shortened_for_print_only() -> None:
    from reporter.render.pdf import shortened_report

    report = _report_with("x" * 10_000)
    short = shortened_report(report)
    assert short.model.class_name == "x" * 119 + "…"
    assert len(report.model.class_name) == 10_000  # the report itself keeps the name
    sentence = " ".join(["word"] * 100)  # 499 characters, none of them long words
    assert shortened({"svg": "s" * 1000, "k" * 400: [sentence, "a " * 1500]}) == {
        "svg": "s" * 1000,
        "k" * 119 + "…": [sentence, ("a " * 1500)[:1999] + "…"],
    }


def test_the_pdf_lays_out_the_shortened_report(monkeypatch) -> None:
    """render_pdf hands the print HTML the shortened strings (a 10,000-character name
    took WeasyPrint 10 minutes)."""
    import reporter.render.pdf as pdf

    seen: list[Report] = []

    def capture(report: Report, *, for_print: bool = False) -> str:
        seen.append(report)
        return "<html><head></head><body></body></html>"

    monkeypatch.setattr(pdf, "render_html", capture)
    try:
        pdf.render_pdf(_report_with("y" * 10_000))
    except pdf.PdfUnavailable:
        pytest.skip("WeasyPrint is not installed")
    assert len(seen) == 1 and len(seen[0].model.class_name) == 120
