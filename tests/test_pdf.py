"""PDF output: rendered for real with WeasyPrint, read back with poppler's pdftotext."""

from __future__ import annotations

import importlib.abc
import re
import shutil
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from reporter.cli import main
from reporter.render import write_report
from reporter.render.format import exact
from reporter.render.pdf import DEBIAN_PACKAGES, PdfUnavailable, data_only_fetcher, render_pdf
from reporter.render.templates import PRINT_ROWS
from reporter.report import Finding, Report, load_report

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed"
)

# 60 Linear layers of growing width: more rows than the print summary keeps (PRINT_ROWS), and the
# costliest layers are known in advance (the widest ones, at the end).
DEEP_MODEL = """
import torch
from torch import nn

WIDTHS = [4 + 2 * i for i in range(61)]

def build_model():
    return nn.Sequential(*[nn.Linear(a, b) for a, b in zip(WIDTHS, WIDTHS[1:])])

def example_inputs():
    return torch.randn(2, WIDTHS[0])
"""
N_LAYERS = 60


@cache
def deep_report_dir() -> Path:
    """Run perfreport for real once (static stages only, to stay fast) and keep the output."""
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="perfreport-pdf-test-"))
    atexit.register(shutil.rmtree, root, True)  # shared by several tests, removed at exit
    source = root / "deep_mlp.py"
    source.write_text(textwrap.dedent(DEEP_MODEL))
    out = root / "out"
    code = main([str(source), "-o", str(out), "--only", "summary,flops,memory", "--pdf"])
    assert code == 0
    return out


def deep_model() -> torch.nn.Module:
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(DEEP_MODEL), namespace)
    return namespace["build_model"]()  # type: ignore[operator]


def pdftotext(pdf: Path | bytes, tmp: Path, *, layout: bool = False) -> str:
    if isinstance(pdf, bytes):
        path = tmp / "read.pdf"
        path.write_bytes(pdf)
        pdf = path
    args = ["pdftotext", *(["-layout"] if layout else []), str(pdf), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pages(text: str) -> list[str]:
    return text.split("\f")


def test_pdf_has_headline_figures_computed_independently(tmp_path: Path) -> None:
    out = deep_report_dir()
    model = deep_model()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 4))
    flops = counter.get_total_flops()
    text = pdftotext(out / "report.pdf", tmp_path)
    assert "Sequential" in text
    assert exact(params) in text  # e.g. "1,234,567" in the parameters table
    assert exact(flops) in text  # the exact forward total in the FLOPs table


def test_pdf_shows_findings_escaped(tmp_path: Path) -> None:
    report = load_report(deep_report_dir() / "report.json")
    report.findings.append(
        Finding(
            rule="dominant-layer",
            severity="critical",
            title="Layer <59> & friends take 97.3% of FLOPs",
            evidence={"module": "59", "share": "97.3%"},
            recommendation="Shrink the last layer.",
        )
    )
    text = pdftotext(render_pdf(report), tmp_path)
    assert "Layer <59> & friends take 97.3% of FLOPs" in text
    assert "Shrink the last layer." in text
    assert "1 critical" in text


def test_pdf_pages_have_running_header_and_numbers(tmp_path: Path) -> None:
    report = load_report(deep_report_dir() / "report.json")
    text = pdftotext(deep_report_dir() / "report.pdf", tmp_path)
    sheets = [p for p in pages(text) if p.strip()]
    assert len(sheets) >= 2
    date = report.environment.timestamp[:10]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    for number, sheet in enumerate(sheets, start=1):
        assert f"Page {number} of {len(sheets)}" in sheet
        if number > 1:  # the first page has the big title instead
            assert "Sequential" in sheet and date in sheet


