"""Untrusted text made inert for where it goes: terminal, Markdown, profiler ranges,
Graphviz labels, print; and an SVG from report.json cut down to what Graphviz writes.

Module names, exception messages and report.json contents are data the model file or the
person who edited the report chose. The report keeps them as they are; only the views
change them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# C0 and C1 control characters, DEL, and Unicode's line/paragraph separators and
# bidirectional overrides (which reorder what a terminal or a code review shows).
_OTHER_CONTROLS = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROLS = "\x00-\x1f" + _OTHER_CONTROLS
CONTROL = re.compile(f"[{_CONTROLS}]")
CONTROL_BUT_NEWLINE_TAB = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER_CONTROLS}]")
LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def terminal_text(text: object) -> str:
    """Text for the terminal: no escape sequences (ESC, OSC, CSI), no carriage returns
    that overwrite a line; newlines and tabs stay."""
    return CONTROL_BUT_NEWLINE_TAB.sub("", str(text))


def one_line(text: object) -> str:
    """Every line break a space, every other control character removed."""
    return CONTROL.sub("", LINE_BREAK.sub(" ", str(text)))


def range_name(text: object) -> str:
    """A name torch can write into its trace JSON and dot into its SVG: torch writes
    profiler range names unescaped, so a quote, a backslash or a control character would
    make the trace invalid JSON."""
    return re.sub(f'["\\\\{_CONTROLS}]', "?", str(text))


def label_text(text: object) -> str:
    """A Graphviz label: NUL and other control characters make dot fail."""
    return CONTROL.sub("?", LINE_BREAK.sub(" ", str(text)))


PRINT_WORD = 120  # characters of one unbroken word in the PDF
PRINT_LIMIT = 2000  # characters of one string in the PDF
LONG_WORD = re.compile(f"\\S{{{PRINT_WORD + 1},}}")


def short(text: str, limit: int = PRINT_LIMIT) -> str:
    """`text` for print: each word cut to PRINT_WORD characters and the whole to `limit`,
    each cut marked with an ellipsis. WeasyPrint lays a long unbroken word out in time
    quadratic in its length (a 10,000-character module name: 10 minutes); sentences
    (a method, a message) stay whole."""
    text = LONG_WORD.sub(lambda m: m[0][: PRINT_WORD - 1] + "…", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shortened(data: Any, keep: frozenset[str] = frozenset({"svg"})) -> Any:
    """JSON data with every string (and key) shortened for print, except under `keep`."""
    if isinstance(data, str):
        return short(data)
    if isinstance(data, list):
        return [shortened(v, keep) for v in data]
    if isinstance(data, dict):
        return {
            (short(k) if isinstance(k, str) else k): (v if k in keep else shortened(v, keep))
            for k, v in data.items()
        }
    return data


# ---------------------------------------------------------------- SVG from report.json
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# What Graphviz's SVG renderer writes, and nothing else.
SVG_ELEMENTS = {
    "svg", "g", "title", "polygon", "polyline", "path", "ellipse", "circle", "rect",
    "line", "text", "tspan", "a", "defs", "linearGradient", "radialGradient", "stop",
}  # fmt: skip
SVG_ATTRIBUTES = {
    "id", "class", "transform", "points", "d", "cx", "cy", "rx", "ry", "r", "x", "y",
    "x1", "y1", "x2", "y2", "width", "height", "viewBox", "fill", "stroke",
    "stroke-width", "stroke-dasharray", "stroke-opacity", "fill-opacity", "font-family",
    "font-size", "font-weight", "font-style", "text-anchor", "offset", "stop-color",
    "stop-opacity", "gradientUnits", "preserveAspectRatio", "version", "title",
    "stroke-linecap", "stroke-linejoin", "fill-rule", "opacity", "font-stretch",
    "text-decoration", "rotate", "href",
}  # fmt: skip
# Attribute values must not reach outside the page: url() only to a fragment.
OUTSIDE = re.compile(r"url\(\s*['\"]?(?!#)|javascript:|data:|expression\(", re.IGNORECASE)


class UnsafeSvg(ValueError):
    """The SVG is not Graphviz output this module can vouch for."""


def safe_svg(svg: str) -> str:
    """Graphviz's SVG with only its own elements and attributes; links only to fragments.

    Anything else (script, foreignObject, meta, style, event attributes, a link to
    another page) is dropped. Raises UnsafeSvg when the text is not one well-formed SVG
    element (a DOCTYPE or an entity declaration is refused outright: no expansion)."""
    start = svg.find("<svg")
    body = re.sub(r"<!--.*?-->", "", svg[start:] if start >= 0 else svg, flags=re.DOTALL)
    if "<!" in body or "<?" in body:
        raise UnsafeSvg("declarations in the SVG")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise UnsafeSvg(f"not well-formed: {exc}") from None
    if _local(root.tag) != "svg":
        raise UnsafeSvg("the root is not <svg>")
    _clean(root)
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    return ET.tostring(root, encoding="unicode")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _clean(element: ET.Element) -> None:
    for child in list(element):
        if _local(child.tag) not in SVG_ELEMENTS or not child.tag.startswith(f"{{{SVG_NS}}}"):
            element.remove(child)
            continue
        _clean(child)
    for name in list(element.attrib):
        local, value = _local(name), element.attrib[name]
        namespaced = name.startswith("{") and not name.startswith(f"{{{XLINK_NS}}}")
        if namespaced or local not in SVG_ATTRIBUTES or OUTSIDE.search(value):
            del element.attrib[name]
        elif local == "href" and not value.startswith("#"):
            del element.attrib[name]  # a link to a fragment of the page only
