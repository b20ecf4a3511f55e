"""Report.save and Report._repr_html_ (Jupyter): the report outside the CLI."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reporter.report import Report


def save(
    report: Report,
    folder: str | os.PathLike[str],
    formats: Sequence[str] = ("html", "json", "md"),
    paper: str = "a4",
) -> list[Path]:
    """Write report.<format> for each format into `folder`; return the paths."""
    from reporter.cli import parse_formats, write_files
    from reporter.errors import UsageError
    from reporter.output import prepare_out_dir

    chosen = parse_formats(",".join([formats] if isinstance(formats, str) else formats))
    written, missing = write_files(report, prepare_out_dir(Path(folder)), chosen, paper)
    if missing:
        raise UsageError(missing)
    return written


def repr_html(report: Report, height: int = 640) -> str:
    """The HTML report inside an iframe's srcdoc: self-contained, and its CSS cannot
    reach the notebook's page (nor the notebook's CSS the report)."""
    from reporter.render.html import render_html

    page = render_html(report)
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd" '
        'sandbox="allow-scripts allow-popups" '
        f'title="perfreport: {html.escape(report.model.class_name)}"></iframe>'
    )