def test_print_summarises_long_layer_table_html_keeps_all(tmp_path: Path) -> None:
    out = deep_report_dir()
    report = load_report(out / "report.json")
    layer_rows = [r for r in report.summary.layers if r.name]
    assert len(layer_rows) == N_LAYERS
    html = (out / "report.html").read_text()
    for i in range(N_LAYERS):
        assert f'id="layer-{i}"' in html
    text = pdftotext(out / "report.pdf", tmp_path, layout=True)
    assert f"the {PRINT_ROWS} costliest of {N_LAYERS + 1} rows" in " ".join(text.split())
    # Costs grow with the index: the model row and the last layers are the costliest.
    flops_by = {m.name: m.forward for m in report.flops.by_module}
    kept = sorted(flops_by, key=lambda n: flops_by[n], reverse=True)[:PRINT_ROWS]
    assert "" in kept and "59" in kept and "0" not in kept
    table_lines = [line.split() for line in text.splitlines() if "Linear" in line]
    printed = {cells[0] for cells in table_lines if cells[0].isdigit()}
    assert printed == {n for n in kept if n}


@pytest.mark.parametrize(("paper", "size"), [("a4", (595, 842)), ("letter", (612, 792))])
def test_paper_size(paper: str, size: tuple[int, int], tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(render_pdf(load_report(deep_report_dir() / "report.json"), paper=paper))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    match = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert match is not None
    assert (round(float(match[1])), round(float(match[2]))) == size


def test_url_fetcher_refuses_files_and_network(tmp_path: Path) -> None:
    """A file:// image renders with WeasyPrint's own fetcher and not with ours."""
    import weasyprint

    image = tmp_path / "dot.png"
    image.write_bytes(tiny_png())
    html = f'<p>x</p><img src="{image.as_uri()}" style="width:50px">'
    plain = weasyprint.HTML(string=html).write_pdf()
    guarded = weasyprint.HTML(string=html, url_fetcher=data_only_fetcher(weasyprint)).write_pdf()
    assert count_images(plain, tmp_path) == 1
    assert count_images(guarded, tmp_path) == 0
    fetcher = data_only_fetcher(weasyprint)
    for url in (image.as_uri(), "http://127.0.0.1:9/x.css", "https://example.com/a.png"):
        with pytest.raises(ValueError, match="refuses"):
            fetcher(url)
    assert fetcher("data:text/plain,hello").read() == b"hello"


def tiny_png() -> bytes:
    """A 1x1 PNG, written by hand so the test needs no imaging library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def count_images(pdf: bytes, tmp: Path) -> int:
    path = tmp / "img.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return len(listing.splitlines()) - 2  # two header lines


class _NoPango(importlib.abc.MetaPathFinder):
    """Imports of weasyprint fail as they do when Pango is missing (cffi's OSError)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "weasyprint" or name.startswith("weasyprint."):
            raise OSError("cannot load library 'libpango-1.0-0': No such file or directory")
        return None


@pytest.mark.parametrize("failure", ["no-package", "no-pango"])
def test_missing_weasyprint_still_writes_other_formats(
    failure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = load_report(deep_report_dir() / "report.json")
    for name in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    if failure == "no-package":
        monkeypatch.setitem(sys.modules, "weasyprint", None)  # import raises ImportError
    else:
        monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    with pytest.raises(PdfUnavailable, match=DEBIAN_PACKAGES):
        render_pdf(report)
    warnings: list[str] = []
    written = write_report(report, tmp_path, ("html", "json", "md", "pdf"), warn=warnings.append)
    assert sorted(p.name for p in written) == ["report.html", "report.json", "report.md"]
    assert not (tmp_path / "report.pdf").exists()
    assert len(warnings) == 1 and DEBIAN_PACKAGES in warnings[0]
    assert "\n" not in warnings[0]


def test_cli_render_exits_2_in_one_line_without_weasyprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PDF explicitly asked for that cannot be written is bad usage (exit 2), after the
    other formats are written."""
    source = deep_report_dir() / "report.json"  # written with WeasyPrint, before it goes
    capsys.readouterr()  # that run's own output
    for name in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    code = main(["render", str(source), "-o", str(tmp_path), "--format", "html,md,pdf"])
    err = capsys.readouterr().err
    assert code == 2
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    assert not (tmp_path / "report.pdf").exists()
    lines = [line for line in err.splitlines() if line.strip()]
    error = [line for line in lines if not line.startswith("wrote ")]  # the files it did write
    assert len(error) == 1 and error[0].startswith("error:") and DEBIAN_PACKAGES in error[0]
    assert lines[-1] == error[0]


def test_render_pdf_is_a_view_of_the_report_only(tmp_path: Path) -> None:
    """A report with only the model block (e.g. every stage failed) still renders."""
    full = load_report(deep_report_dir() / "report.json")
    bare = Report(model=full.model, environment=full.environment, stages=full.stages)
    text = pdftotext(render_pdf(bare), tmp_path)
    assert "Sequential" in text and "How this was measured" in text


def test_markdown_fits_a_review_comment_and_keeps_headline_and_findings() -> None:
    report = load_report(deep_report_dir() / "report.json")
    report.findings = [
        Finding("dominant-layer", "warning", f"Layer {i} is slow", recommendation=f"Fix {i}.")
        for i in range(2000)  # far more than a comment holds
    ]
    from reporter.render.markdown import render_markdown

    text = render_markdown(report)
    assert len(text) < 60_000
    assert f"| Parameters | {count_text(report)} |" in text
    # each finding's recommendation is its own paragraph inside the list item
    assert "- **warning** Layer 0 is slow\n\n  Fix 0.\n" in text


def count_text(report: Report) -> str:
    from reporter.render.format import count

    return count(sum(p.numel() for p in deep_model().parameters()))


def test_model_name_cannot_break_out_of_the_page_header(tmp_path: Path) -> None:
    report = load_report(deep_report_dir() / "report.json")
    report.model.class_name = 'Net"} @page { size: 20mm 20mm } x{"'
    path = tmp_path / "r.pdf"
    path.write_bytes(render_pdf(report))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert "(A4)" in info  # the name did not set the page size
    second_page = pages(pdftotext(path, tmp_path))[1]
    assert 'Net"} @page { size: 20mm 20mm } x{"' in second_page  # the header shows it as text


def test_inline_svgs_print_as_images_of_the_same_size(tmp_path: Path) -> None:
    """render_pdf hands each inline SVG to WeasyPrint as an <img> (its elements then skip the
    HTML parser and cascade): same size, text still in the PDF, broken XML left inline."""
    import weasyprint

    from reporter.render import charts
    from reporter.render.pdf import print_css, svgs_as_images

    # this chart's root carries style="max-width:100%;height:auto", which made WeasyPrint
    # draw it square once inside an image
    chart = charts.stacked_bar([("compute", 3.0), ("idle <1>", 1.0)], title="GPU time")
    width, height = (float(v) for v in re.search(r'width="(\d+)" height="(\d+)"', chart).groups())
    broken = "<svg><g></svg>"
    html = (
        f"<html><head><style>{print_css()} /* <svg> in a comment */</style></head>"
        f"<body><p>before</p>{chart}{broken}</body></html>"
    )
    out = svgs_as_images(html)
    assert out.count('<img class="svg chart" alt="" src="data:image/svg+xml;base64,') == 1
    assert broken in out and "/* <svg> in a comment */" in out
    document = weasyprint.HTML(string=out, url_fetcher=data_only_fetcher(weasyprint)).render()
    boxes = document.pages[0]._page_box.descendants()
    images = [box for box in boxes if getattr(box, "element_tag", "") == "img"]
    assert len(images) == 1
    assert images[0].width / images[0].height == pytest.approx(width / height, rel=0.01)
    text = pdftotext(document.write_pdf(), tmp_path)
    assert "GPU time" in text and "idle <1>" in text
