"""Renderers: pure views of a Report (HTML, Markdown, JSON, PDF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reporter.output import write_atomic
from reporter.report import Report, report_to_json

FORMATS = ("html", "json", "md", "pdf")
DEFAULT_FORMATS = ("html", "json", "md")


def _html(report: Report) -> str:
    from reporter.render.html import render_html

    return render_html(report)


def _md(report: Report) -> str:
    from reporter.render.markdown import render_markdown

    return render_markdown(report)


def _pdf(report: Report) -> bytes:
    from reporter.render.pdf import render_pdf

    return render_pdf(report)


RENDERERS: dict[str, Callable[[Report], str | bytes]] = {
    "json": report_to_json,
    "html": _html,
    "md": _md,
    "pdf": _pdf,
}


def write_report(report: Report, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    """Render each format and write it atomically as DIR/report.<ext>; JSON first."""
    written = []
    for fmt in sorted(formats, key=lambda f: f != "json"):
        path = out_dir / f"report.{fmt}"
        write_atomic(path, RENDERERS[fmt](report))
        written.append(path)
    return written
