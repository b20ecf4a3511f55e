"""The Jinja2 environment over the templates folder, wherever it was installed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from reporter.render.format import FILTERS
from reporter.sanitize import one_line


def templates_dir() -> Path:
    """templates/ is beside the package in a checkout and inside it in a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise FileNotFoundError(f"perfreport's templates are missing (looked in {here})")


PRINT_ROWS = 20  # long tables keep this many rows in the PDF; HTML and JSON keep all


@cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: compiling them costs 0.5 s of every report.

    Jinja keeps them in a per-user folder (mode 0700) under the temporary directory, keyed
    by each template's source checksum, and writes them atomically.
    """
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no usable temporary folder: compile every time
        return None


def _one_line_md(value: object) -> object:
    if not isinstance(value, str) or value == "\n":  # {{ "\n" }}: the template's own
        return value
    return one_line(value)


@cache
def environment(kind: str) -> jinja2.Environment:
    """kind "html" escapes every value; "md" does not (Markdown escaping is explicit)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=kind == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
        # Markdown: no value may start a new line (a table row, a heading, an image), so
        # every line break and control character in an interpolated value goes.
        finalize=_one_line_md if kind == "md" else None,
    )
    env.filters.update(FILTERS)
    env.globals["PRINT_ROWS"] = PRINT_ROWS
    env.globals["for_print"] = False  # render_html(for_print=True) overrides it
    return env
