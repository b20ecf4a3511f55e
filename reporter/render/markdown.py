"""Report -> Markdown for a code-review comment: headline, findings, top tables."""

from __future__ import annotations

from reporter.render.templates import environment
from reporter.render.view import view_model
from reporter.report import Report

MAX_CHARS = 60_000  # GitHub's comment limit is 65,536


def render_markdown(report: Report) -> str:
    text = environment("md").get_template("report.md.j2").render(**view_model(report, "md"))
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 200].rsplit("\n", 1)[0]
        text += "\n\n…cut to fit a review comment; the full report is in report.html.\n"
    return text
