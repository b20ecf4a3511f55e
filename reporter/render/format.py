"""Number formatting shared by the HTML, Markdown and terminal views."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from reporter.sanitize import one_line


def count(n: float | None) -> str:
    """124439808 -> '124.44 M'; small numbers stay exact."""
    if n is None:
        return "–"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def exact(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def flops(n: float | None) -> str:
    """191879168 -> '191.88 MFLOP'."""
    if n is None:
        return "–"
    text = count(n)
    return text + "FLOP" if text[-1].isalpha() else text + " FLOP"


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


def nbytes(n: float | None) -> str:
    """Binary units, as memory is sized: 1 MiB = 1,048,576 bytes."""
    if n is None:
        return "–"
    for factor, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{int(n)} B"


def ms(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n:.3f} ms" if n < 10 else f"{n:.1f} ms"


def us(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1000:.2f} ms" if n >= 1000 else f"{n:.1f} µs"


def rate(x: float | None) -> str:
    """Samples per second with thousands separated: 139,577.8."""
    return "–" if x is None else f"{x:,.1f}"


def percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def shape(s: Any) -> str:
    """[[1, 10]] -> '1×10'; several outputs joined by ', '."""
    if not s:
        return "–"
    if isinstance(s, (list, tuple)) and all(isinstance(v, int) for v in s):
        return "×".join(str(v) for v in s)
    if isinstance(s, (list, tuple)):
        return ", ".join(shape(v) for v in s)
    return str(s)


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


def graph_svg(svg: object) -> Markup:
    """The graph's SVG from the report, cut down to what Graphviz writes (report.json may
    have been edited); a note in its place when it cannot be vouched for."""
    from reporter.sanitize import UnsafeSvg, safe_svg

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
}
