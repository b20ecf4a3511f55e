"""Golden outputs: fixed report.json files rendered to HTML and Markdown, compared byte for
byte with the files kept in tests/golden/ (as torchinfo and coverage.py do).

A change to a template, a view or a number format shows up here as a diff to review. When
the change is meant, rewrite the files and commit them with it:

    pytest tests/test_golden.py --update-golden      # or PERFREPORT_UPDATE_GOLDEN=1

The inputs (tests/golden/reports/*.json) were written once by `perfreport ... --format
json` and `perfreport trace ...`; they are never rewritten. The trace analysis of the same
trace files is compared with the section they hold, so the figures stay the same too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reporter.render.html import render_html
from reporter.render.markdown import render_markdown
from reporter.report import load_report, report_to_json
from reporter.report.base import to_data
from reporter.trace import analyse_paths

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
INPUTS = sorted((GOLDEN / "reports").glob("*.json"))
TRACE_INPUTS = [p for p in INPUTS if p.name.startswith("trace-")]
# The one part of a page that changes on every render: the script's CSP nonce.
_NONCE = re.compile(r"(nonce-|nonce=\")[A-Za-z0-9_-]+")


@pytest.fixture
def update(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden")) or (
        os.environ.get("PERFREPORT_UPDATE_GOLDEN") == "1"
    )


def normalise_html(html: str) -> str:
    return _NONCE.sub(r"\1NONCE", html)


def check(path: Path, text: str, update: bool) -> None:
    if update:
        with path.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return
    assert path.exists(), f"{path} is missing: run pytest --update-golden"
    with path.open(encoding="utf-8", newline="") as fh:
        expected = fh.read()
    if text != expected:
        at = next(
            (i for i, (a, b) in enumerate(zip(text, expected, strict=False)) if a != b),
            min(len(text), len(expected)),
        )
        pytest.fail(
            f"{path.name} differs from the rendered output at character {at}:\n"
            f"  golden:   {expected[max(0, at - 80) : at + 80]!r}\n"
            f"  rendered: {text[max(0, at - 80) : at + 80]!r}\n"
            "If the change is meant: pytest tests/test_golden.py --update-golden"
        )


def test_inputs_are_there() -> None:
    assert len(INPUTS) >= 8, INPUTS
    assert TRACE_INPUTS


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_html(source: Path, update: bool) -> None:
    html = normalise_html(render_html(load_report(source)))
    check(GOLDEN / f"{source.stem}.html", html, update)


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_markdown(source: Path, update: bool) -> None:
    check(GOLDEN / f"{source.stem}.md", render_markdown(load_report(source)), update)


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_json(source: Path, update: bool) -> None:
    """report.json as `perfreport render --format json` writes it again."""
    check(GOLDEN / f"{source.stem}.json", report_to_json(load_report(source)), update)


def test_render_command_writes_the_golden_files(cli: Callable[..., Any], tmp_path: Path) -> None:
    """`perfreport render` writes the same bytes the renderers return (one input each kind)."""
    for source in (GOLDEN / "reports" / "model-mlp.json", TRACE_INPUTS[0]):
        out = tmp_path / source.stem
        result = cli("render", source, "-o", out, "--format", "html,md,json", "-q")
        assert result.code == 0, result.err
        html = (out / "report.html").read_bytes().decode("utf-8")
        assert normalise_html(html) == (GOLDEN / f"{source.stem}.html").read_text(encoding="utf-8")
        for ext in ("md", "json"):
            written = (out / f"report.{ext}").read_bytes()
            assert written == (GOLDEN / f"{source.stem}.{ext}").read_bytes(), ext


def test_html_nonce_is_the_only_change_between_renders() -> None:
    report = load_report(INPUTS[0])
    first, second = render_html(report), render_html(report)
    assert first != second  # a fresh nonce each time
    assert normalise_html(first) == normalise_html(second)


@pytest.mark.parametrize("source", TRACE_INPUTS, ids=lambda p: p.stem)
def test_trace_analysis(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace files analysed now give, as JSON, the section the report holds (the
    measured analysis time aside); its files are named relative to the repository."""
    stored = json.loads(source.read_text(encoding="utf-8"))["trace"]
    monkeypatch.chdir(REPO)
    section = analyse_paths([Path(f) for f in stored["files"]])
    section.analysis_seconds = stored["analysis_seconds"]
    assert json.dumps(to_data(section), indent=1) == json.dumps(stored, indent=1)
