"""Template filters: Markdown and HTML escaping, plus the number formatters of reporter.units."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from reporter.sanitize import UnsafeSvg, one_line, safe_svg
from reporter.units import count, exact, flops, ms, nbytes, percent, rate, shape, us


def md_inline(text: object) -> str:
    """Like md_escape, but `backticked` spans stay code spans."""
    parts = re.split(r"`([^`]+)`", str(text))
    return "".join(mdcode(p) if i % 2 else md_escape(p) for i, p in enumerate(parts))


def mdcode(text: object) -> str:
    """User data as a Markdown code span: a fence longer than any backtick run inside."""
    s = one_line(text)  # a line break (\r too) would end the code span
    longest = max((len(m) for m in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}".replace("|", "\\|")


def inline_code(text: object) -> Markup:
    """Escape text for HTML, then show `backticked` spans as <code>."""
    escaped = str(escape(str(text)))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def md_escape(text: object) -> str:
    """Make user data (module names, messages) inert in Markdown tables and text."""
    s = str(text)
    for ch in "\\`*_{}[]<>|#":
        s = s.replace(ch, "\\" + ch)
    return one_line(s)


def sci(x: float | None) -> str:
    """A norm or ratio in scientific notation, "–" where there is none."""
    return "–" if x is None else f"{x:.2e}"


def graph_svg(svg: object) -> Markup:
    """The graph's SVG from the report, cut down to what Graphviz writes (report.json may
    have been edited); a note in its place when it cannot be vouched for."""
    try:
        return Markup(safe_svg(str(svg)))
    except UnsafeSvg as exc:
        return Markup('<p class="note">graph not shown: {}</p>').format(str(exc))


FILTERS = {
    "graph_svg": graph_svg,
    "md": md_escape,
    "code": inline_code,
    "mdcode": mdcode,
    "mdinline": md_inline,
    "count": count,
    "exact": exact,
    "flops": flops,
    "nbytes": nbytes,
    "ms": ms,
    "us": us,
    "percent": percent,
    "rate": rate,
    "shape": shape,
    "sci": sci,
}
