"""Renderers: pure views of a Report (HTML, Markdown, JSON, PDF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reporter.output import write_atomic
from reporter.report import Report, report_to_json

FORMATS = ("html", "json", "md", "pdf")


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


def write_report(
    report: Report,
    out_dir: Path,
    formats: tuple[str, ...],
    *,
    paper: str = "a4",
    warn: Callable[[str], None] | None = None,
) -> list[Path]:
    """Render each format and write it atomically as DIR/report.<ext>; JSON first, PDF last.

    Without WeasyPrint (or Pango) the PDF is left out and `warn` gets one line naming what
    to install; with no `warn` the error is raised after the other files are written."""
    from reporter.render.pdf import PdfUnavailable, render_pdf

    written = []
    missing_pdf: PdfUnavailable | None = None
    for fmt in sorted(formats, key=lambda f: (f != "json", f == "pdf")):
        path = out_dir / f"report.{fmt}"
        try:
            data = render_pdf(report, paper=paper) if fmt == "pdf" else RENDERERS[fmt](report)
        except PdfUnavailable as exc:
            missing_pdf = exc
            continue
        write_atomic(path, data)
        written.append(path)
    if missing_pdf is not None:
        if warn is None:
            raise missing_pdf
        warn(str(missing_pdf))
    return written
