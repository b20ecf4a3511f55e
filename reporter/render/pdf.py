"""Report -> PDF with WeasyPrint, from the HTML templates plus templates/print.css.

WeasyPrint is a dependency, but Pango is a system library it loads at import time: without
either ``render_pdf`` raises ``PdfUnavailable``; the other formats are still written and the
CLI exits 2.
"""

from __future__ import annotations

import base64
import html as html_lib
import re
import xml.etree.ElementTree as ET
from typing import Any

from reporter.render.html import render_html
from reporter.render.templates import templates_dir
from reporter.report import Report

PAPERS = {"a4": "A4", "letter": "letter"}
DEBIAN_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0"


class PdfUnavailable(RuntimeError):
    """WeasyPrint or its system libraries are missing; the message says what to install."""


def render_pdf(report: Report, *, paper: str = "a4") -> bytes:
    """The HTML report laid out for print: paper size, running header, page numbers."""
    weasyprint = _import_weasyprint()
    if paper not in PAPERS:
        raise ValueError(f"paper {paper!r}: use {', '.join(PAPERS)}")
    report = shortened_report(report)
    html = svgs_as_images(with_print_css(render_html(report, for_print=True), report, paper))
    fetcher = data_only_fetcher(weasyprint)
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher)
    return document.write_pdf()


def shortened_report(report: Report) -> Report:
    """The report with every string cut for print (the graph's SVG aside): WeasyPrint's
    line breaking is quadratic in the length of an unbroken word."""
    from reporter.report import from_data, to_data
    from reporter.sanitize import shortened

    return from_data(Report, shortened(to_data(report)))


def with_print_css(html: str, report: Report, paper: str) -> str:
    """Append the print rules to the page's own styles. Stylesheets handed to write_pdf
    count as user styles, which lose to the page's author styles, so they go in <head>."""
    css = print_css() + page_css(report, paper)
    return html.replace("</head>", f"<style>{css}</style>\n</head>", 1)


INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
SVG_NS = "http://www.w3.org/2000/svg"
ROOT_STYLE = re.compile(r"""\sstyle=("[^"]*"|'[^']*')""")


def svgs_as_images(html: str) -> str:
    """Each inline ``<svg>`` as an ``<img>`` holding it in a ``data:`` URL.

    WeasyPrint draws both the same, but an inline SVG's elements also go through its HTML
    parser and CSS cascade (the graph alone has hundreds); as an image they are parsed
    once, as XML. The image keeps the SVG's classes, plus ``svg`` for print.css, which
    sizes it. A ``style`` on the SVG root (page CSS such as ``height: auto``) is dropped:
    inside an image WeasyPrint reads that as no height and draws the chart square. An SVG
    that is not well-formed XML stays inline, where the HTML parser forgives it.
    """

    def image(match: re.Match[str]) -> str:
        svg = match.group(0)
        try:
            root = ET.fromstring(svg)
        except ET.ParseError:
            return svg
        if root.tag != f"{{{SVG_NS}}}svg":  # no xmlns: an image needs it, inline did not
            svg = svg.replace("<svg", f'<svg xmlns="{SVG_NS}"', 1)
        if root.get("style") is not None:
            end = svg.index(">") + 1  # the root's own tag
            svg = ROOT_STYLE.sub("", svg[:end], count=1) + svg[end:]
        classes = html_lib.escape(" ".join(["svg", *root.get("class", "").split()]))
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return f'<img class="{classes}" alt="" src="data:image/svg+xml;base64,{data}">'

    head, body = html.split("<body", 1) if "<body" in html else ("", html)
    return head + ("<body" if head else "") + INLINE_SVG.sub(image, body)


def _import_weasyprint() -> Any:
    # WeasyPrint loads Pango through cffi when imported: a missing system library shows up
    # as OSError, a missing Python package as ImportError.
    try:
        import weasyprint
    except ImportError as exc:
        raise PdfUnavailable(
            f"PDF not written: WeasyPrint is not installed ({exc}); "
            f"reinstall perfreport-torch (it depends on weasyprint) and `apt-get install {DEBIAN_PACKAGES}`"
        ) from None
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PdfUnavailable(
            f"PDF not written: WeasyPrint cannot load its system libraries ({first}); "
            f"install them with `apt-get install {DEBIAN_PACKAGES}`"
        ) from None
    return weasyprint


def print_css() -> str:
    return (templates_dir() / "print.css").read_text(encoding="utf-8")


def page_css(report: Report, paper: str) -> str:
    """@page rules that carry report data: paper size, model name and date in the header."""
    date = (report.environment.timestamp or report.created or "")[:10]
    name = report.model.class_name
    return (
        f"@page {{ size: {PAPERS[paper]}; "
        f"@top-left {{ content: {css_string(name)}; }} "
        f"@top-right {{ content: {css_string(date)}; }} }}\n"
    )


def css_string(text: str) -> str:
    """A CSS string literal that holds any text: every character that is not plainly safe
    is written as a hex escape, so a model name cannot close the string or the rule."""
    out = []
    for ch in text:
        if ch.isalnum() and ch.isascii() or ch in " .-_:+,()":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06x} ")  # the space ends the escape and is dropped
    return '"' + "".join(out) + '"'


def data_only_fetcher(weasyprint: Any) -> Any:
    """A url_fetcher that serves ``data:`` URLs and refuses everything else.

    The report embeds user text (model names, paths); a stray ``file://`` or ``http://``
    reference must not read local files or reach the network while rendering.
    """
    fetcher_class = getattr(weasyprint, "URLFetcher", None)
    if fetcher_class is None:  # WeasyPrint < 68: a url_fetcher is a function
        default = weasyprint.default_url_fetcher

        def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.lower().startswith("data:"):
                raise ValueError(f"perfreport refuses to fetch {url[:80]} while rendering PDF")
            return default(url, *args, **kwargs)

        return fetch

    class DataOnlyFetcher(fetcher_class):  # type: ignore[misc, valid-type]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.lower().startswith("data:"):
                raise ValueError(f"perfreport refuses to fetch {url[:80]} while rendering PDF")
            return super().fetch(url, headers)

    return DataOnlyFetcher(allowed_protocols=["data"])
