"""User data in the report (module names, paths, messages) cannot run or load anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cdp import chromium_path, open_page

EVIL_SCRIPT = "<script>alert(1)</script>"
EVIL_ATTR = '"><img src=x onerror=alert(1)>'

EVIL_MODEL = f"""
import torch
from torch import nn

def build_model():
    m = nn.Sequential()
    m.add_module({EVIL_SCRIPT!r}, nn.Linear(8, 8))
    m.add_module({EVIL_ATTR!r}, nn.Linear(8, 4))
    return m

def example_inputs():
    return torch.randn(2, 8)
"""


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reporter.cli import main

    tmp = tmp_path_factory.mktemp("evil")
    model = tmp / "evil_model.py"
    model.write_text(EVIL_MODEL)
    out = tmp / "out"
    assert main([str(model), "-o", str(out), "--only", "summary,flops,memory,graph"]) == 0
    return out


def test_names_are_escaped_in_html_and_markdown(evil_report: Path) -> None:
    html = (evil_report / "report.html").read_text()
    assert EVIL_SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    md = (evil_report / "report.md").read_text()
    outside_code = re.sub(r"(`+)(?:(?!\1).)+\1", "", md)  # code spans show text literally
    assert "<script>" not in outside_code and "<img" not in outside_code
    assert EVIL_SCRIPT in md  # but the name is still there to read


def test_html_references_nothing_outside_itself(evil_report: Path) -> None:
    html = (evil_report / "report.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    tags = _tags(html)
    assert "link" not in {t for t, _ in tags} and "iframe" not in {t for t, _ in tags}
    assert not re.search(r"@import", html)
    for tag, attrs in tags:
        for name, value in attrs:
            if name not in URL_ATTRS or not value:
                continue
            if tag == "a" and name in ("href", "xlink:href") and _is_link(value):
                continue  # a link the reader may click; the page loads nothing from it
            assert value.startswith(("#", "data:")), f"<{tag} {name}={value}> leaves the page"
    for url in re.findall(r"url\(\s*['\"]?([^)'\"]+)", html):
        assert url.startswith(("data:", "#")), f"external url(): {url}"


def _is_link(value: str) -> bool:
    """Links to the files beside the report (graph.svg) or to documentation pages."""
    return value.startswith(("#", "https://")) or re.fullmatch(r"[\w.-]+", value) is not None


URL_ATTRS = {"src", "href", "xlink:href", "action", "formaction", "poster", "data", "srcset"}


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of the page with its attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collect().feed(html)
    return found


@pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")
def test_chromium_runs_no_injected_script_and_makes_no_request(evil_report: Path) -> None:
    page = evil_report / "report.html"
    log = open_page(
        page.as_uri(),
        "JSON.stringify({scripts: document.scripts.length, imgs: document.images.length,"
        " text: document.body.innerText})",
    )
    import json

    state = json.loads(log.evaluated)
    assert log.dialogs == [], f"a dialog opened: {log.dialogs}"
    assert state["scripts"] == 1  # only the report's own (nonce-allowed) sorting script
    assert state["imgs"] == 0
    assert EVIL_SCRIPT in state["text"]  # shown as text
    assert EVIL_ATTR in state["text"]
    assert [u for u in log.requests if u != page.as_uri()] == [], log.requests
