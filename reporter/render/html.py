"""Report -> one self-contained HTML page (inline CSS, SVG and script; no network)."""

from __future__ import annotations

import secrets

from reporter.render.templates import environment, templates_dir
from reporter.render.view import view_model
from reporter.report import Report


def render_html(report: Report, *, for_print: bool = False) -> str:
    """for_print drops the script and interactive parts (used for the PDF)."""
    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    return (
        environment("html")
        .get_template("report.html.j2")
        .render(
            **view_model(report, "html", for_print=for_print),
            css=css,
            for_print=for_print,
            nonce=secrets.token_urlsafe(16),
        )
    )
