"""PDF render time for each sample model's report (target: under 5 s each).

    .venv/bin/python -m benchmarks.pdf [--only STAGES] [--depth N] [--repeat N] [--work DIR]

Runs perfreport on every file in sample_models/ (once; the reports are kept in --work),
then times reporter.render.pdf.render_pdf on each report.json, in this process, after one
warm-up render (WeasyPrint's first call also loads fonts). The verdict uses the best of
the --repeat renders: other processes on the machine only ever add time, so the fastest
render is the closest to the render's own cost (the median and CPU time are shown too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reporter.render.pdf import render_pdf  # noqa: E402
from reporter.report import load_report  # noqa: E402

TARGET_S = 5.0


def make_report(model: Path, out: Path, only: str | None, depth: int) -> Path:
    if not (out / "report.json").is_file():
        cmd = [sys.executable, "-m", "reporter", str(model), "-o", str(out), "--depth", str(depth)]
        # The health probe is opt-in: a full report, with its plots, needs it asked for.
        cmd += ["--train-steps", "3"]
        if only:
            cmd += ["--only", only]
        subprocess.run(cmd, check=True, cwd=REPO, capture_output=True)
    return out / "report.json"


def pdf_pages(data: bytes) -> int:
    """Pages, as poppler's pdfinfo reads them (0 when poppler-utils is missing)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        try:
            info = subprocess.run(["pdfinfo", f.name], capture_output=True, text=True).stdout
        except FileNotFoundError:
            return 0
    return next(
        (int(line.split()[1]) for line in info.splitlines() if line.startswith("Pages:")), 0
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="stages to run (default: all)")
    p.add_argument("--depth", type=int, default=6, help="torchinfo depth (default 6: long tables)")
    p.add_argument("--repeat", type=int, default=5, help="timed renders per model (default 5)")
    p.add_argument("--work", help="folder for the reports (kept between runs)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="perfreport-bench-pdf-"))
    rows = []
    for model in sorted((REPO / "sample_models").glob("*.py")):
        report = load_report(make_report(model, work / model.stem, args.only, args.depth))
        render_pdf(report)  # warm-up
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            data = render_pdf(report)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        layers = len(report.summary.layers) if report.summary else 0
        sections = sum(1 for s in report.stages.values() if s.status == "ok")
        rows.append((model.stem, layers, sections, pdf_pages(data), len(data), times, cpu))
    print(f"reports in {work}; best of {args.repeat} renders each, after one warm-up")
    # Wall time suffers when other processes share the CPUs; CPU time shows the render's own cost.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(
        f"{'model':18} {'pages':>5} {'best s':>7} {'median s':>9} {'CPU s':>6} "
        f"{'layer rows':>10} {'sections':>8} {'PDF KiB':>8}  target < {TARGET_S:g} s"
    )
    for name, layers, sections, pages, size, times, cpu in rows:
        ok = "ok" if min(times) < TARGET_S else "SLOW"
        print(
            f"{name:18} {pages:>5} {min(times):>7.2f} {statistics.median(times):>9.2f} "
            f"{min(cpu):>6.2f} {layers:>10} {sections:>8} {size / 1024:>8.1f}  {ok}"
        )
    slow = [name for name, *_, times, _cpu in rows if min(times) >= TARGET_S]
    print(
        f"\n{len(rows) - len(slow)} of {len(rows)} under {TARGET_S:g} s"
        + (f"; over: {', '.join(slow)}" if slow else "")
    )


if __name__ == "__main__":
    main()
