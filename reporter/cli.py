"""Command line: arguments, progress display and exit codes. No analysis happens here."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from reporter import __version__
from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.report import STAGE_NAMES, Report, StageStatus

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE = 0, 1, 2
SUBCOMMANDS = ("render", "trace")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

console = Console(stderr=True, highlight=False)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return run_command(argv)
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        console.print(f"[bold red]error:[/] {_plain(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print(
            "[red]interrupted:[/] no report written (an earlier report is left as it was)"
        )
        return 130


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _plain(text: str) -> str:
    """Keep rich from reading user text (paths, messages) as markup."""
    return text.replace("[", "\\[")


# ---------------------------------------------------------------- perfreport MODEL.py
def run_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="perfreport",
        description="Analyse, profile and report on a PyTorch model defined in a Python file. "
        "Subcommands: `perfreport render REPORT.json`, `perfreport trace DIR`.",
    )
    p.add_argument("model_file", help="Python file defining the model (see README: conventions)")
    p.add_argument("-o", "--out", help="output folder (default ./perfreport-<file stem>/)")
    p.add_argument(
        "--model", dest="model_name", help="name of the model, factory or class in the file"
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="N,C,H,W",
        help="shape of a random input tensor; repeat for several inputs",
    )
    p.add_argument(
        "--dtype", help="dtype of the model and --input-shape tensors (float32, bf16, int64, ...)"
    )
    p.add_argument(
        "--input",
        dest="input_file",
        metavar="FILE.pt",
        help="inputs saved with torch.save (loaded with weights_only=True)",
    )
    p.add_argument(
        "--checkpoint", metavar="FILE", help="state_dict to load into the model (weights_only=True)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or meta")
    p.add_argument("--depth", type=int, default=3, help="depth of the per-layer table (default 3)")
    stages = ",".join(STAGE_NAMES)
    p.add_argument("--only", help=f"run only these stages (comma-separated: {stages})")
    p.add_argument("--skip", help="skip these stages (comma-separated)")
    p.add_argument(
        "--format", default="html,json,md", help="outputs: html,json,md,pdf (default html,json,md)"
    )
    p.add_argument("--pdf", action="store_true", help="also write report.pdf")
    p.add_argument(
        "--train", action="store_true", help="also analyse a training step (forward+backward)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for weights and random inputs (default 0)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds the model process may run before it is stopped (default 1800)",
    )
    p.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        help="exit 1 when a finding of this severity or worse is reported",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"perfreport {__version__}")
    return p


def parse_run_options(argv: Sequence[str]) -> tuple[RunOptions, argparse.Namespace]:
    args = run_parser().parse_args(argv)
    model_file = Path(args.model_file).expanduser().resolve()
    out = Path(args.out) if args.out else Path.cwd() / f"perfreport-{model_file.stem}"
    options = RunOptions(
        model_file=str(model_file),
        out_dir=str(out.expanduser().resolve()),
        model_name=args.model_name,
        input_shapes=[parse_shape(s) for s in args.input_shape],
        dtype=args.dtype,
        input_file=str(Path(args.input_file).resolve()) if args.input_file else None,
        checkpoint=str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
        device=args.device,
        depth=args.depth,
        stages=select_stages(args.only, args.skip),
        train=args.train,
        seed=args.seed,
        debug=args.debug,
        timeout=args.timeout,
        command_line="perfreport " + shlex.join(argv),
    )
    if args.depth < 1:
        raise UsageError(f"--depth {args.depth}: give 1 or more")
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: give a number of seconds above 0")
    return options, args


def parse_shape(text: str) -> list[int]:
    try:
        shape = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        shape = []
    if not shape or any(v <= 0 for v in shape):
        raise UsageError(
            f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 8,3,224,224"
        )
    return shape


def select_stages(only: str | None, skip: str | None) -> list[str]:
    chosen = list(STAGE_NAMES)
    if only:
        chosen = _stage_list(only, "--only")
    if skip:
        dropped = set(_stage_list(skip, "--skip"))
        chosen = [s for s in chosen if s not in dropped]
    return [s for s in STAGE_NAMES if s in chosen]


def _stage_list(text: str, flag: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGE_NAMES]
    if unknown:
        raise UsageError(
            f"{flag}: unknown stage {', '.join(unknown)}: stages are {', '.join(STAGE_NAMES)}"
        )
    return names


def parse_formats(text: str, pdf: bool) -> tuple[str, ...]:
    from reporter.render import FORMATS

    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    if pdf:
        formats.append("pdf")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(f"--format: unknown {', '.join(unknown)}: use {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(formats))


def run_command(argv: Sequence[str]) -> int:
    from reporter.output import prepare_out_dir
    from reporter.pipeline import run_model

    options, args = parse_run_options(argv)
    formats = parse_formats(args.format, args.pdf)
    out_dir = prepare_out_dir(Path(options.out_dir))
    console.print(f"[bold]perfreport[/] {_plain(options.model_file)}")
    with Progress() as progress:
        report = run_model(options, progress.update)
    return finish(report, out_dir, formats, args.fail_on)


class Progress:
    """One line per stage as it ends; a spinner names the stage that is running."""

    def __enter__(self) -> Progress:
        self.status = console.status("starting the model process")
        self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.__exit__(*exc)

    def update(self, event: str, stage: str, status: StageStatus | None) -> None:
        if event == "start":
            self.status.update(f"running [bold]{stage}[/]")
            return
        assert status is not None
        if status.status == "ok":
            took = f" {status.seconds:.2f} s" if status.seconds is not None else ""
            console.print(f"  [green]✓[/] {stage}{took}")
        elif status.status == "failed":
            console.print(
                f"  [red]✗ {stage} failed:[/] {_plain(status.error or '')}", soft_wrap=True
            )
        elif status.reason and not status.reason.startswith("not selected"):
            console.print(f"  [dim]– {stage} skipped: {_plain(status.reason)}[/]", soft_wrap=True)


def finish(report: Report, out_dir: Path, formats: tuple[str, ...], fail_on: str | None) -> int:
    """Apply the rules, write the files, print the summary, pick the exit code."""
    from reporter.render import write_report
    from reporter.rules import run_rules

    report.findings = run_rules(report)
    written = write_report(report, out_dir, formats)
    print_summary(report, written)
    if fail_on:
        worst = max((SEVERITY_RANK.get(f.severity, 0) for f in report.findings), default=-1)
        if worst >= SEVERITY_RANK[fail_on]:
            console.print(f"[red]failing:[/] a finding at or above --fail-on {fail_on}")
            return EXIT_FAIL_ON
    return EXIT_OK


def print_summary(report: Report, written: list[Path]) -> None:
    from rich.table import Table

    from reporter.render.view import headline

    table = Table(show_header=False, box=None, pad_edge=False)
    for label, value, how in headline(report):
        table.add_row(label, f"[bold]{value}[/]", f"[dim]{_plain(how)}[/]")
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITY_RANK}
    table.add_row("Findings", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none", "")
    console.print(table)
    for f in report.findings[:5]:
        console.print(f"  [{_colour(f.severity)}]{f.severity}[/] {_plain(f.title)}", soft_wrap=True)
    for path in written:
        console.print(f"wrote {_plain(str(path))}")


def _colour(severity: str) -> str:
    return {"critical": "red", "warning": "yellow"}.get(severity, "blue")


# ---------------------------------------------------------------- perfreport render
def render_command(argv: Sequence[str]) -> int:
    from reporter.output import prepare_out_dir
    from reporter.render import write_report
    from reporter.report import load_report

    p = ArgumentParser(
        prog="perfreport render", description="Re-render a report.json without running the model."
    )
    p.add_argument("report_json")
    p.add_argument("-o", "--out", help="output folder (default: the report's folder)")
    p.add_argument("--format", default="html,md", help="outputs (default html,md)")
    p.add_argument("--pdf", action="store_true")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    report = load_report(args.report_json)
    out_dir = prepare_out_dir(
        Path(args.out) if args.out else Path(args.report_json).resolve().parent
    )
    for path in write_report(report, out_dir, parse_formats(args.format, args.pdf)):
        console.print(f"wrote {_plain(str(path))}")
    return EXIT_OK


# ---------------------------------------------------------------- perfreport trace
def trace_command(argv: Sequence[str]) -> int:
    from reporter.environment import now_iso
    from reporter.output import prepare_out_dir
    from reporter.report import ModelInfo
    from reporter.trace import analyse_paths, find_trace_files

    p = ArgumentParser(
        prog="perfreport trace", description="Analyse torch.profiler traces (one rank or many)."
    )
    p.add_argument("path", help="a trace file (.json or .json.gz) or a folder of them")
    p.add_argument("-o", "--out", help="output folder (default ./perfreport-trace-<name>/)")
    p.add_argument("--format", default="html,json,md")
    p.add_argument("--pdf", action="store_true")
    p.add_argument("--fail-on", choices=("warning", "critical"))
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    source = Path(args.path)
    files = find_trace_files(source)
    formats = parse_formats(args.format, args.pdf)
    out_dir = prepare_out_dir(
        Path(args.out) if args.out else Path.cwd() / f"perfreport-trace-{source.stem}"
    )
    with console.status(f"analysing {len(files)} trace file(s)"):
        section = analyse_paths(files)
    report = Report(
        model=ModelInfo(class_name=f"Trace: {source.name}", source=str(source), device="trace"),
        kind="trace",
        created=now_iso(),
        stages={"trace": StageStatus("ok")},
        trace=section,
    )
    report.environment.perfreport_version = __version__
    report.environment.command_line = "perfreport trace " + shlex.join(argv)
    return finish(report, out_dir, formats, args.fail_on)


COMMANDS = {"render": render_command, "trace": trace_command}
